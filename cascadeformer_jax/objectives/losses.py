"""Pretraining objectives for T1, selected by ``config.pretrain.objective``.

  masked_joints       the paper's: zero masked (frame, joint) slots (or frames), MSE on the masked entries.
  focal               masked_joints with each (joint, window) weighted by its motion energy (after AMR).
  query_decoder       T1 sees the visible r-frame patches only; learnable queries predict the masked patches
                      (after AMR's decoupled decoder).
  feature_prediction  predict hierarchical features of a jointly trained target network on frame differences,
                      with VICReg-style variance/covariance regularisation of the targets (after GFP).

Every objective is a function of (params, clips, valid frames, mask key, dropout key) returning the loss, and
a per-clip validation error (squared error sum, count) used for model selection.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from cascadeformer_jax.models.pretraining import model_config_for_objective
from cascadeformer_jax.models.pretraining import OBJECTIVES
from cascadeformer_jax.models.pretraining import pool_pairs
from cascadeformer_jax.objectives import masking

Array = jax.Array

# Names of the objectives' validation errors (Objective.metric).
ERROR_METRICS = ('masked_mse', 'feature_mse')


def objective_name(stage: ml_collections.ConfigDict) -> str:
  name = stage.get('objective', 'masked_joints')
  if name not in OBJECTIVES:
    raise ValueError(f'config.pretrain.objective must be one of {OBJECTIVES}, got {name!r}')
  return name


# ---------------------------------------------------------------------------------------------- focal weights


def motion_energy_weights(clips: Array, windows: Sequence[int] = (4, 8, 12), k: float = 1.0,
                          eps: float = 1e-6) -> Array:
  """AMR's focal weights ``w(e) = 1 / (1 + k * mean(e) / (e + eps))`` per (frame, joint), averaged over scales.

  At each scale the frames are tiled into consecutive windows of ``w`` frames (the last one may be shorter).
  A joint's energy e in a window is the mean over the window's frames of its squared displacement from the
  previous frame (frame 0 takes frame 1's); mean(e) is the clip's mean over windows and joints. Static joints
  get weights near 0, joints moving as much as the average 1/(1 + k), fast ones approach 1; a clip where
  nothing moves gets weight 1 everywhere.

  Args:
    clips: (B, T, J, C).
    windows: window lengths of the scales.
    k: strength of the down-weighting.
    eps: keeps the ratio finite for static joints.

  Returns:
    float32 (B, T, J).
  """
  clips = clips.astype(jnp.float32)
  batch, frames, joints, _ = clips.shape
  if frames < 2:
    return jnp.ones((batch, frames, joints), jnp.float32)
  displacement = jnp.sum(jnp.square(clips[:, 1:] - clips[:, :-1]), axis=-1)  # (B, T-1, J)
  displacement = jnp.concatenate([displacement[:, :1], displacement], axis=1)  # (B, T, J)
  weights = []
  for window in windows:
    count = -(-frames // window)
    padded = jnp.pad(displacement, ((0, 0), (0, count * window - frames), (0, 0)))
    per_window = padded.reshape(batch, count, window, joints).sum(axis=2)
    sizes = jnp.minimum(window, frames - jnp.arange(count) * window).astype(jnp.float32)
    energy = per_window / sizes[None, :, None]  # (B, windows, J)
    mean_energy = jnp.mean(energy, axis=(1, 2), keepdims=True)
    weight = 1.0 / (1.0 + k * mean_energy / (energy + eps))
    weights.append(jnp.repeat(weight, window, axis=1)[:, :frames])
  return jnp.mean(jnp.stack(weights), axis=0)


def weighted_masked_mse(reconstruction: Array, target: Array, mask: Array, weights: Array,
                        eps: float = 1e-8) -> Array:
  """``sum(w * mask * err^2) / (sum(w * mask) * C + eps)``: the masked MSE with per-slot weights (B, T, J)."""
  return masking.masked_mse(reconstruction, target, mask.astype(jnp.float32) * weights, eps)


# --------------------------------------------------------------------------------------------- VICReg terms


def vicreg_variance(z: Array, gamma: float = 1.0, eps: float = 1e-4, weights: Array | None = None) -> Array:
  """Hinge on the per-dimension standard deviation: ``mean_j max(0, gamma - sqrt(Var(z_j) + eps))``.

  z (N, D) samples; optional weights (N,) in [0, 1] select the samples. A collapsed representation (every
  sample equal) gets the largest value, ``gamma - sqrt(eps)``.
  """
  mean, variance = _weighted_moments(z, weights)
  del mean
  return jnp.mean(jax.nn.relu(gamma - jnp.sqrt(variance + eps)))


def vicreg_covariance(z: Array, weights: Array | None = None) -> Array:
  """Sum of the squared off-diagonal covariances divided by D (0 for decorrelated or collapsed features)."""
  mean, _ = _weighted_moments(z, weights)
  w = jnp.ones(z.shape[:1], z.dtype) if weights is None else weights.astype(z.dtype)
  centred = (z - mean) * jnp.sqrt(w)[:, None]
  covariance = centred.T @ centred / jnp.maximum(jnp.sum(w) - 1.0, 1.0)
  off_diagonal = covariance - jnp.diag(jnp.diag(covariance))
  return jnp.sum(jnp.square(off_diagonal)) / z.shape[-1]


def _weighted_moments(z: Array, weights: Array | None) -> tuple[Array, Array]:
  """Mean and unbiased variance per dimension over the (weighted) samples of z (N, D)."""
  w = jnp.ones(z.shape[:1], z.dtype) if weights is None else weights.astype(z.dtype)
  total = jnp.sum(w)
  mean = jnp.sum(z * w[:, None], axis=0) / jnp.maximum(total, 1e-12)
  variance = jnp.sum(jnp.square(z - mean) * w[:, None], axis=0) / jnp.maximum(total - 1.0, 1.0)
  return mean, variance


# ------------------------------------------------------------------------------------------- patch masking


def patch_mask(key: Array, batch_size: int, num_frames: int, patch: int, ratio: float) -> tuple[Array, Array]:
  """Masks ``floor(ratio * P)`` of the P = T / r temporal patches per clip (at least one, never all).

  Returns:
    visible_frames: int32 (B, V * r), the frame indices of the V visible patches, in temporal order.
    masked: bool (B, T), True for frames of masked patches.
  """
  if num_frames % patch:
    raise ValueError(f'the query decoder predicts patches of decoder_patch={patch} frames, but clips have '
                     f'{num_frames} frames (not a multiple); change data.num_frames (Penn: data.penn.pad_multiple) '
                     'or model.decoder_patch')
  patches = num_frames // patch
  if patches < 2:
    raise ValueError(f'clips of {num_frames} frames hold only {patches} patch of {patch} frames; the query '
                     'decoder needs at least 2 (one visible, one masked)')
  masked_count = min(max(1, int(ratio * patches)), patches - 1)
  visible_count = patches - masked_count
  scores = jax.random.uniform(key, (batch_size, patches))
  _, visible = jax.lax.top_k(scores, visible_count)
  visible = jnp.sort(visible, axis=1)
  visible_frames = (visible[:, :, None] * patch + jnp.arange(patch)[None, None, :]).reshape(batch_size, -1)
  patch_visible = jnp.zeros((batch_size, patches), bool).at[jnp.arange(batch_size)[:, None], visible].set(True)
  masked = jnp.repeat(~patch_visible, patch, axis=1)
  return visible_frames.astype(jnp.int32), masked


# ----------------------------------------------------------------------------------------------- objectives


@dataclasses.dataclass(frozen=True)
class Objective:
  """An objective bound to its model and stage config.

  loss(params, clips, valid, mask_key, dropout_key) -> (scalar loss, metrics dict)
  errors(params, clips, valid, mask_key) -> per-clip (squared error sum, scored entry count), deterministic.
  """

  name: str
  metric: str  # name of the validation error: errors' sum / count over the split
  loss: Callable[..., tuple[Array, dict[str, Array]]]
  errors: Callable[..., tuple[Array, Array]]


def _scored_slots(mask: Array, valid: Array | None) -> Array:
  return mask if valid is None else mask & valid[:, :, None]


def _per_clip_errors(reconstruction: Array, clips: Array, slots: Array) -> tuple[Array, Array]:
  squared = jnp.sum(jnp.square(reconstruction - clips) * slots[..., None], axis=(1, 2, 3))
  return squared, jnp.sum(slots, axis=(1, 2)).astype(jnp.float32) * clips.shape[-1]


def _apply(model: nn.Module, params: Any, inputs: Array, dropout_key: Array | None, **kwargs):
  """The model in training mode with ``dropout_key``, deterministic without one."""
  if dropout_key is None:
    return model.apply({'params': params}, inputs, **kwargs)
  return model.apply({'params': params}, inputs, deterministic=False, rngs={'dropout': dropout_key}, **kwargs)


def _mask_settings(stage: ml_collections.ConfigDict) -> tuple[str, float]:
  mode = stage.get('mask_mode', 'joints')
  if mode not in masking.MASK_MODES:
    raise ValueError(f'mask_mode must be one of {masking.MASK_MODES}, got {mode!r}')
  return mode, float(stage.get('mask_ratio', 0.3))


def _masked_inputs(mode: str, ratio: float, clips: Array, key: Array) -> tuple[Array, Array]:
  """(model input, bool (B, T, J) mask) for a mask mode; mode 'none' leaves the input as it is."""
  batch_size, num_frames, num_joints, _ = clips.shape
  mask = masking.draw_mask(mode, key, batch_size, num_frames, num_joints, ratio)
  return (clips if mode == 'none' else masking.apply_mask(clips, mask)), mask


def _reconstruction_objective(name: str, reconstruct: Callable[..., tuple[Array, Array]],
                              slot_weights: Callable[[Array], Array] | None = None) -> Objective:
  """Loss and validation error of an objective that reconstructs the joints of its scored slots.

  ``reconstruct(params, clips, valid, mask_key, dropout_key) -> (reconstruction, scored slots (B, T, J))``;
  ``slot_weights(clips)`` optionally weights the slots of the training loss.
  """

  def loss(params, clips, valid, mask_key, dropout_key):
    reconstruction, slots = reconstruct(params, clips, valid, mask_key, dropout_key)
    if slot_weights is None:
      return masking.masked_mse(reconstruction, clips, slots), {}
    return weighted_masked_mse(reconstruction, clips, slots, slot_weights(clips)), {
        'masked_mse': masking.masked_mse(reconstruction, clips, slots)}

  def errors(params, clips, valid, mask_key):
    reconstruction, slots = reconstruct(params, clips, valid, mask_key, None)
    return _per_clip_errors(reconstruction, clips, slots)

  return Objective(name, 'masked_mse', loss, errors)


def _masked_joints_objective(name: str, model: nn.Module, stage: ml_collections.ConfigDict) -> Objective:
  mode, ratio = _mask_settings(stage)

  def reconstruct(params, clips, valid, mask_key, dropout_key):
    inputs, mask = _masked_inputs(mode, ratio, clips, mask_key)
    return _apply(model, params, inputs, dropout_key, frame_mask=valid), _scored_slots(mask, valid)

  if name != 'focal':
    return _reconstruction_objective(name, reconstruct)
  focal = stage.get('focal', ml_collections.ConfigDict())
  windows = tuple(int(w) for w in focal.get('windows', (4, 8, 12)))
  k, eps = float(focal.get('k', 1.0)), float(focal.get('eps', 1e-6))
  return _reconstruction_objective(name, reconstruct, lambda clips: motion_energy_weights(clips, windows, k, eps))


def _query_decoder_objective(model: nn.Module, stage: ml_collections.ConfigDict) -> Objective:
  ratio = float(stage.get('mask_ratio', 0.3))
  patch = model.config.decoder_patch

  def reconstruct(params, clips, valid, mask_key, dropout_key):
    batch_size, num_frames = clips.shape[:2]
    visible_frames, masked = patch_mask(mask_key, batch_size, num_frames, patch, ratio)
    visible = jnp.take_along_axis(clips, visible_frames[:, :, None, None], axis=1)
    visible_valid = None if valid is None else jnp.take_along_axis(valid, visible_frames, axis=1)
    reconstruction = _apply(model, params, visible, dropout_key, positions=visible_frames, num_frames=num_frames,
                            frame_mask=visible_valid)
    slots = jnp.broadcast_to(masked[:, :, None], clips.shape[:3])
    return reconstruction, _scored_slots(slots, valid)

  return _reconstruction_objective('query_decoder', reconstruct)


def _level_weights(slot_mask: Array, levels: int) -> list[Array]:
  """Per-level position weights: the fraction of masked joints of each frame, pooled like the features."""
  weights = [jnp.mean(slot_mask.astype(jnp.float32), axis=-1)]
  for _ in range(1, levels):
    weights.append(pool_pairs(weights[-1][..., None])[..., 0])
  return weights


def _feature_prediction_objective(model: nn.Module, stage: ml_collections.ConfigDict) -> Objective:
  mode, ratio = _mask_settings(stage)
  terms = stage.get('feature_prediction', ml_collections.ConfigDict())
  prediction_weight = float(terms.get('prediction_weight', 5.0))  # lambda
  variance_weight = float(terms.get('variance_weight', 5.0))  # alpha
  covariance_weight = float(terms.get('covariance_weight', 1.0))  # beta
  gamma = float(terms.get('gamma', 1.0))
  levels = model.config.target_levels

  def predict(params, clips, valid, mask_key, dropout_key):
    inputs, mask = _masked_inputs(mode, ratio, clips, mask_key)
    predictions, targets = _apply(model, params, inputs, dropout_key, clean=clips, frame_mask=valid)
    return predictions, targets, _level_weights(_scored_slots(mask, valid), levels)

  def loss(params, clips, valid, mask_key, dropout_key):
    predictions, targets, weights = predict(params, clips, valid, mask_key, dropout_key)
    samples = [None] * levels if valid is None else _level_weights(valid[:, :, None], levels)
    prediction = variance = covariance = 0.0
    for predicted, target, weight, sample in zip(predictions, targets, weights, samples):
      squared = jnp.mean(jnp.square(predicted - target), axis=-1)
      prediction += jnp.sum(squared * weight) / (jnp.sum(weight) + 1e-8)
      flat = target.reshape(-1, target.shape[-1])
      sample = None if sample is None else sample.reshape(-1)
      variance += vicreg_variance(flat, gamma, weights=sample)
      covariance += vicreg_covariance(flat, weights=sample)
    prediction, variance, covariance = prediction / levels, variance / levels, covariance / levels
    total = prediction_weight * prediction + variance_weight * variance + covariance_weight * covariance
    return total, {'feature_mse': prediction, 'variance_term': variance, 'covariance_term': covariance}

  def errors(params, clips, valid, mask_key):
    predictions, targets, weights = predict(params, clips, valid, mask_key, None)
    squared = jnp.sum(jnp.mean(jnp.square(predictions[0] - targets[0]), axis=-1) * weights[0], axis=1)
    return squared, jnp.sum(weights[0], axis=1)

  return Objective('feature_prediction', 'feature_mse', loss, errors)


def make_objective(model: nn.Module, stage: ml_collections.ConfigDict) -> Objective:
  """The objective of ``stage.objective`` for ``model`` (from models.pretraining.pretraining_module)."""
  name = objective_name(stage)
  if model_config_for_objective(name, model.config).decoder != model.config.decoder:
    raise ValueError(f"the {name} objective cannot train a model with decoder={model.config.decoder!r}; build the model "
                     'from model_config_for_objective()')
  if name == 'query_decoder':
    return _query_decoder_objective(model, stage)
  if name == 'feature_prediction':
    return _feature_prediction_objective(model, stage)
  return _masked_joints_objective(name, model, stage)
