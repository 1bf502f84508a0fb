"""Named joint layouts, explicit layouts and the mapping between layouts."""

import numpy as np
import pytest

from cascadeformer_jax.data import layouts
from cascadeformer_jax.data import transforms


@pytest.mark.parametrize('name,num_joints', [('ntu25', 25), ('nucla20', 20), ('penn13', 13), ('coco17', 17),
                                             ('mediapipe33', 33), ('openpose25', 25), ('h36m17', 17)])
def test_every_named_layout_is_a_tree(name, num_joints):
  layout = layouts.get_layout(name)
  assert layout.num_joints == num_joints == len(layout.parents)
  assert len(set(layout.joints)) == num_joints
  roots = [j for j, p in enumerate(layout.parents) if p == j]
  assert roots == [layout.root]
  for joint in range(num_joints):  # every joint reaches the root within J steps
    steps = 0
    while layout.parents[joint] != joint:
      joint = layout.parents[joint]
      steps += 1
      assert steps <= num_joints
  assert sorted(layouts.layout_names()) == sorted(
      ['ntu25', 'nucla20', 'penn13', 'coco17', 'mediapipe33', 'openpose25', 'h36m17'])


def _pairs_to_parents(pairs_one_based, num_joints):
  parents = np.arange(num_joints)
  for child, parent in pairs_one_based:
    parents[child - 1] = parent - 1
  return parents


def test_transforms_parents_agree_with_the_named_layouts():
  # CTR-GCN's NTU inward pairs and the N-UCLA feeders' bone pairs, as published (1-based).
  ntu_pairs = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
               (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
               (23, 8), (24, 25), (25, 12)]
  nucla_pairs = [(1, 2), (2, 3), (3, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11),
                 (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)]
  np.testing.assert_array_equal(transforms.NTU_PARENTS, _pairs_to_parents(ntu_pairs, 25))
  np.testing.assert_array_equal(transforms.NUCLA_PARENTS, _pairs_to_parents(nucla_pairs, 20))
  np.testing.assert_array_equal(transforms.NTU_PARENTS, layouts.get_layout('ntu25').parents)
  np.testing.assert_array_equal(transforms.NUCLA_PARENTS, layouts.get_layout('nucla20').parents)
  np.testing.assert_array_equal(transforms.PENN_PARENTS, layouts.get_layout('penn13').parents)
  np.testing.assert_array_equal(transforms.NUCLA_PARTITION_ORDER, layouts.NUCLA_PARTITION_ORDER)


def test_edges_are_the_bones_of_the_tree():
  penn = layouts.get_layout('penn13')
  assert penn.edges == ((1, 0), (2, 0), (3, 1), (4, 2), (5, 3), (6, 4), (7, 1), (8, 2), (9, 7), (10, 8), (11, 9),
                        (12, 10))
  for name in layouts.layout_names():
    layout = layouts.get_layout(name)
    assert len(layout.edges) == layout.num_joints - 1
    assert all(layout.parents[child] == parent != child for child, parent in layout.edges)


def test_joint_names_follow_the_formats_documentation():
  coco = layouts.get_layout('coco17')
  assert coco.joints[0] == 'nose' and coco.joints[5] == 'left_shoulder' and coco.joints[16] == 'right_ankle'
  mediapipe = layouts.get_layout('mediapipe33')
  assert (mediapipe.index('left_shoulder'), mediapipe.index('right_hip'), mediapipe.index('right_foot_index')) == (
      11, 24, 32)
  openpose = layouts.get_layout('openpose25')
  assert (openpose.index('neck'), openpose.index('mid_hip'), openpose.index('left_big_toe'), openpose.root) == (
      1, 8, 19, 8)
  h36m = layouts.get_layout('h36m17')
  assert (h36m.index('pelvis'), h36m.index('thorax'), h36m.index('right_wrist'), h36m.root) == (0, 8, 16, 0)
  ntu = layouts.get_layout('ntu25')
  assert (ntu.index('spine_base'), ntu.index('spine_shoulder'), ntu.index('thumb_right')) == (0, 20, 24)
  nucla = layouts.get_layout('nucla20')
  assert (nucla.index('hip_center'), nucla.index('shoulder_center'), nucla.index('foot_right')) == (0, 2, 19)


@pytest.mark.parametrize('layout,message', [
    ({'joints': ['a', 'b'], 'parents': [0, 0, 0]}, '2 joints but 3 parents'),
    ({'joints': ['a', 'b', 'c'], 'parents': [0, 1, 1]}, 'exactly one root.*found 2'),
    ({'joints': ['a', 'b', 'c'], 'parents': [1, 2, 1]}, 'exactly one root.*found 0'),
    ({'joints': ['a', 'b', 'c', 'd'], 'parents': [0, 2, 3, 1]}, 'cycle'),
    ({'joints': ['a', 'a'], 'parents': [0, 0]}, 'duplicate joint names'),
    ({'joints': ['a', 'b'], 'parents': [0, 5]}, 'not an index'),
    ({'joints': ['a'], 'parents': [0], 'bones': []}, 'unknown keys'),
    ({'joints': ['a']}, 'missing'),
])
def test_explicit_layout_validation(layout, message):
  with pytest.raises(ValueError, match=message):
    layouts.get_layout(layout)


