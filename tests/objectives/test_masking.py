"""Masked-joint pretraining masks and loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cascadeformer_jax.objectives import masking

pytestmark = pytest.mark.usefixtures('fast_compile')  # small models: see conftest.fast_compile


@pytest.mark.parametrize('frames,joints', [(64, 25), (12, 13), (1, 3)])
def test_joint_mask_has_the_exact_count_per_clip(frames, joints):
  mask = masking.random_joint_mask(jax.random.key(0), 16, frames, joints, 0.3)
  assert mask.shape == (16, frames, joints) and mask.dtype == jnp.bool_
  expected = max(1, int(0.3 * frames * joints))
  np.testing.assert_array_equal(np.sum(mask, axis=(1, 2)), expected)


def test_joint_mask_is_uniform_and_differs_between_clips():
  mask = np.asarray(masking.random_joint_mask(jax.random.key(1), 4000, 4, 5, 0.3))
  frequency = mask.mean(axis=0)
  np.testing.assert_allclose(frequency, 0.3, atol=0.03)
  assert len({m.tobytes() for m in mask[:50]}) > 45
  other = np.asarray(masking.random_joint_mask(jax.random.key(2), 4000, 4, 5, 0.3))
  assert not np.array_equal(mask, other)


def test_frame_mask_masks_whole_frames():
  mask = np.asarray(masking.random_frame_mask(jax.random.key(0), 8, 10, 6, 0.3))
  assert np.all(mask.all(axis=2) == mask.any(axis=2))
  np.testing.assert_array_equal(mask[:, :, 0].sum(axis=1), 3)


def test_apply_mask_zeroes_all_coordinates_of_masked_slots_only():
  clips = jnp.asarray(np.random.default_rng(0).uniform(1, 2, (3, 6, 5, 2)), jnp.float32)
  mask = masking.random_joint_mask(jax.random.key(0), 3, 6, 5)
  masked = np.asarray(masking.apply_mask(clips, mask))
  mask = np.asarray(mask)
  assert np.all(masked[mask] == 0)
  np.testing.assert_array_equal(masked[~mask], np.asarray(clips)[~mask])


def test_masked_mse_averages_over_masked_scalar_entries_of_the_batch():
  target = np.zeros((2, 2, 2, 3), np.float32)
  reconstruction = np.ones_like(target)
  reconstruction[0, 0, 0] = [1.0, 2.0, 3.0]
  mask = np.zeros((2, 2, 2), bool)
  mask[0, 0, 0] = True  # squared errors 1, 4, 9
  mask[1, 1, 1] = True  # squared errors 1, 1, 1
  np.testing.assert_allclose(float(masking.masked_mse(reconstruction, target, mask, eps=0.0)), 17 / 6, rtol=1e-6)
  # Errors outside the mask do not count.
  reconstruction[0, 1] = 100.0
  np.testing.assert_allclose(float(masking.masked_mse(reconstruction, target, mask, eps=0.0)), 17 / 6, rtol=1e-6)


def test_draw_mask_modes():
  assert np.asarray(masking.draw_mask('none', jax.random.key(0), 2, 3, 4)).all()
  frames = np.asarray(masking.draw_mask('frames', jax.random.key(0), 2, 10, 4, 0.5))
  np.testing.assert_array_equal(frames.sum(axis=(1, 2)), 5 * 4)
  with pytest.raises(ValueError, match='mask_mode must be one of'):
    masking.draw_mask('patches', jax.random.key(0), 2, 3, 4)
