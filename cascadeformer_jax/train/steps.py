"""Pure training and evaluation steps: ``step(state, batch, rng) -> (state, metrics)``.

The state is a dict ``{'step', 'params', 'opt_state'}``. Steps are jitted over a device mesh by
:mod:`cascadeformer_jax.run.partitioning`; they contain no collectives of their own (XLA inserts the
gradient reduction when the batch is sharded on the 'data' axis).
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from cascadeformer_jax import objectives
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import batch_frame_mask

State = dict[str, Any]
Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def init_state(params: Any, optimizer: optax.GradientTransformation) -> State:
  return {'step': jnp.zeros((), jnp.int32), 'params': params, 'opt_state': optimizer.init(params)}


frame_mask = batch_frame_mask  # (batch, padding_aware) -> (B, T) real-frame mask, or None.


FINITE_GUARDS = ('auto', 'cond', 'select')


def resolve_finite_guard(guard: str = 'auto') -> str:
  """'cond' on CPU, 'select' on accelerators for 'auto' (see `_update`); 'cond'/'select' force one form."""
  if guard not in FINITE_GUARDS:
    raise ValueError(f'finite_guard must be one of {FINITE_GUARDS}, got {guard!r}')
  if guard == 'auto':
    return 'cond' if jax.default_backend() == 'cpu' else 'select'
  return guard


def _update(state: State, grads: Any, loss: jax.Array, optimizer: optax.GradientTransformation,
            schedule: optax.Schedule, metrics: Metrics, guard: str = 'cond') -> tuple[State, Metrics]:
  """Applies the update unless the loss or gradients are not finite (then the state is kept as it was).

  guard 'cond': a conditional around the update. On CPU it is the faster form (a select reads both the new
  and the old state, which makes XLA copy the whole donated state every step), but on GPUs a conditional
  on a device value can cost a device-to-host synchronisation every step. guard 'select': the update is
  always computed and an elementwise select keeps the old values, fused into the update kernels, with no
  host round trip. Both keep the state exactly on a non-finite update; on finite ones they compute the same
  update, but XLA may fuse it differently, so the results can differ in the last bits.
  """
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

  def apply_update(state: State) -> State:
    updates, opt_state = optimizer.update(grads, state['opt_state'], state['params'])
    return {'step': state['step'] + 1, 'params': optax.apply_updates(state['params'], updates),
            'opt_state': opt_state}

  if guard == 'select':
    updated = apply_update(state)
    new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), updated, state)
  else:
    new_state = jax.lax.cond(finite, apply_update, lambda state: state, state)
  metrics = dict(metrics, loss=loss, grad_norm=grad_norm, lr=schedule(state['step']),
                 param_norm=optax.tree.norm(state['params']), nonfinite=~finite)
  return new_state, metrics


def make_pretrain_step(model: nn.Module, optimizer: optax.GradientTransformation,
                       schedule: optax.Schedule, stage: ml_collections.ConfigDict,
                       padding_aware: bool = False, finite_guard: str = 'auto'
                       ) -> Callable[[State, Batch, jax.Array], tuple[State, Metrics]]:
  """Pretraining step of ``stage.objective`` (objectives/losses.py; default the paper's masked joints).

  masked_joints: per clip, ``max(1, floor(mask_ratio * T * J))`` (frame, joint) slots (mask_mode 'joints',
  the paper's), or whole frames ('frames'), are zeroed in the input; the loss is the MSE over masked entries
  against the unmasked clip. 'none' reconstructs the unmasked input (loss over all entries). On padded batches
  the mask and the loss include padded frames, as in the original, unless ``padding_aware``. ``finite_guard``:
  how a non-finite update is skipped (`FINITE_GUARDS`, see `_update`).
  """
  objective = objectives.make_objective(model, stage)
  guard = resolve_finite_guard(finite_guard)

  def step(state: State, batch: Batch, rng: jax.Array) -> tuple[State, Metrics]:
    rng = jax.random.fold_in(rng, state['step'])
    mask_rng, dropout_rng = jax.random.split(rng)
    valid = frame_mask(batch, padding_aware)

    def loss_fn(params):
      return objective.loss(params, batch['skeleton'], valid, mask_rng, dropout_rng)

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state['params'])
    return _update(state, grads, loss, optimizer, schedule, metrics, guard)

  return step


def make_finetune_step(model: CascadeClassifier, optimizer: optax.GradientTransformation,
                       schedule: optax.Schedule, stage: ml_collections.ConfigDict,
                       padding_aware: bool = False, finite_guard: str = 'auto'
                       ) -> Callable[[State, Batch, jax.Array], tuple[State, Metrics]]:
  """Cascading fine-tuning step: cross-entropy (optionally label-smoothed) on the classifier's logits."""
  smoothing = float(stage.get('label_smoothing', 0.0))
  guard = resolve_finite_guard(finite_guard)

  def step(state: State, batch: Batch, rng: jax.Array) -> tuple[State, Metrics]:
    dropout_rng = jax.random.fold_in(rng, state['step'])
    valid = frame_mask(batch, padding_aware)

    def loss_fn(params):
      logits = model.apply({'params': params}, batch['skeleton'], frame_mask=valid, deterministic=False,
                           rngs={'dropout': dropout_rng})
      labels = jax.nn.one_hot(batch['label'], logits.shape[-1])
      if smoothing:
        labels = optax.smooth_labels(labels, smoothing)
      loss = jnp.mean(optax.softmax_cross_entropy(logits, labels))
      return loss, logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state['params'])
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch['label'])
    return _update(state, grads, loss, optimizer, schedule, {'accuracy': accuracy}, guard)

  return step
