"""Learning-rate schedules, optimisers and freezing."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cascadeformer_jax.config import configuration
from cascadeformer_jax.train import optim


def _stage(**changes):
  return configuration.stage_config(**changes)


def test_per_epoch_warmup_cosine_is_zero_in_the_first_epoch_and_constant_within_epochs():
  stage = _stage(epochs=100, lr=3e-5, schedule='warmup_cosine', schedule_unit='epoch', warmup_fraction=0.05)
  schedule = optim.lr_schedule(stage, steps_per_epoch=10)
  lrs = np.array([float(schedule(s)) for s in range(1000)]).reshape(100, 10)
  np.testing.assert_array_equal(lrs[0], 0.0)
  assert np.all(lrs == lrs[:, :1])
  # HF get_cosine_schedule_with_warmup with warmup int(0.05 * 100) = 5 epochs.
  for epoch in (1, 4, 5, 50, 99):
    expected = 3e-5 * epoch / 5 if epoch < 5 else 3e-5 * 0.5 * (1 + math.cos(math.pi * (epoch - 5) / 95))
    np.testing.assert_allclose(lrs[epoch, 0], expected, rtol=1e-5, atol=1e-11)


def test_optax_reference_for_per_epoch_schedule():
  """optax.warmup_cosine_decay_schedule(0, lr, w, N, 0) at the epoch index is the same schedule.

  See docs/original_code.md, training recipes.
  """
  stage = _stage(epochs=40, lr=1e-3, schedule='warmup_cosine', schedule_unit='epoch', warmup_fraction=0.05)
  ours = optim.lr_schedule(stage, steps_per_epoch=3)
  reference = optax.warmup_cosine_decay_schedule(0.0, 1e-3, 2, 40, 0.0)
  for step in range(120):
    np.testing.assert_allclose(float(ours(step)), float(reference(step // 3)), rtol=1e-5, atol=1e-12)


def test_per_step_warmup_and_cosine_annealing():
  warm = optim.lr_schedule(_stage(epochs=10, lr=1e-4, schedule='warmup_cosine', warmup_fraction=0.05), 20)
  assert float(warm(0)) == 0.0
  np.testing.assert_allclose(float(warm(5)), 1e-4 * 5 / 10, rtol=1e-6)  # warmup int(0.05 * 200) = 10 steps
  np.testing.assert_allclose(float(warm(200)), 0.0, atol=1e-12)
  cosine = optim.lr_schedule(_stage(epochs=100, lr=1e-4, schedule='cosine', schedule_unit='epoch', min_lr=1e-6), 7)
  for epoch in (0, 30, 100):
    expected = 1e-6 + (1e-4 - 1e-6) * 0.5 * (1 + math.cos(math.pi * epoch / 100))
    np.testing.assert_allclose(float(cosine(epoch * 7 + 3)), expected, rtol=1e-5)


@pytest.mark.parametrize('changes,message', [(dict(schedule='linear'), 'schedule must be one of'),
                                             (dict(schedule_unit='batch'), "schedule_unit must be 'step'"),
                                             (dict(optimizer='lamb'), 'optimizer must be one of')])
def test_invalid_settings(changes, message):
  params = {'w': jnp.ones(2)}
  with pytest.raises(ValueError, match=message):
    optim.make_optimizer(_stage(**changes), 5, params)


def _params():
  return {'t1': {'encoder': {'layer_0': {'w': jnp.ones(3)}, 'layer_1': {'w': jnp.ones(3)}},
                 'pos_embedding': jnp.ones(2)},
          't2': {'layer_0': {'w': jnp.ones(3)}}, 'head': {'w': jnp.ones(2)}}


@pytest.mark.parametrize('freeze,changed', [
    ('none', {"['t1']['encoder']['layer_0']['w']", "['t1']['encoder']['layer_1']['w']", "['t1']['pos_embedding']",
              "['t2']['layer_0']['w']", "['head']['w']"}),
    ('t1', {"['t2']['layer_0']['w']", "['head']['w']"}),
    ('t1_except_last', {"['t1']['encoder']['layer_1']['w']", "['t2']['layer_0']['w']", "['head']['w']"}),
])
def test_freezing(freeze, changed):
  params = _params()
  optimizer, _ = optim.make_optimizer(_stage(optimizer='adamw', lr=0.1, weight_decay=0.1, freeze=freeze), 1, params)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = optimizer.update(grads, optimizer.init(params), params)
  moved = {jax.tree_util.keystr(path) for path, u in jax.tree_util.tree_leaves_with_path(updates)
           if np.any(np.asarray(u) != 0)}
  assert moved == changed


def test_sgd_nesterov_and_clipping():
  params = {'w': jnp.zeros(2)}
  stage = _stage(optimizer='sgd', lr=0.1, momentum=0.9, nesterov=True, grad_clip_norm=1.0)
  optimizer, _ = optim.make_optimizer(stage, 1, params)
  grads = {'w': jnp.array([30.0, 40.0])}  # norm 50 -> clipped to (0.6, 0.8)
  updates, _ = optimizer.update(grads, optimizer.init(params), params)
  # Nesterov first step: -lr * (g + momentum * g) with the clipped gradient.
  np.testing.assert_allclose(updates['w'], -0.1 * 1.9 * np.array([0.6, 0.8]), rtol=1e-6)
