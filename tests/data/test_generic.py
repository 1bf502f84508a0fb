"""Preprocessing of clips in any layout (folder datasets)."""

import numpy as np
import pytest

from cascadeformer_jax import data as data_lib
from cascadeformer_jax.data import generic
from cascadeformer_jax.data import layouts

PARENTS = np.array([0, 0, 1])  # a 3-joint chain: root, middle, tip


def _chain(frames=4, coords=3, offset=(5.0, 5.0, 5.0)):
  """Root at `offset` + t·(1, 0, 0); bones of length 2 along y."""
  clip = np.zeros((frames, 3, coords), np.float32)
  for t in range(frames):
    for j in range(3):
      clip[t, j] = (np.array(offset[:coords]) + np.array([t, 2 * j, 0][:coords]))
  return clip


def test_centre_first_frame_keeps_the_trajectory_and_missing_joints():
  clip = _chain()
  clip[2, 2] = 0  # missing
  out = generic.centre_clip(clip, [0], 'first_frame')
  np.testing.assert_allclose(out[0, 0], 0)
  np.testing.assert_allclose(out[3, 0], [3, 0, 0])
  assert not out[2, 2].any()
  per_frame = generic.centre_clip(clip, [0], 'per_frame')
  np.testing.assert_allclose(per_frame[:, 0], 0)
  np.testing.assert_allclose(per_frame[1, 2], [0, 4, 0])


def test_centre_uses_the_first_frame_where_the_centre_is_present():
  clip = _chain()
  clip[0, 0] = 0
  out = generic.centre_clip(clip, [0], 'first_frame')
  np.testing.assert_allclose(out[1, 0], 0)


def test_bone_scale_and_minmax():
  clip = generic.centre_clip(_chain(), [0])
  assert generic.mean_bone_length(clip, PARENTS) == pytest.approx(2.0)
  scaled = generic.normalise_scale(clip, PARENTS, 'bone')
  assert generic.mean_bone_length(scaled, PARENTS) == pytest.approx(1.0)
  minmax = generic.normalise_scale(_chain(), PARENTS, 'minmax')
  present = minmax[generic.present_joints(minmax)]
  np.testing.assert_allclose(present.min(axis=0), [-1, -1, 0])  # the constant z axis maps to 0
  np.testing.assert_allclose(present.max(axis=0), [1, 1, 0])


def test_rotation_keeps_lengths_in_2d_and_3d():
  rng = np.random.default_rng(0)
  for coords in (2, 3):
    clip = generic.centre_clip(_chain(coords=coords), [0])
    rotated = generic.random_rotation_scale(clip, rng, 30.0, (1.0, 1.0))
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(clip, axis=-1), rtol=1e-5)
    assert not np.allclose(rotated, clip)
    doubled = generic.random_rotation_scale(clip, rng, 0.0, (2.0, 2.0))
    np.testing.assert_allclose(doubled, 2 * clip, rtol=1e-6)


def test_resample_and_pad():
  clip = _chain(frames=5)
  out = generic.resample_time(clip, 10)
  assert out.shape == (10, 3, 3)
  np.testing.assert_allclose(out[0], clip[0]) and np.testing.assert_allclose(out[-1], clip[-1])
  one = generic.resample_time(clip[:1], 8)
  np.testing.assert_allclose(one, np.repeat(clip[:1], 8, axis=0))
  padded, length = generic.pad_time(clip, 8)
  assert length == 5 and padded.shape == (8, 3, 3) and not padded[5:].any()
  cut, length = generic.pad_time(clip, 3)
  assert length == 3
  np.testing.assert_array_equal(cut, clip[1:4])  # centre window
  random_cut, _ = generic.pad_time(clip, 3, np.random.default_rng(1))
  assert random_cut.shape == (3, 3, 3)


def test_person_selection():
  clip = np.zeros((4, 2, 3, 3), np.float32)
  clip[:, 1] = _chain()
  assert generic.select_person(clip, 'abs_sum').any()
  assert not generic.select_person(clip, 'first').any()


def _bystander_clip(bystander_loses_joints: bool = False) -> np.ndarray:
  """(20, 2, 3, 2) pixel coordinates: an idle bystander in slot 0, farther from the origin (1 px of jitter), and the
  actor in slot 1, waving over 60 px. With ``bystander_loses_joints`` the bystander's tip is missing (0) in every
  other frame, as pose estimators report a joint they lose."""
  rng = np.random.default_rng(0)
  bones = np.array([[0.0, 0.0], [0.0, 30.0], [0.0, 60.0]])
  angle = np.arange(20)[:, None] / 3
  clip = np.zeros((20, 2, 3, 2), np.float32)
  clip[:, 0] = np.array([800.0, 600.0]) + bones + rng.normal(size=(20, 3, 2))
  clip[:, 1] = np.array([300.0, 200.0]) + bones + 60 * np.concatenate([np.sin(angle), np.cos(angle)], 1)[:, None]
  if bystander_loses_joints:
    clip[::2, 0, 2] = 0
  return clip


