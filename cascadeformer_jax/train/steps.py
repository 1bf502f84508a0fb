"""Pure training and evaluation steps: ``step(state, batch, rng) -> (state, metrics)``.

The state is a dict ``{'step', 'params', 'opt_state'}``. Steps are jitted over a device mesh by
:mod:`cascadeformer_jax.train.partitioning`; they contain no collectives of their own (XLA inserts the
gradient reduction when the batch is sharded on the 'data' axis).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import MaskedPretrainer
from cascadeformer_jax.train import masking

State = dict[str, Any]
Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def init_state(params: Any, optimizer: optax.GradientTransformation) -> State:
  return {'step': jnp.zeros((), jnp.int32), 'params': params, 'opt_state': optimizer.init(params)}


def _frame_mask(batch: Batch, use_mask: bool) -> jax.Array | None:
  if not use_mask or 'lengths' not in batch:
    return None
  num_frames = batch['skeleton'].shape[1]
  return jnp.arange(num_frames)[None, :] < batch['lengths'][:, None]


def _update(state: State, grads: Any, loss: jax.Array, optimizer: optax.GradientTransformation,
            schedule: optax.Schedule, metrics: Metrics) -> tuple[State, Metrics]:
  """Applies the update unless the loss or gradients are not finite (then the state is kept as it was)."""
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

  def apply_update(state: State) -> State:
    updates, opt_state = optimizer.update(grads, state['opt_state'], state['params'])
    return {'step': state['step'] + 1, 'params': optax.apply_updates(state['params'], updates),
            'opt_state': opt_state}

  # A conditional rather than a select between the new and the old state: the select reads both, which makes
  # XLA copy the whole (donated) state every step.
  new_state = jax.lax.cond(finite, apply_update, lambda state: state, state)
  metrics = dict(metrics, loss=loss, grad_norm=grad_norm, lr=schedule(state['step']),
                 param_norm=optax.tree.norm(state['params']), nonfinite=~finite)
  return new_state, metrics


def make_pretrain_step(model: MaskedPretrainer, optimizer: optax.GradientTransformation,
                       schedule: optax.Schedule, stage: ml_collections.ConfigDict,
                       padding_aware: bool = False) -> Callable[[State, Batch, jax.Array], tuple[State, Metrics]]:
  """Masked-joint pretraining step.

  Per clip, ``max(1, floor(mask_ratio * T * J))`` (frame, joint) slots (mask_mode 'joints', the paper's), or
  whole frames ('frames'), are zeroed in the input; the loss is the MSE over masked entries against the
  unmasked clip. 'none' reconstructs the unmasked input (loss over all entries). On padded batches the mask
  and the loss include padded frames, as in the original, unless ``padding_aware``.
  """
  mode = stage.get('mask_mode', 'joints')
  if mode not in masking.MASK_MODES:
    raise ValueError(f'mask_mode must be one of {masking.MASK_MODES}, got {mode!r}')
  ratio = float(stage.get('mask_ratio', 0.3))

  def step(state: State, batch: Batch, rng: jax.Array) -> tuple[State, Metrics]:
    rng = jax.random.fold_in(rng, state['step'])
    mask_rng, dropout_rng = jax.random.split(rng)
    clips = batch['skeleton']
    batch_size, num_frames, num_joints, _ = clips.shape
    mask = masking.draw_mask(mode, mask_rng, batch_size, num_frames, num_joints, ratio)
    frame_mask = _frame_mask(batch, padding_aware)
    loss_mask = mask if frame_mask is None else mask & frame_mask[:, :, None]
    inputs = clips if mode == 'none' else masking.apply_mask(clips, mask)

    def loss_fn(params):
      reconstruction = model.apply({'params': params}, inputs, frame_mask=frame_mask, deterministic=False,
                                   rngs={'dropout': dropout_rng})
      return masking.masked_mse(reconstruction, clips, loss_mask)

    loss, grads = jax.value_and_grad(loss_fn)(state['params'])
    return _update(state, grads, loss, optimizer, schedule, {})

  return step


def make_finetune_step(model: CascadeClassifier, optimizer: optax.GradientTransformation,
                       schedule: optax.Schedule, stage: ml_collections.ConfigDict,
                       padding_aware: bool = False) -> Callable[[State, Batch, jax.Array], tuple[State, Metrics]]:
  """Cascading fine-tuning step: cross-entropy (optionally label-smoothed) on the classifier's logits."""
  smoothing = float(stage.get('label_smoothing', 0.0))

  def step(state: State, batch: Batch, rng: jax.Array) -> tuple[State, Metrics]:
    dropout_rng = jax.random.fold_in(rng, state['step'])
    frame_mask = _frame_mask(batch, padding_aware)

    def loss_fn(params):
      logits = model.apply({'params': params}, batch['skeleton'], frame_mask=frame_mask, deterministic=False,
                           rngs={'dropout': dropout_rng})
      labels = jax.nn.one_hot(batch['label'], logits.shape[-1])
      if smoothing:
        labels = optax.smooth_labels(labels, smoothing)
      loss = jnp.mean(optax.softmax_cross_entropy(logits, labels))
      return loss, logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state['params'])
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch['label'])
    return _update(state, grads, loss, optimizer, schedule, {'accuracy': accuracy})

  return step


def make_classifier_eval_step(model: CascadeClassifier, padding_aware: bool = False):
  """(params, batch) -> logits (B, K), deterministic."""

  def step(params: Any, batch: Batch) -> jax.Array:
    return model.apply({'params': params}, batch['skeleton'], frame_mask=_frame_mask(batch, padding_aware))

  return step


def make_pretrain_eval_step(model: MaskedPretrainer, stage: ml_collections.ConfigDict, seed: int,
                            padding_aware: bool = False):
  """(params, batch, index) -> per-clip (masked squared error sum, masked entry count) with a fixed mask.

  The mask (of the stage's mask_mode) of the i-th evaluation batch is drawn from (seed, i), so the validation
  loss is comparable between epochs. With mask_mode 'none' every entry is scored and the input is not masked.
  """
  ratio = float(stage.get('mask_ratio', 0.3))
  mode = stage.get('mask_mode', 'joints')

  def step(params: Any, batch: Batch, index: jax.Array) -> tuple[jax.Array, jax.Array]:
    clips = batch['skeleton']
    batch_size, num_frames, num_joints, coords = clips.shape
    mask = masking.draw_mask(mode, jax.random.fold_in(jax.random.key(seed), index), batch_size, num_frames,
                             num_joints, ratio)
    frame_mask = _frame_mask(batch, padding_aware)
    inputs = clips if mode == 'none' else masking.apply_mask(clips, mask)
    if frame_mask is not None:
      mask = mask & frame_mask[:, :, None]
    reconstruction = model.apply({'params': params}, inputs, frame_mask=frame_mask)
    squared = jnp.sum(jnp.square(reconstruction - clips) * mask[..., None], axis=(1, 2, 3))
    return squared, jnp.sum(mask, axis=(1, 2)).astype(jnp.float32) * coords

  return step
