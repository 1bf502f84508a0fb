"""Per-clip transforms: golden parity (test mode), fixture values and training-mode properties."""

import numpy as np
import pytest

from cascadeformer_jax.data import config as config_lib
from cascadeformer_jax.data import examples
from cascadeformer_jax.data import random_streams
from cascadeformer_jax.data import transforms


def nucla_eval(clip: np.ndarray, num_frames: int = 64) -> np.ndarray:
  """The production N-UCLA evaluation path for one stored clip (L, 20, 3): what the pipeline feeds the model."""
  settings = config_lib.default_data_config('n_ucla').to_dict()
  settings['num_frames'] = num_frames
  raw = {'skeleton': clip, 'label': np.int64(0)}
  return examples.process_example(raw, settings, None, None, False, 'clip')['skeleton']


# --- Golden parity (golden/transforms, docs/golden.md) ----------------------------------------------

def test_ntu_test_transform_matches_golden(golden_dir):
  golden = np.load(golden_dir / 'transforms' / 'ntu60_test_transform.npz')
  expected_slots = [0, 1, 0, 1]
  for i in range(len(golden['rows'])):
    skeleton = golden['rows'][i].reshape(300, 2, 25, 3)
    length = transforms.ntu_valid_length(skeleton)
    assert length == golden['valid_lengths'][i]
    start, crop = transforms.ntu_test_window(length, 0.95)
    resized = transforms.ntu_crop_resize(skeleton[:length], start, crop, 64)
    np.testing.assert_allclose(resized, golden['cropped_resized_TMVC'][i], rtol=0, atol=1e-5)
    person, slot = transforms.select_person(resized, 'abs_sum')
    assert slot == expected_slots[i]
    np.testing.assert_allclose(person, golden['selected_person_TVC'][i], rtol=0, atol=1e-5)


def test_nucla_test_transform_matches_golden(golden_dir):
  golden = np.load(golden_dir / 'transforms' / 'n_ucla_test_transform.npz')
  np.testing.assert_array_equal(transforms.NUCLA_PARTITION_ORDER, golden['joint_order'])
  for i, length in enumerate(golden['lengths']):
    raw = golden[f'raw_{i}']
    assert raw.shape[0] == length
    np.testing.assert_allclose(nucla_eval(raw, 64), golden['output_TVC'][i],
                               rtol=0, atol=1e-5)
    # The float32 input the TFDS source provides stays within tolerance as well.
    np.testing.assert_allclose(nucla_eval(raw.astype(np.float32), 64),
                               golden['output_TVC'][i], rtol=0, atol=1e-5)


# --- Fixture values (docs/datasets.md: NTU feeder transforms, test fixtures) -----------------------

@pytest.mark.parametrize('length,bias', [(20, 0), (64, 1), (103, 2), (300, 7)])
def test_ntu_test_window_bias(length, bias):
  assert transforms.ntu_test_window(length, 0.95) == (bias, length - 2 * bias)


def test_ntu_feeder_fixture_f1():
  joints = np.arange(25)
  skeleton = np.zeros((3, 2, 25, 3), np.float32)
  for k in range(3):
    skeleton[k, 0] = np.stack([(joints - 1) / 64 + k / 8, (joints - 1) / 16, (joints - 1) / 64], -1)
  length = transforms.ntu_valid_length(skeleton)
  assert length == 3
  resized = transforms.ntu_crop_resize(skeleton, *transforms.ntu_test_window(length), 64)
  np.testing.assert_allclose(resized[[0, 21, 32, 63], 0, 1, 0],
                             [0, 0.0634765625, 0.1279296875, 0.25], atol=1e-6)


def test_nucla_length_one_fixture():
  joints = np.arange(20)
  clip = np.stack([joints / 32 - 0.25, 0.5 - joints / 16, 2.5 + joints / 64], -1)[None]
  out = nucla_eval(clip.astype(np.float32), 64)
  native = out[:, np.argsort(transforms.NUCLA_PARTITION_ORDER)]
  expected = np.stack([2 * joints / 19 - 1, 1 - 2 * joints / 19, 2 * joints / 19 - 1], -1)
  np.testing.assert_allclose(native, np.broadcast_to(expected, (64, 20, 3)), atol=1e-6)