def test_explicit_layout_and_unknown_name():
  layout = layouts.get_layout({'joints': ['hip', 'knee', 'ankle'], 'parents': [0, 0, 1], 'centre_joints': ['hip']})
  assert layout.root == 0 and layout.centre_joints == (0,) and layout.name == 'custom'
  with pytest.raises(ValueError, match='unknown joint layout .coco18.; known layouts: coco17, h36m17, mediapipe33, '
                                       'ntu25, nucla20, openpose25, penn13'):
    layouts.get_layout('coco18')


def _labelled_clip(layout_name, frames=2, coords=3):
  """A clip whose joint j sits at (j + 1, 10·(j + 1), ...) + frame offset, so every joint is identifiable."""
  layout = layouts.get_layout(layout_name)
  j = np.arange(1, layout.num_joints + 1, dtype=np.float64)
  base = np.stack([j, 10 * j, 100 * j][:coords], axis=-1)
  return np.stack([base + t for t in range(frames)])


def test_convert_copies_joints_by_anatomical_name():
  clip = _labelled_clip('coco17')
  out = layouts.convert(clip, 'coco17', 'ntu25')
  coco, ntu = layouts.get_layout('coco17'), layouts.get_layout('ntu25')
  for ntu_joint, coco_joint in [('shoulder_left', 'left_shoulder'), ('wrist_right', 'right_wrist'),
                                ('knee_left', 'left_knee'), ('ankle_right', 'right_ankle')]:
    np.testing.assert_array_equal(out[:, ntu.index(ntu_joint)], clip[:, coco.index(coco_joint)])
  hips = clip[:, [coco.index('left_hip'), coco.index('right_hip')]].mean(axis=1)
  shoulders = clip[:, [coco.index('left_shoulder'), coco.index('right_shoulder')]].mean(axis=1)
  ears = clip[:, [coco.index('left_ear'), coco.index('right_ear')]].mean(axis=1)
  np.testing.assert_allclose(out[:, ntu.index('spine_base')], hips)
  np.testing.assert_allclose(out[:, ntu.index('spine_shoulder')], shoulders)
  np.testing.assert_allclose(out[:, ntu.index('spine_mid')], (hips + shoulders) / 2)
  np.testing.assert_allclose(out[:, ntu.index('head')], ears)
  np.testing.assert_allclose(out[:, ntu.index('neck')], (shoulders + ears) / 2)
  np.testing.assert_array_equal(out[:, ntu.index('hand_tip_left')], clip[:, coco.index('left_wrist')])
  np.testing.assert_array_equal(out[:, ntu.index('foot_right')], clip[:, coco.index('right_ankle')])


def test_convert_openpose_neck_is_the_thorax_and_h36m_round_trip():
  openpose = layouts.get_layout('openpose25')
  clip = _labelled_clip('openpose25', coords=2)
  out = layouts.convert(clip, 'openpose25', 'ntu25')
  ntu = layouts.get_layout('ntu25')
  np.testing.assert_array_equal(out[:, ntu.index('spine_shoulder')], clip[:, openpose.index('neck')])
  np.testing.assert_array_equal(out[:, ntu.index('spine_base')], clip[:, openpose.index('mid_hip')])
  np.testing.assert_array_equal(out[:, ntu.index('foot_left')], clip[:, openpose.index('left_big_toe')])
  h36m = _labelled_clip('h36m17')
  back = layouts.convert(layouts.convert(h36m, 'h36m17', 'ntu25'), 'ntu25', 'h36m17')
  np.testing.assert_array_equal(back, h36m)  # every H36M joint has an NTU counterpart


def test_convert_keeps_missing_joints_missing_and_handles_leading_axes():
  clip = _labelled_clip('coco17', frames=3)
  coco, ntu = layouts.get_layout('coco17'), layouts.get_layout('ntu25')
  clip[1, coco.index('left_hip')] = 0  # missing in frame 1
  out = layouts.convert(clip, 'coco17', 'ntu25')
  assert not out[1, ntu.index('spine_base')].any() and out[0, ntu.index('spine_base')].all()
  assert not out[1, ntu.index('hip_left')].any()
  kept = layouts.convert(clip, 'coco17', 'ntu25', zero_missing=False)
  np.testing.assert_allclose(kept[1, ntu.index('spine_base')], clip[1, coco.index('right_hip')] / 2)
  batch = np.stack([clip, clip])[:, :, None]  # (B, T, M, J, C)
  assert layouts.convert(batch, 'coco17', 'ntu25').shape == (2, 3, 1, 25, 3)
  with pytest.raises(ValueError, match='do not have the 17 joints'):
    layouts.convert(np.zeros((3, 25, 3)), 'coco17', 'ntu25')


