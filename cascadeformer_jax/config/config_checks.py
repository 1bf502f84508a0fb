"""The allowed values of every numeric and choice field of an experiment config, as one declared table.

`CONSTRAINTS` lists (field, constraint, condition) rows; `validate(config)` checks a resolved config against all
of them before any work and raises `ConfigError` with one line per violation, e.g.::

    config.pretrain.epochs=-1: must be an integer >= 1 (the stage trains in mode 'train')

Fields that a config does not have (the sub-config of another dataset) are skipped. Relations between fields
(the data fits the model, clips fit the positional table, ...) are checked by the code that uses them.
"""

import dataclasses
import math
from typing import Any, Callable

import ml_collections

from cascadeformer_jax.config import configuration
from cascadeformer_jax.run import runtime
from cascadeformer_jax.data import config as data_config_lib
from cascadeformer_jax.data import generic
from cascadeformer_jax.data import transforms
from cascadeformer_jax.evaluate import few_shot
from cascadeformer_jax.evaluate import protocols
from cascadeformer_jax.models import config as model_config_lib
from cascadeformer_jax.models import pretraining
from cascadeformer_jax.objectives import masking
from cascadeformer_jax.train import optim
from cascadeformer_jax.train import trainer


class ConfigError(ValueError):
  """An experiment config has values outside their allowed ranges or sets (one line per field)."""


