"""Masked-joint pretraining: on-device masks and the masked reconstruction loss."""

import jax
import jax.numpy as jnp

Array = jax.Array


def num_masked_slots(num_frames: int, num_joints: int, ratio: float) -> int:
  """``max(1, floor(ratio * T * J))``, the per-clip number of masked (frame, joint) slots of the original."""
  return max(1, int(ratio * num_frames * num_joints))


def random_joint_mask(key: Array, batch_size: int, num_frames: int, num_joints: int,
                      ratio: float = 0.3) -> Array:
  """Per clip, ``num_masked_slots`` distinct (frame, joint) slots drawn uniformly from the T x J grid.

  Returns:
    bool (B, T, J), True = masked.
  """
  num_slots = num_frames * num_joints
  count = num_masked_slots(num_frames, num_joints, ratio)
  scores = jax.random.uniform(key, (batch_size, num_slots))
  # The `count` largest of i.i.d. uniform scores form a uniformly random subset of that size.
  _, chosen = jax.lax.top_k(scores, count)
  mask = jnp.zeros((batch_size, num_slots), bool).at[jnp.arange(batch_size)[:, None], chosen].set(True)
  return mask.reshape(batch_size, num_frames, num_joints)


def random_frame_mask(key: Array, batch_size: int, num_frames: int, num_joints: int,
                      ratio: float = 0.3) -> Array:
  """Masks ``max(1, floor(ratio * T))`` whole frames per clip (all joints). Returns bool (B, T, J)."""
  count = max(1, int(ratio * num_frames))
  scores = jax.random.uniform(key, (batch_size, num_frames))
  _, chosen = jax.lax.top_k(scores, count)
  frames = jnp.zeros((batch_size, num_frames), bool).at[jnp.arange(batch_size)[:, None], chosen].set(True)
  return jnp.broadcast_to(frames[:, :, None], (batch_size, num_frames, num_joints))


MASK_MODES = ('joints', 'frames', 'none')


def draw_mask(mode: str, key: Array, batch_size: int, num_frames: int, num_joints: int,
              ratio: float = 0.3) -> Array:
  """The pretraining mask of ``mode``: 'joints' (the paper's), 'frames', or 'none' (every slot is scored)."""
  if mode == 'joints':
    return random_joint_mask(key, batch_size, num_frames, num_joints, ratio)
  if mode == 'frames':
    return random_frame_mask(key, batch_size, num_frames, num_joints, ratio)
  if mode == 'none':
    return jnp.ones((batch_size, num_frames, num_joints), bool)
  raise ValueError(f'mask_mode must be one of {MASK_MODES}, got {mode!r}')


def apply_mask(clips: Array, mask: Array) -> Array:
  """Sets every coordinate of the masked slots to 0. clips (B, T, J, C), mask (B, T, J)."""
  return jnp.where(mask[..., None], jnp.zeros((), clips.dtype), clips)


def masked_mse(reconstruction: Array, target: Array, mask: Array, eps: float = 1e-8) -> Array:
  """Mean squared error over the masked scalar entries of the whole batch.

  ``sum(mask * (reconstruction - target)^2) / (sum(mask) * C + eps)`` with the target the unmasked input,
  as the original (including its +1e-8). reconstruction/target (B, T, J, C), mask bool (B, T, J).
  """
  coords = target.shape[-1]
  weights = mask.astype(jnp.float32)[..., None]
  squared = jnp.square(reconstruction.astype(jnp.float32) - target.astype(jnp.float32))
  return jnp.sum(squared * weights) / (jnp.sum(weights) * coords + eps)