def test_nucla_test_indices_for_two_frames():
  indices = transforms.nucla_test_frame_indices(2, 64)
  assert (indices == 0).sum() == 63 and indices[-1] == 1


@pytest.mark.parametrize('clip', [
    np.zeros((1, 20, 3)),                                       # all-zero single frame
    np.zeros((5, 20, 3)),                                       # all-zero clip
    np.tile([[0.1, 0.2, 0.3]], (1, 20, 1)),                     # one frame, coinciding joints
    np.concatenate([np.zeros((1, 20, 2)), np.linspace(0, 1, 20)[None, :, None]], -1),  # one flat axis
])
def test_nucla_degenerate_clips_are_finite(clip):
  out = nucla_eval(clip, 64)
  assert out.shape == (64, 20, 3)
  assert np.isfinite(out).all()
  assert out.min() >= -1 and out.max() <= 1


def test_minmax_zero_range_axis_gives_zero():
  x = np.array([[[0.0, 5.0, 1.0], [1.0, 5.0, 3.0]]])
  np.testing.assert_allclose(transforms.minmax_to_unit_range(x), [[[-1, 0, -1], [1, 0, 1]]])


# --- Resize ----------------------------------------------------------------------------------------

def test_resize_identity_and_constant():
  x = np.random.default_rng(0).standard_normal((64, 2, 25, 3)).astype(np.float32)
  np.testing.assert_array_equal(transforms.resize_time_linear(x, 64), x)
  constant = np.ones((7, 4), np.float32) * 3
  np.testing.assert_allclose(transforms.resize_time_linear(constant, 64), 3)


def test_resize_matches_torch_interpolate():
  torch = pytest.importorskip('torch')
  rng = np.random.default_rng(1)
  for length in (1, 5, 64, 150):
    x = rng.standard_normal((length, 6)).astype(np.float32)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(x.T[None, :, :, None]), size=(64, 1), mode='bilinear',
        align_corners=False)[0, :, :, 0].numpy().T
    np.testing.assert_allclose(transforms.resize_time_linear(x, 64), expected, atol=1e-6)


# --- Training-mode properties ----------------------------------------------------------------------

def test_ntu_train_window_properties():
  u = np.random.default_rng(0).random((200, 2))
  for length in (10, 64, 100, 300):
    starts, crops = transforms.ntu_train_windows(np.full(200, length), u, (0.5, 1.0), 64)
    assert (min(64, length) <= crops).all() and (crops <= length).all()
    assert (crops >= min(length, int(np.floor(length * 0.5)))).all()
    assert (starts >= 0).all() and (starts + crops <= length).all()
  # The extremes of the draws reach the extremes: p = 0.5 and the first start; p -> 1 and the last start.
  starts, crops = transforms.ntu_train_windows(np.array([300, 300]), np.array([[0.0, 0.0], [1 - 1e-12, 1 - 1e-12]]))
  assert (starts.tolist(), crops.tolist()) == ([0, 1], [150, 299])
  assert transforms.ntu_test_window(100) == (2, 96)
  np.testing.assert_array_equal(transforms.ntu_test_window(np.array([100, 10]), 0.95, 1.0)[0], [4, 0])


def test_rotation_matrix_is_orthonormal_and_preserves_bone_lengths():
  rng = np.random.default_rng(0)
  rotation = transforms.rotation_matrix_xyz(rng.uniform(-0.3, 0.3, 3))
  np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
  assert np.isclose(np.linalg.det(rotation), 1)
  x = rng.standard_normal((64, 2, 25, 3)).astype(np.float32)
  rotated = transforms.rotate_points(x, rotation)
  bones = lambda y: np.linalg.norm(y - y[:, :, transforms.NTU_PARENTS], axis=-1)
  np.testing.assert_allclose(bones(rotated), bones(x), atol=1e-5)
  assert not np.allclose(rotated, x)