@dataclasses.dataclass(frozen=True)
class Range:
  """A number in [low, high] (ends excluded when open; None = unbounded; always finite)."""

  low: float | None = None
  high: float | None = None
  low_open: bool = False
  high_open: bool = False
  integer: bool = False

  def describe(self) -> str:
    kind = 'an integer' if self.integer else 'a finite number'
    if self.low is not None and self.high is not None:
      return f'{kind} in {"(" if self.low_open else "["}{self.low:g}, {self.high:g}{")" if self.high_open else "]"}'
    if self.low is not None:
      return f'{kind} {">" if self.low_open else ">="} {self.low:g}'
    if self.high is not None:
      return f'{kind} {"<" if self.high_open else "<="} {self.high:g}'
    return kind

  def allows(self, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      return False
    if self.integer and not isinstance(value, int):
      return False
    if not math.isfinite(value):
      return False
    if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
      return False
    if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
      return False
    return True


@dataclasses.dataclass(frozen=True)
class OneOf:
  """One value of a fixed set."""

  choices: tuple[Any, ...]

  def describe(self) -> str:
    return f'one of {", ".join(repr(c) for c in self.choices)}'

  def allows(self, value: Any) -> bool:
    return value in self.choices


@dataclasses.dataclass(frozen=True)
class CommaList:
  """A comma-separated string of values from a fixed set ('' = none)."""

  choices: tuple[str, ...]

  def describe(self) -> str:
    return f'a comma-separated list of {", ".join(repr(c) for c in self.choices)} (or empty)'

  def allows(self, value: Any) -> bool:
    return isinstance(value, str) and all(name in self.choices for name in value.split(',') if name)


@dataclasses.dataclass(frozen=True)
class Interval:
  """A pair (low, high) with low <= high, both in `bounds`."""

  bounds: Range

  def describe(self) -> str:
    return f'a pair (low, high) with low <= high, each {self.bounds.describe()}'

  def allows(self, value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2 and all(self.bounds.allows(v) for v in value)
            and value[0] <= value[1])


@dataclasses.dataclass(frozen=True)
class Each:
  """A sequence (non-empty unless `allow_empty`) whose every element is in `bounds`."""

  bounds: Range
  allow_empty: bool = False

  def describe(self) -> str:
    elements = self.bounds.describe().replace('an integer', 'integers').replace('a finite number', 'finite numbers')
    return f'a {"" if self.allow_empty else "non-empty "}sequence of {elements}'

  def allows(self, value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and (self.allow_empty or len(value) > 0)
            and all(self.bounds.allows(v) for v in value))


@dataclasses.dataclass(frozen=True)
class OrNone:
  """None (the field's documented default) or a value allowed by `inner`."""

  inner: Range

  def describe(self) -> str:
    return f'None or {self.inner.describe()}'

  def allows(self, value: Any) -> bool:
    return value is None or self.inner.allows(value)


Constraint = Range | OneOf | CommaList | Interval | Each | OrNone


def integer(low: int, high: int | None = None) -> Range:
  return Range(low, high, integer=True)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Range:
  return Range(low, high, low_open=low_open, high_open=high_open)


POSITIVE = Range(0, low_open=True)  # > 0
NON_NEGATIVE = Range(0)  # >= 0
FRACTION = Range(0, 1, low_open=True)  # (0, 1]: a share of something that must not be empty
PROBABILITY = Range(0, 1, high_open=True)  # [0, 1): a rate that must leave something
SEED = integer(0, 2**32 - 1)


@dataclasses.dataclass(frozen=True)
class Condition:
  """When a row applies, with the words the error gives for it."""

  test: Callable[[ml_collections.ConfigDict], bool]
  reason: str


def _trains(stage: str) -> Condition:
  modes = {'pretrain': ('train', 'pretrain'), 'finetune': ('train', 'finetune'), 'probe': ('probe',)}[stage]
  return Condition(lambda config: config.get('mode') in modes, 'the stage trains in mode {mode!r}')


# Folder datasets (data.layout 'generic') fill these in from the folder when the run starts.
_READ = Condition(lambda config: config.data.get('layout') != 'generic' or bool(config.data.get('joint_layout')),
                  'as read from the dataset folder')


def _stage_rows(stage: str) -> list[tuple[str, Constraint, Condition | None]]:
  return [
      (f'{stage}.epochs', integer(1), _trains(stage)),
      (f'{stage}.batch_size', integer(1), None),
      (f'{stage}.optimizer', OneOf(optim.OPTIMIZERS), None),
      (f'{stage}.lr', POSITIVE, None),
      (f'{stage}.weight_decay', number(0, 1), None),
      (f'{stage}.momentum', PROBABILITY, None),
      (f'{stage}.schedule', OneOf(optim.SCHEDULES), None),
      (f'{stage}.schedule_unit', OneOf(('step', 'epoch')), None),
      (f'{stage}.warmup_fraction', PROBABILITY, None),
      (f'{stage}.min_lr', NON_NEGATIVE, None),
      (f'{stage}.grad_clip_norm', NON_NEGATIVE, None),
      (f'{stage}.select_best', OneOf(trainer.SELECTIONS), None),
  ]


# (field below `config.`, allowed values, condition or None = always). One row per field.
CONSTRAINTS: tuple[tuple[str, Constraint, Condition | None], ...] = tuple([
    ('dataset', OneOf(data_config_lib.DATASETS + (data_config_lib.FOLDER,)), None),
    ('mode', OneOf(configuration.MODES), None),
    ('seed', SEED, None),
    ('published_accuracy', number(0, 100), None),
    # Model (ModelConfig checks divisibility and the layout's defaults).
    ('model.variant', OneOf(model_config_lib.VARIANTS), None),
    ('model.layout', OneOf(model_config_lib.LAYOUTS), None),
    *[(f'model.{name}', integer(1), None) for name in (
        'num_joints', 'coords', 'd_model', 'num_heads', 'num_layers', 'num_classes', 'pos_len', 'ffn_dim',
        'decoder_patch', 'decoder_layers', 'target_levels')],
    ('model.target_width', integer(0), None),
    *[(f'model.{name}', PROBABILITY, None) for name in (
        't1_dropout', 't2_dropout', 'spatial_dropout', 'cross_attn_dropout', 'head_dropout')],
    ('model.spatial_form', OneOf((None,) + model_config_lib.SPATIAL_FORMS), None),
    ('model.spatial_heads', OrNone(integer(1)), None),
    ('model.cross_attention', OneOf((None,) + model_config_lib.CROSS_ATTENTIONS), None),
    ('model.cross_attn_heads', OrNone(integer(1)), None),
    ('model.head', OneOf((None,) + model_config_lib.HEADS), None),
    ('model.decoder', OneOf(model_config_lib.DECODERS), None),
    ('model.pos_init', OneOf(model_config_lib.POS_INITS), None),
    ('model.pooling', OneOf(model_config_lib.POOLINGS), None),
    ('model.dtype', OneOf(('float32', 'bfloat16')), None),
    # Data.
    ('data.layout', OneOf(data_config_lib.LAYOUT_FAMILIES), None),
    ('data.num_classes', integer(1), _READ),
    ('data.num_joints', integer(1), _READ),
    ('data.num_coords', integer(1), _READ),
    ('data.max_persons', integer(1), _READ),
    ('data.num_frames', integer(1), Condition(lambda config: config.data.get('layout') != 'penn',
                                              'clips are resized to this length')),
    ('data.max_frames', integer(0), None),
    ('data.seed', SEED, None),
    ('data.holdout_fraction', PROBABILITY, None),
    ('data.label_fraction', FRACTION, None),
    ('data.representation', OneOf(transforms.REPRESENTATIONS), None),
    ('data.bad_values', OneOf(('error', 'zero')), None),
    ('data.class_subset', OneOf(('', 'ntu120_auxiliary')), None),
    ('data.num_workers', integer(-1), None),  # -1 = chosen from the host's CPU count
    ('data.worker_buffer_size', integer(1), None),
    ('data.num_threads', integer(-1), None),  # -1 = chosen from the host's CPU count
    ('data.prefetch_buffer_size', integer(-1), None),  # -1 = chosen from the host's CPU count
    ('data.device_prefetch', integer(0), None),
    ('data.penn.normalisation', OneOf(('none', 'image')), None),
    ('data.penn.padding', OneOf(('batch_max', 'fixed')), None),
    ('data.penn.length_buckets', Each(integer(1), allow_empty=True), None),
    ('data.penn.pad_multiple', integer(1), None),
    ('data.penn.bucket_window', integer(1), None),
    ('data.nucla.rotation_max_deg', number(0, 180), None),
    ('data.nucla.scale_range', Interval(POSITIVE), None),
    ('data.nucla.drop_prob', PROBABILITY, None),
    ('data.nucla.repeat', integer(1), None),
    ('data.nucla.frozen_seed', SEED, None),
    ('data.ntu.crop_interval', Interval(FRACTION), None),
    ('data.ntu.test_crop_fraction', FRACTION, None),
    ('data.ntu.test_window_position', number(0, 1), None),
    ('data.ntu.min_crop_frames', integer(1), None),
    ('data.ntu.rotation_max_rad', number(0, math.pi), None),
    ('data.ntu.person_selection', OneOf(('abs_sum', 'motion_variance')), None),
    ('data.generic.person_selection', OneOf(generic.PERSON_SELECTIONS), None),
    ('data.generic.centre_mode', OneOf(generic.CENTRE_MODES), None),
    ('data.generic.scale', OneOf(generic.SCALES), None),
    ('data.generic.temporal', OneOf(generic.TEMPORAL_MODES), None),
    ('data.generic.crop_interval', Interval(FRACTION), None),
    ('data.generic.rotation_max_deg', number(0, 180), None),
    ('data.generic.scale_range', Interval(POSITIVE), None),
    # Training stages.
    *_stage_rows('pretrain'),
    ('pretrain.mask_ratio', number(0, 1, low_open=True, high_open=True), None),
    ('pretrain.mask_mode', OneOf(masking.MASK_MODES), None),
    ('pretrain.objective', OneOf(pretraining.OBJECTIVES), None),
    ('pretrain.focal.windows', Each(integer(1)), None),
    ('pretrain.focal.k', NON_NEGATIVE, None),
    ('pretrain.focal.eps', POSITIVE, None),
    ('pretrain.feature_prediction.prediction_weight', NON_NEGATIVE, None),
    ('pretrain.feature_prediction.variance_weight', NON_NEGATIVE, None),
    ('pretrain.feature_prediction.covariance_weight', NON_NEGATIVE, None),
    ('pretrain.feature_prediction.gamma', POSITIVE, None),
    *_stage_rows('finetune'),
    ('finetune.label_smoothing', PROBABILITY, None),
    ('finetune.freeze', OneOf(optim.FREEZE), None),
    ('finetune.t1_init', OneOf(('pretrained', 'scratch')), None),
    # Evaluation.
    ('eval.batch_size', integer(1), None),
    ('eval.every_epochs', integer(0), None),
    ('eval.protocols', CommaList(tuple(protocols.PROTOCOLS)), None),
    ('eval.multi_clip_fraction', FRACTION, None),
    ('probe.epochs', integer(1), _trains('probe')),
    ('probe.batch_size', integer(1), None),
    ('probe.lr', POSITIVE, None),
    ('probe.momentum', PROBABILITY, None),
    ('probe.weight_decay', number(0, 1), None),
    ('probe.knn_k', integer(1), None),
    ('probe.seed', SEED, None),
    ('probe.t1_init', OneOf(('pretrained', 'scratch')), None),
    ('few_shot.runs', integer(1), None),
    ('few_shot.seed', SEED, None),
    ('few_shot.procedure', OneOf(few_shot.PROCEDURES), None),
    # Bookkeeping.
    ('checkpoint.keep', integer(1), None),
    ('checkpoint.every_steps', integer(0), None),
    ('checkpoint.every_epochs', integer(0), None),
    ('log_every_steps', integer(1), None),
    ('mesh.num_devices', integer(0), None),
    ('matmul_precision', OneOf(runtime.MATMUL_PRECISIONS), None),
    ('prng_impl', OneOf(runtime.PRNG_IMPLS), None),
    ('distributed.num_processes', integer(0), None),
    ('distributed.process_id', integer(-1), None),
])

# Fields with no fixed set of values (paths, names, addresses; what a dataset folder describes, checked when it is
# read): listed so that every field is accounted for.
FREE_TEXT = frozenset({'workdir', 'init_from', 'variant', 'data.data_dir', 'data.tfds_name', 'data.tfds_config',
                       'data.train_split', 'data.eval_split', 'distributed.coordinator_address', 'data.name',
                       'data.folder', 'data.joint_layout', 'data.joint_names', 'data.parents', 'data.centre_indices',
                       'data.generic.centre_joints', 'compilation_cache_dir', 'profile_steps',
                       # checked by the few-shot evaluation (evaluate/few_shot.py) and experiment.py
                       'few_shot.shots', 'few_shot.embedding', 'few_shot.protocol', 'few_shot.mapping'})

ABSENT = object()


def get_field(config: ml_collections.ConfigDict, path: str) -> Any:
  """The value at a dotted path below `config`, or `ABSENT` if a part of the path does not exist."""
  node = config
  for part in path.split('.'):
    if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
      return ABSENT
    node = node[part]
  return node


def violations(config: ml_collections.ConfigDict) -> list[str]:
  """One line per field of `config` whose value breaks its row of `CONSTRAINTS` (empty list = valid)."""
  errors = []
  for path, constraint, condition in CONSTRAINTS:
    value = get_field(config, path)
    if value is ABSENT:
      continue
    if condition is not None and not condition.test(config):
      continue
    if not constraint.allows(value):
      reason = f' ({condition.reason.format(mode=config.get("mode"))})' if condition is not None else ''
      errors.append(f'config.{path}={_show(value)}: must be {constraint.describe()}{reason}')
  return errors


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError listing every violation of `CONSTRAINTS` in ``config``."""
  errors = violations(config)
  if errors:
    raise ConfigError('\n'.join(errors))


def _show(value: Any) -> str:
  if isinstance(value, str):
    return repr(value)
  if isinstance(value, (tuple, list)):
    return '(' + ', '.join(_show(v) for v in value) + ')'
  return str(value)