def test_the_default_person_selection_keeps_the_moving_person_not_a_bystander():
  for loses_joints in (False, True):
    clip = _bystander_clip(loses_joints)
    actor = clip[:, 1]
    np.testing.assert_array_equal(generic.select_person(clip), actor)
    np.testing.assert_array_equal(generic.select_person(clip, 'observed_motion'), actor)
    # The folder datasets' default config, through the whole per-clip preprocessing.
    settings = data_lib.default_data_config(data_lib.FOLDER).generic.to_dict()
    kept, _ = generic.process_clip(clip, settings, PARENTS, [0], 20)
    expected, _ = generic.process_clip(actor, settings, PARENTS, [0], 20)
    np.testing.assert_array_equal(kept, expected)
  # The other rules, as documented: the farthest from the origin; motion that counts missing joints.
  np.testing.assert_array_equal(generic.select_person(_bystander_clip(), 'abs_sum'), _bystander_clip()[:, 0])
  lossy = _bystander_clip(bystander_loses_joints=True)
  np.testing.assert_array_equal(generic.select_person(lossy, 'motion_variance'), lossy[:, 0])
  with pytest.raises(ValueError, match="unknown person selection rule 'largest'"):
    generic.select_person(lossy, 'largest')


def test_observed_motion_ignores_missing_joints():
  still = np.ones((6, 1, 3, 2), np.float32)
  still[::2, 0, 1] = 0  # a joint that drops out of every other frame is not motion
  assert generic.observed_motion(still).tolist() == [0.0]
  still[:, :, 2] = 0  # never observed
  still[1, :, 0] = 0  # observed in all frames but one
  assert generic.observed_motion(still).tolist() == [0.0]


@pytest.mark.parametrize('stored, rule', [
    (None, 'observed_motion'),  # a new work directory
    ({'data.layout': 'generic', 'data.generic.person_selection': 'abs_sum'}, 'abs_sum'),  # the former default
    ({'data.layout': 'generic'}, 'abs_sum'),  # trained before the field was recorded
    ({'data.layout': 'generic', 'data.generic.person_selection': 'motion_variance'}, 'motion_variance'),
    ({'data.layout': 'generic', 'data.generic.person_selection': 'observed_motion'}, 'observed_motion'),
    ({'data.layout': 'ntu', 'data.ntu.person_selection': 'abs_sum'}, 'observed_motion'),  # not a folder dataset
])
def test_trained_person_selection(stored, rule):
  assert generic.trained_person_selection(stored) == rule


def test_process_clip_is_deterministic_in_eval_and_reproducible_in_training():
  layout = layouts.get_layout('coco17')
  rng = np.random.default_rng(3)
  clip = rng.normal(size=(20, 1, 17, 2)).astype(np.float32) * 50 + 300
  settings = {'temporal': 'resample'}
  out, length = generic.process_clip(clip, settings, layout.parents_array, layout.centre_joints, 16)
  assert out.shape == (16, 17, 2) and out.dtype == np.float32 and length == 16
  again, _ = generic.process_clip(clip, settings, layout.parents_array, layout.centre_joints, 16)
  np.testing.assert_array_equal(out, again)
  # Same length: centred on the hips of the first frame and scaled to unit mean bone length.
  same, _ = generic.process_clip(clip, settings, layout.parents_array, layout.centre_joints, 20)
  np.testing.assert_allclose(same[0, list(layout.centre_joints)].mean(axis=0), 0, atol=1e-5)
  assert generic.mean_bone_length(same, layout.parents_array) == pytest.approx(1.0, rel=1e-5)
  train_a, _ = generic.process_clip(clip, settings, layout.parents_array, layout.centre_joints, 16,
                                    np.random.default_rng(7), train=True)
  train_b, _ = generic.process_clip(clip, settings, layout.parents_array, layout.centre_joints, 16,
                                    np.random.default_rng(7), train=True)
  np.testing.assert_array_equal(train_a, train_b)
  assert not np.allclose(train_a, out)
  padded, length = generic.process_clip(clip[:5], {'temporal': 'pad'}, layout.parents_array, layout.centre_joints,
                                        16)
  assert length == 5 and not padded[5:].any()


def test_validate_settings():
  generic.validate_settings(generic.DEFAULT_SETTINGS)
  with pytest.raises(ValueError, match='generic.scale'):
    generic.validate_settings({'scale': 'zscore'})
  with pytest.raises(ValueError, match='unknown generic settings'):
    generic.validate_settings({'rotation': 3})
  with pytest.raises(ValueError, match='crop_interval'):
    generic.validate_settings({'crop_interval': (0.0, 1.0)})