def test_rotation_order_is_rz_ry_rx():
  angle = 0.2
  c, s = np.cos(angle), np.sin(angle)
  np.testing.assert_allclose(transforms.rotation_matrix_xyz([angle, 0, 0]),
                             [[1, 0, 0], [0, c, s], [0, -s, c]])
  np.testing.assert_allclose(transforms.rotation_matrix_xyz([0, 0, angle]),
                             [[c, s, 0], [-s, c, 0], [0, 0, 1]])
  a = transforms.rotation_matrix_xyz([0.1, 0.2, 0.3])
  b = (transforms.rotation_matrix_xyz([0, 0, 0.3]) @ transforms.rotation_matrix_xyz([0, 0.2, 0])
       @ transforms.rotation_matrix_xyz([0.1, 0, 0]))
  np.testing.assert_allclose(a, b, atol=1e-12)


def test_person_selection_rules():
  x = np.zeros((64, 2, 25, 3), np.float32)
  x[:, 0] = np.linspace(-1, 1, 64)[:, None, None]  # moving, small mean distance
  x[:, 1] = 2.0                                     # static, far from the origin
  assert transforms.select_person(x, 'abs_sum')[1] == 1
  assert transforms.select_person(x, 'motion_variance')[1] == 0
  assert transforms.select_person(np.zeros_like(x), 'abs_sum')[1] == 0  # tie -> slot 0
  with pytest.raises(ValueError, match='person selection rule'):
    transforms.select_person(x, 'largest')


def test_nucla_view_matrices_are_row_vector_ry_rx_scale():
  ax, ay = np.radians(30), np.radians(-20)
  rx = np.array([[1, 0, 0], [0, np.cos(ax), np.sin(ax)], [0, -np.sin(ax), np.cos(ax)]])
  ry = np.array([[np.cos(ay), 0, -np.sin(ay)], [0, 1, 0], [np.sin(ay), 0, np.cos(ay)]])
  np.testing.assert_allclose(transforms.nucla_view_matrices([30], [-20], [1.5])[0], ry @ rx * 1.5, atol=1e-12)


def test_nucla_train_frame_indices():
  lengths = np.array([1, 2, 30, 200] * 500)
  streams = random_streams.ExampleStreams(random_streams.example_keys((0,), np.arange(len(lengths))))
  indices = transforms.draw_nucla_train_frame_indices(lengths, streams, 64)
  assert indices.shape == (len(lengths), 64) and (np.diff(indices, axis=1) >= 0).all()
  assert (indices.min(axis=1) >= 0).all() and (indices.max(axis=1) < lengths).all()
  assert (indices[lengths == 1] == 0).all()
  # Draws without replacement from 100 copies of every frame: the count of one frame of a 2-frame clip is
  # hypergeometric (population 200, 100 successes, 64 draws), narrower than the binomial of independent draws.
  zeros = (indices[lengths == 2] == 0).sum(axis=1)
  assert abs(zeros.mean() - 32) < 0.4
  assert abs(zeros.var() - 64 * 0.25 * 136 / 199) < 2.0


def test_view_matrices_and_drops():
  u = np.random.default_rng(0).random((4000, 3 + 5 + 20 + 64))
  views = transforms.nucla_views(u[:, :3], 60, (0.5, 1.5))
  scales = np.abs(np.linalg.det(views)) ** (1 / 3)
  assert 0.5 <= scales.min() and scales.max() <= 1.5
  np.testing.assert_allclose(views[0], transforms.nucla_view_matrices([np.floor(u[0, 0] * 121) - 60],
                                                                      [np.floor(u[0, 1] * 121) - 60],
                                                                      [0.5 + u[0, 2]])[0])
  axes, joints = transforms.nucla_drops(u[:, 3:], 0.5, 64, 20, 3)
  assert abs((axes >= 0).mean() - 0.5) < 0.03 and set(axes[axes >= 0]) == {0, 1, 2}
  dropped = joints.any(axis=(1, 2))
  assert abs(dropped.mean() - 0.5) < 0.03
  frames, joint_counts = joints.any(axis=2).sum(axis=1)[dropped], joints.any(axis=1).sum(axis=1)[dropped]
  assert frames.min() == 16 and frames.max() == 32 and joint_counts.min() == 4 and joint_counts.max() == 12
  np.testing.assert_array_equal(joints.sum(axis=(1, 2))[dropped], frames * joint_counts)
  assert transforms.nucla_drops(u[:, 3:], 0.0, 64, 20, 3)[1] is None
  x = np.ones((3, len(u), 64, 20))
  transforms.apply_drops(x, axes, joints)
  for i in range(20):
    zero = x[:, i] == 0                                    # (3, T, J)
    expected = np.zeros_like(zero)
    if axes[i] >= 0:
      expected[axes[i]] = True
    expected |= joints[i][None]
    np.testing.assert_array_equal(zero, expected)


