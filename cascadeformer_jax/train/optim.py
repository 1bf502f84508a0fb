"""Optimisers, learning-rate schedules and parameter freezing for both stages.

A stage config (``config.pretrain`` / ``config.finetune``) has the fields::

    optimizer: 'adam' | 'adamw' | 'sgd'      lr, weight_decay, momentum, nesterov (SGD)
    schedule: 'constant' | 'cosine' | 'warmup_cosine'
    schedule_unit: 'step' | 'epoch'          (the original stepped Penn/N-UCLA fine-tuning per epoch)
    warmup_fraction: warmup length as a fraction of the schedule length (int(fraction * length) units)
    min_lr: final lr of the cosine decays
    grad_clip_norm: 0 = off
    freeze: 'none' | 't1' | 't1_except_last'  (fine-tuning only)
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

SCHEDULES = ('constant', 'cosine', 'warmup_cosine')
OPTIMIZERS = ('adam', 'adamw', 'sgd')
FREEZE = ('none', 't1', 't1_except_last')


def lr_schedule(stage: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """Learning rate as a function of the optimiser step.

  'warmup_cosine' is HF's ``get_cosine_schedule_with_warmup``: ``lr * s / w`` for s < w, then a cosine from lr
  to ``min_lr`` over the remaining N - w units. With ``schedule_unit='epoch'`` s is the epoch index, so the
  lr is piecewise constant and exactly 0 throughout the first epoch when there is a warmup (as the original).
  'cosine' is ``CosineAnnealingLR(T_max=N, eta_min=min_lr)``.
  """
  if stage.schedule not in SCHEDULES:
    raise ValueError(f'schedule must be one of {SCHEDULES}, got {stage.schedule!r}')
  if stage.schedule_unit not in ('step', 'epoch'):
    raise ValueError(f"schedule_unit must be 'step' or 'epoch', got {stage.schedule_unit!r}")
  per_epoch = stage.schedule_unit == 'epoch'
  total = stage.epochs if per_epoch else stage.epochs * steps_per_epoch
  total = max(int(total), 1)
  base, floor = float(stage.lr), float(stage.get('min_lr', 0.0))
  warmup = int(stage.get('warmup_fraction', 0.0) * total)

  def unit_schedule(s):
    s = jnp.asarray(s, jnp.float32)
    if stage.schedule == 'constant':
      return jnp.full_like(s, base)
    if stage.schedule == 'cosine':
      progress = jnp.clip(s / total, 0.0, 1.0)
      return floor + (base - floor) * 0.5 * (1.0 + jnp.cos(math.pi * progress))
    decay = jnp.clip((s - warmup) / max(total - warmup, 1), 0.0, 1.0)
    cosine = floor + (base - floor) * 0.5 * (1.0 + jnp.cos(math.pi * decay))
    if warmup == 0:
      return cosine
    return jnp.where(s < warmup, base * s / warmup, cosine)

  if per_epoch:
    return lambda step: unit_schedule(jnp.floor_divide(step, steps_per_epoch))
  return unit_schedule


def trainable_mask(params: Any, freeze: str) -> Any:
  """Bool tree: True where a parameter is trained."""
  if freeze not in FREEZE:
    raise ValueError(f'freeze must be one of {FREEZE}, got {freeze!r}')
  if freeze == 'none':
    return jax.tree.map(lambda _: True, params)
  num_layers = len(params['t1']['encoder'])
  last_layer = f'layer_{num_layers - 1}'

  def trained(path, _):
    names = [getattr(entry, 'key', None) for entry in path]
    if names[0] != 't1':
      return True
    return freeze == 't1_except_last' and names[1:3] == ['encoder', last_layer]

  return jax.tree_util.tree_map_with_path(trained, params)


def make_optimizer(stage: ml_collections.ConfigDict, steps_per_epoch: int,
                   params: Any = None) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The stage's optimiser (with clipping and freezing) and its lr schedule."""
  schedule = lr_schedule(stage, steps_per_epoch)
  weight_decay = float(stage.get('weight_decay', 0.0))
  if stage.optimizer == 'adam':
    # PyTorch Adam's weight_decay is L2 added to the gradient.
    optimizer = optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(schedule)) if weight_decay \
        else optax.adam(schedule)
  elif stage.optimizer == 'adamw':
    optimizer = optax.adamw(schedule, weight_decay=weight_decay)  # Decoupled, on every parameter (as PyTorch).
  elif stage.optimizer == 'sgd':
    sgd = optax.sgd(schedule, momentum=stage.get('momentum', 0.9) or None, nesterov=stage.get('nesterov', False))
    optimizer = optax.chain(optax.add_decayed_weights(weight_decay), sgd) if weight_decay else sgd
  else:
    raise ValueError(f'optimizer must be one of {OPTIMIZERS}, got {stage.optimizer!r}')
  if stage.get('grad_clip_norm', 0.0):
    optimizer = optax.chain(optax.clip_by_global_norm(stage.grad_clip_norm), optimizer)
  freeze = stage.get('freeze', 'none')
  if freeze != 'none':
    if params is None:
      raise ValueError('freezing needs the parameter tree')
    labels = jax.tree.map(lambda trained: 'trained' if trained else 'frozen', trainable_mask(params, freeze))
    optimizer = optax.multi_transform({'trained': optimizer, 'frozen': optax.set_to_zero()}, labels)
  return optimizer, schedule
