"""The finite-update guard: the conditional (CPU) and the select (accelerator) forms give the same states."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cascadeformer_jax.config import configuration
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.train import steps


def _run(guard: str, targets: list[np.ndarray]) -> list:
  """AdamW steps on a least-squares problem through the steps' update, one per target."""
  optimizer = optax.adamw(optax.constant_schedule(1e-2), weight_decay=1e-2)
  schedule = optax.constant_schedule(1e-2)
  rng = np.random.default_rng(0)
  params = {'w': rng.standard_normal((6, 3)).astype(np.float32), 'b': np.zeros(3, np.float32)}
  inputs = rng.standard_normal((5, 6)).astype(np.float32)

  @jax.jit
  def step(state, target):
    def loss_fn(params):
      return jnp.mean((inputs @ params['w'] + params['b'] - target) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(state['params'])
    return steps._update(state, grads, loss, optimizer, schedule, {}, guard)  # pylint: disable=protected-access

  state = steps.init_state(params, optimizer)
  states = []
  for target in targets:
    state, metrics = step(state, target)
    states.append((jax.device_get(state), bool(metrics['nonfinite'])))
  return states


def test_select_guard_matches_cond_guard():
  rng = np.random.default_rng(1)
  targets = [rng.standard_normal((5, 3)).astype(np.float32) for _ in range(3)]
  targets[1] = np.full((5, 3), np.inf, np.float32)
  cond, select = _run('cond', targets), _run('select', targets)
  assert [nonfinite for _, nonfinite in cond] == [nonfinite for _, nonfinite in select] == [False, True, False]
  for (a, _), (b, _) in zip(cond, select):
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
      # The same update; XLA may fuse it differently in the two forms (last-bit differences).
      np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7, err_msg=jax.tree_util.keystr(path))
  # The select form also keeps the state exactly on the non-finite step.
  for x, y in zip(jax.tree.leaves(select[0][0]), jax.tree.leaves(select[1][0])):
    np.testing.assert_array_equal(x, y)
  # The non-finite step left the state exactly as it was (the step counter and Adam's moments included) ...
  for x, y in zip(jax.tree.leaves(cond[0][0]), jax.tree.leaves(cond[1][0])):
    np.testing.assert_array_equal(x, y)
  # ... and the next finite step trained.
  assert int(cond[2][0]['step']) == 2
  assert not np.array_equal(cond[2][0]['params']['w'], cond[1][0]['params']['w'])


def test_guard_choice_by_backend():
  assert steps.resolve_finite_guard('auto') == ('cond' if jax.default_backend() == 'cpu' else 'select')
  assert steps.resolve_finite_guard('select') == 'select'
  model = CascadeClassifier(ModelConfig(variant='1.0', layout='ntu', num_joints=5, coords=3, d_model=8,
                                        num_heads=2, num_layers=1, num_classes=4, pos_len=8, ffn_dim=8))
  stage = configuration.stage_config()
  with pytest.raises(ValueError, match='finite_guard must be one of'):
    steps.make_finetune_step(model, optax.sgd(0.1), optax.constant_schedule(0.1), stage, finite_guard='where')