@pytest.mark.parametrize('mode,channels', [('joint', 3), ('bone', 3), ('joint_bone', 6),
                                           ('bone_param', 4), ('motion', 3), ('joint_motion', 6),
                                           ('bone_motion', 3)])
def test_representations(mode, channels):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((10, 25, 3)).astype(np.float32)
  out = transforms.joint_representation(x, transforms.NTU_PARENTS, mode, num_valid_frames=7)
  assert out.shape == (10, 25, channels) == (10, 25, transforms.representation_channels(mode, 3))
  assert np.isfinite(out).all()
  if mode == 'bone':
    np.testing.assert_allclose(out[:, 3], x[:, 3] - x[:, 2])
    assert (out[:, 20] == 0).all()  # root
  if mode == 'bone_param':
    np.testing.assert_allclose(np.linalg.norm(out[:, :, 1:], axis=-1)[:, :20], 1, atol=1e-5)
    assert (out[:, 20] == 0).all()  # zero-length root bone: length 0, direction 0
  if mode == 'motion':
    np.testing.assert_allclose(out[:6], x[1:7] - x[:6])
    assert (out[6:] == 0).all()
  if mode == 'bone_motion':
    # joint 3 (head) hangs from joint 2 (neck): (x[t+1, 3] - x[t+1, 2]) - (x[t, 3] - x[t, 2]).
    np.testing.assert_allclose(out[:6, 3], (x[1:7, 3] - x[1:7, 2]) - (x[:6, 3] - x[:6, 2]), atol=1e-6)
    assert (out[6:] == 0).all() and (out[:, 20] == 0).all()  # padding frames; the root bone never moves


def test_unknown_representation():
  with pytest.raises(ValueError, match='unknown representation'):
    transforms.joint_representation(np.zeros((2, 13, 2)), transforms.PENN_PARENTS, 'angles')


def test_penn_transforms():
  skeleton = np.full((2, 13, 2), 100.0, np.float32)
  visibility = np.ones((2, 13), bool)
  visibility[1, 12] = False
  out = transforms.penn_zero_occluded(skeleton, visibility)
  assert (out[1, 12] == 0).all() and out.sum() == 100 * (2 * 13 * 2 - 2)
  normalised = transforms.penn_normalise_image(np.array([[[0, 0], [640, 480]]], np.float32), [480, 640])
  np.testing.assert_allclose(normalised, [[[-1, -1], [1, 1]]])
  np.testing.assert_array_equal(transforms.pad_time(np.ones((2, 3)), 4), [[1] * 3] * 2 + [[0] * 3] * 2)
  with pytest.raises(ValueError, match='more than the padded length'):
    transforms.pad_time(np.ones((5, 3)), 4)


def test_skeleton_parent_tables_are_trees():
  for parents in (transforms.PENN_PARENTS, transforms.NUCLA_PARENTS, transforms.NTU_PARENTS):
    roots = [j for j, p in enumerate(parents) if p == j]
    assert len(roots) == 1
    for joint in range(len(parents)):  # every joint reaches the root without cycles
      seen = set()
      while parents[joint] != joint:
        assert joint not in seen
        seen.add(joint)
        joint = parents[joint]


def test_ntu_test_window_positions():
  assert transforms.ntu_test_window(103, 0.95) == (2, 99)
  assert transforms.ntu_test_window(103, 0.95, 0.5) == (2, 99)
  assert transforms.ntu_test_window(100, 0.75, 0.0) == (0, 76)
  assert transforms.ntu_test_window(100, 0.75, 1.0) == (24, 76)