def test_convert_explicit_mapping_and_unmappable_joints():
  custom = {'joints': ['pelvis_point', 'hand'], 'parents': [0, 0]}
  with pytest.raises(ValueError, match=r"no source joint or approximation for target joints \['pelvis_point', "
                                       r"'hand'\]"):
    layouts.convert(np.ones((1, 17, 2)), 'coco17', custom)
  clip = _labelled_clip('coco17', coords=2)
  out = layouts.convert(clip, 'coco17', custom, mapping={'pelvis_point': ['left_hip', 'right_hip'], 'hand': 9})
  np.testing.assert_allclose(out[:, 0], clip[:, [11, 12]].mean(axis=1))
  np.testing.assert_array_equal(out[:, 1], clip[:, 9])
  with pytest.raises(ValueError, match='does not have'):
    layouts.convert(clip, 'coco17', 'ntu25', mapping={'tail': 'nose'})
  with pytest.raises(ValueError, match="unknown mapping 'anatomical'"):
    layouts.convert(clip, 'coco17', 'ntu25', mapping='anatomical')
  with pytest.raises(ValueError, match='maps nucla20 -> ntu25, not coco17 -> ntu25'):
    layouts.convert(clip, 'coco17', 'ntu25', mapping='original_partition_order')


def test_nucla_to_ntu_default_is_anatomical():
  clip = _labelled_clip('nucla20')
  nucla, ntu = layouts.get_layout('nucla20'), layouts.get_layout('ntu25')
  out = layouts.convert(clip, 'nucla20', 'ntu25')
  expected = {'spine_base': 'hip_center', 'spine_mid': 'spine', 'head': 'head', 'spine_shoulder': 'shoulder_center',
              'shoulder_left': 'shoulder_left', 'hand_right': 'hand_right', 'foot_left': 'foot_left',
              'hand_tip_left': 'hand_left', 'thumb_right': 'hand_right'}
  for ntu_joint, nucla_joint in expected.items():
    np.testing.assert_array_equal(out[:, ntu.index(ntu_joint)], clip[:, nucla.index(nucla_joint)])
  np.testing.assert_allclose(out[:, ntu.index('neck')],
                             clip[:, [nucla.index('shoulder_center'), nucla.index('head')]].mean(axis=1))


def _original_ucla20_to_ntu25(u):
  """The original code's index arithmetic (transfer_ucla.py), written out on a (B, T, 20, 3) array."""
  out = np.zeros(u.shape[:2] + (25, 3), u.dtype)
  for k in range(20):
    out[:, :, k] = u[:, :, k]
  out[:, :, 20] = u[:, :, 2]
  out[:, :, 21] = u[:, :, 7]
  out[:, :, 22] = u[:, :, 7]
  out[:, :, 23] = u[:, :, 11]
  out[:, :, 24] = u[:, :, 11]
  return out


def test_original_partition_order_mapping_reproduces_the_original_transfer():
  native = _labelled_clip('nucla20', frames=4)[None]  # (1, T, 20, 3), native Kinect v1 order
  partition = native[:, :, transforms.NUCLA_PARTITION_ORDER]  # what the original's loader (partition=True) yields
  expected = _original_ucla20_to_ntu25(partition)
  out = layouts.convert(native, 'nucla20', 'ntu25', mapping='original_partition_order')
  np.testing.assert_array_equal(out, expected)
  # Spelled out: NTU spine_base gets N-UCLA shoulder_left, NTU spine_shoulder gets wrist_left.
  nucla, ntu = layouts.get_layout('nucla20'), layouts.get_layout('ntu25')
  np.testing.assert_array_equal(out[0, :, ntu.index('spine_base')], native[0, :, nucla.index('shoulder_left')])
  np.testing.assert_array_equal(out[0, :, ntu.index('spine_shoulder')], native[0, :, nucla.index('wrist_left')])
  np.testing.assert_array_equal(out[0, :, ntu.index('hand_tip_right')], native[0, :, nucla.index('foot_left')])
  assert not np.array_equal(out, layouts.convert(native, 'nucla20', 'ntu25'))


def test_every_pair_of_named_layouts_maps():
  for source in layouts.layout_names():
    for target in layouts.layout_names():
      matrix = layouts.mapping_matrix(source, target)
      assert matrix.shape == (layouts.get_layout(target).num_joints, layouts.get_layout(source).num_joints)
      np.testing.assert_allclose(matrix.sum(axis=1), 1.0)  # every target joint is an average of source joints
      if source == target:
        np.testing.assert_array_equal(matrix, np.eye(matrix.shape[0]))
