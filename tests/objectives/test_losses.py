"""Pretraining objectives: focal weights, VICReg terms, patch masks, and one training run of each objective."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from cascadeformer_jax.config import configuration
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models.pretraining import model_config_for_objective
from cascadeformer_jax.models.pretraining import OBJECTIVES
from cascadeformer_jax.models.pretraining import pretraining_module
from cascadeformer_jax.objectives import losses as objectives
from cascadeformer_jax.train import steps

SMALL = ModelConfig(variant='1.0', layout='ntu', num_joints=5, coords=3, d_model=16, num_heads=2, num_layers=1,
                    num_classes=3, pos_len=16, ffn_dim=32, target_width=8)


def test_motion_energy_weights_by_hand():
  # One clip, 6 frames, 2 joints, 1 coordinate: joint 0 moves by 1 per frame, joint 1 by 3 from frame 3 on.
  x = np.zeros((1, 6, 2, 1), np.float32)
  x[0, :, 0, 0] = np.arange(6)
  x[0, 3:, 1, 0] = 3 * np.arange(1, 4)
  # Squared displacement per frame (frame 0 copies frame 1): joint 0: 1 1 1 1 1 1; joint 1: 0 0 0 9 9 9.
  eps, k = 1e-6, 2.0
  weights = np.asarray(objectives.motion_energy_weights(jnp.asarray(x), windows=(4,), k=k, eps=eps))
  # Windows of 4 frames: [0, 4) and [4, 6). Energies: joint 0: 1, 1; joint 1: 9/4, 9. Mean: 13.25 / 4.
  mean = (1 + 1 + 9 / 4 + 9) / 4

  def w(e):
    return 1 / (1 + k * mean / (e + eps))

  expected = np.array([[w(1)] * 4 + [w(1)] * 2, [w(9 / 4)] * 4 + [w(9)] * 2]).T
  np.testing.assert_allclose(weights[0], expected, rtol=1e-6)
  # Several scales average the per-scale weights.
  two = np.asarray(objectives.motion_energy_weights(jnp.asarray(x), windows=(4, 2), k=k, eps=eps))
  only_two = np.asarray(objectives.motion_energy_weights(jnp.asarray(x), windows=(2,), k=k, eps=eps))
  np.testing.assert_allclose(two, (weights + only_two) / 2, rtol=1e-6)


def test_static_joints_get_weights_near_zero_and_eps_keeps_them_finite(fast_compile):
  # Jitted: op-by-op dispatch compiles every small op of each call, which costs far more than one compile per shape.
  motion_energy_weights = jax.jit(objectives.motion_energy_weights, static_argnames=('windows',))
  rng = np.random.default_rng(0)
  x = np.cumsum(rng.normal(size=(2, 24, 4, 3)), axis=1).astype(np.float32)
  x[:, :, 2] = x[:, :1, 2]  # joint 2 never moves
  weights = np.asarray(motion_energy_weights(jnp.asarray(x)))
  assert weights.shape == (2, 24, 4) and np.all(np.isfinite(weights))
  assert np.all(weights[:, :, 2] < 1e-5)
  assert np.all(weights[:, :, [0, 1, 3]] > 0.1) and np.all(weights < 1)
  # Without eps a static joint would divide by zero; a larger eps raises its weight.
  larger = np.asarray(motion_energy_weights(jnp.asarray(x), eps=1.0))
  assert np.all(larger[:, :, 2] > weights[:, :, 2])
  # Nothing moving at all: every weight is 1.
  still = np.asarray(motion_energy_weights(jnp.zeros((1, 8, 3, 2))))
  np.testing.assert_allclose(still, 1.0)


def test_weighted_masked_mse_reduces_to_masked_mse_with_unit_weights():
  rng = np.random.default_rng(1)
  recon, target = (jnp.asarray(rng.normal(size=(2, 4, 3, 2)), jnp.float32) for _ in range(2))
  mask = jnp.asarray(rng.random((2, 4, 3)) < 0.5)
  plain = objectives.masking.masked_mse(recon, target, mask)
  np.testing.assert_allclose(objectives.weighted_masked_mse(recon, target, mask, jnp.ones((2, 4, 3))), plain,
                             rtol=1e-6)
  weights = jnp.asarray(rng.random((2, 4, 3)), jnp.float32)
  squared = np.sum(np.square(np.asarray(recon) - np.asarray(target)), -1)
  w = np.asarray(weights) * np.asarray(mask)
  np.testing.assert_allclose(objectives.weighted_masked_mse(recon, target, mask, weights),
                             np.sum(w * squared) / (np.sum(w) * 2 + 1e-8), rtol=1e-5)


def test_vicreg_variance_is_maximal_for_collapse():
  gamma, eps = 1.0, 1e-4
  collapsed = jnp.ones((32, 6)) * 0.7
  np.testing.assert_allclose(objectives.vicreg_variance(collapsed, gamma, eps), gamma - np.sqrt(eps), rtol=1e-6)
  spread = jnp.asarray(np.random.default_rng(2).normal(size=(4096, 6)) * 2.0, jnp.float32)
  assert float(objectives.vicreg_variance(spread, gamma, eps)) == 0.0
  half = jnp.asarray(np.random.default_rng(3).normal(size=(4096, 6)) * 0.5, jnp.float32)
  np.testing.assert_allclose(objectives.vicreg_variance(half, gamma, eps), 0.5, atol=0.02)
  for z in (collapsed, spread, half):
    value = float(objectives.vicreg_variance(z, gamma, eps))
    assert value <= gamma - np.sqrt(eps) + 1e-6


def test_vicreg_covariance_by_hand():
  z = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.5], [4.0, 7.0]], np.float32)
  covariance = np.cov(z, rowvar=False)
  np.testing.assert_allclose(objectives.vicreg_covariance(jnp.asarray(z)), 2 * covariance[0, 1] ** 2 / 2,
                             rtol=1e-5)
  assert float(objectives.vicreg_covariance(jnp.ones((10, 4)))) == 0.0
  # Sample weights select rows: weight 0 rows do not count.
  weights = jnp.asarray([1.0, 1.0, 1.0, 0.0])
  np.testing.assert_allclose(objectives.vicreg_covariance(jnp.asarray(z), weights),
                             2 * np.cov(z[:3], rowvar=False)[0, 1] ** 2 / 2, rtol=1e-5)


@pytest.mark.parametrize('patch,ratio', [(1, 0.5), (2, 0.3), (4, 0.75), (4, 0.99)])
def test_patch_mask(patch, ratio):
  frames = 16
  visible, masked = objectives.patch_mask(jax.random.key(0), 3, frames, patch, ratio)
  visible, masked = np.asarray(visible), np.asarray(masked)
  patches = frames // patch
  masked_count = min(max(1, int(ratio * patches)), patches - 1)
  assert visible.shape == (3, (patches - masked_count) * patch)
  for row_visible, row_masked in zip(visible, masked):
    assert np.all(np.diff(row_visible) > 0)
    assert sorted(set(row_visible) | set(np.flatnonzero(row_masked))) == list(range(frames))
    assert not set(row_visible) & set(np.flatnonzero(row_masked))
    assert np.all(row_masked.reshape(patches, patch) == row_masked.reshape(patches, patch)[:, :1])


def test_patch_mask_errors():
  with pytest.raises(ValueError, match='decoder_patch=3 frames, but clips have 16 frames'):
    objectives.patch_mask(jax.random.key(0), 1, 16, 3, 0.5)
  with pytest.raises(ValueError, match='at least 2'):
    objectives.patch_mask(jax.random.key(0), 1, 4, 4, 0.5)


def test_objective_selects_the_decoder():
  assert model_config_for_objective('query_decoder', SMALL).decoder == 'query'
  assert model_config_for_objective('feature_prediction', SMALL).decoder == 'features'
  assert model_config_for_objective('focal', SMALL.replace(decoder='mlp')).decoder == 'mlp'
  with pytest.raises(ValueError, match="model.decoder must be one of"):
    model_config_for_objective('masked_joints', SMALL.replace(decoder='query'))
  with pytest.raises(ValueError, match="uses model.decoder='features'"):
    model_config_for_objective('feature_prediction', SMALL.replace(decoder='mlp'))
  with pytest.raises(ValueError, match='objective must be one of'):
    model_config_for_objective('contrastive', SMALL)
  config = configuration.experiment_config('synthetic_actions', SMALL)
  config.pretrain.objective = 'query_decoder'
  assert configuration.model_config(config).decoder == 'query'
  with pytest.raises(ValueError, match='cannot train a model with decoder'):
    objectives.make_objective(pretraining_module(SMALL), config.pretrain)


@functools.cache
def _jitted_init(model_config: ModelConfig):
  """One compiled init per model: objectives that share a model (masked_joints, focal) share its compile."""
  return jax.jit(pretraining_module(model_config).init)


def _stage(objective: str, **overrides) -> ml_collections.ConfigDict:
  stage = configuration.stage_config(mask_ratio=0.5, mask_mode='frames', **configuration.pretrain_objective_defaults())
  stage.update(objective=objective, optimizer='adam', lr=3e-3, **overrides)
  return stage


@pytest.mark.parametrize('objective', OBJECTIVES)
def test_every_objective_trains(objective, fast_compile):
  model_config = model_config_for_objective(objective, SMALL)
  model = pretraining_module(model_config)
  stage = _stage(objective)
  rng = np.random.default_rng(4)
  t = np.linspace(0, 2 * np.pi, 16)
  clips = np.sin(t[None, :, None, None] * rng.uniform(0.5, 2, (8, 1, 5, 3)) + rng.uniform(0, 6, (8, 1, 5, 3)))
  batch = {'skeleton': jnp.asarray(clips, jnp.float32),
           'lengths': jnp.asarray([16, 16, 16, 16, 12, 12, 12, 12], jnp.int32)}
  params = _jitted_init(model_config)(jax.random.key(0), batch['skeleton'])['params']
  assert set(params) >= {'t1'}
  optimizer = optax.adam(3e-3)
  step = jax.jit(steps.make_pretrain_step(model, optimizer, lambda _: 3e-3, stage, padding_aware=True))
  objective = objectives.make_objective(model, stage)
  # What the pretraining evaluator computes: the objective's errors with a fixed mask per evaluation batch.
  evaluate = jax.jit(lambda params, batch, index: objective.errors(
      params, batch['skeleton'], steps.frame_mask(batch, True), jax.random.fold_in(jax.random.key(0), index)))
  state = steps.init_state(params, optimizer)
  errors_before = evaluate(state['params'], batch, 0)
  losses = []
  for _ in range(30):
    state, metrics = step(state, batch, jax.random.key(1))
    losses.append(float(metrics['loss']))
    assert not metrics['nonfinite']
  assert np.mean(losses[-5:]) < np.mean(losses[:5])
  squared, count = (np.asarray(a) for a in evaluate(state['params'], batch, 0))
  assert squared.shape == count.shape == (8,) and np.all(count > 0)
  if objective != 'feature_prediction':  # The target network moves, so its error is not comparable over time.
    assert np.sum(squared) / np.sum(count) < np.sum(errors_before[0]) / np.sum(errors_before[1])
  if objective == 'feature_prediction':
    assert {'feature_mse', 'variance_term', 'covariance_term'} <= set(metrics)
