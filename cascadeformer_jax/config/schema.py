"""The config schema: one declaration per field of an experiment config.

Every field is declared once, by `Field`: its dotted path below ``config.``, its default, its allowed values (a
constraint, checked before any work by `violations`), its recipe scope (whether it changes what a training stage
produces, and which stage: `SHARED`, `PRETRAIN`, `FINETUNE` or `FREE`) and a one-line description. From `FIELDS`
come the defaults of `configuration.experiment_config` and of the data config, the constraint checks
(`config_checks`), the recipe of a run (`run/recipe.py`) and ``python -m cascadeformer_jax.main --config_help``.

Defaults that depend on the dataset, its variant or the model preset are set where those are built
(`data.config.default_data_config`, `models/presets.py`); their fields declare `PER_DATASET` or `PER_MODEL`.

Relations between fields (the data fits the model, a hold-out exists for holdout selection, ...) and facts known
only at run time (a folder dataset has been read) are checked by `config_checks.check_relations` and
`data.config.validate_data_config`.

This module imports nothing from the package, so that every layer can read it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterator

# Recipe scopes: part of the recipe of both training stages, of one stage, or of none.
SHARED = 'shared'
PRETRAIN = 'pretrain'
FINETUNE = 'finetune'
FREE = 'free'
SCOPES = (SHARED, PRETRAIN, FINETUNE, FREE)

# What each mode of a run does: the stages it trains, in order, and the evaluation it ends with (the key of its
# results in the run's summary). The config checks, the experiment runner and the stage loop all read this table.
TEST = 'test'  # the final evaluation of a classifier on the test split (results.json)
PROBE = 'probe'  # linear probe and kNN of a frozen T1 (probe.json)
FEW_SHOT = 'few_shot'  # few-shot accuracy of frozen embeddings (few_shot.json)


@dataclasses.dataclass(frozen=True)
class Mode:
  trains: tuple[str, ...]  # the stages it trains, in order
  evaluation: str | None  # TEST, PROBE, FEW_SHOT or None


MODE_TABLE = {
    'train': Mode(trains=(PRETRAIN, FINETUNE), evaluation=TEST),
    'pretrain': Mode(trains=(PRETRAIN,), evaluation=None),
    'finetune': Mode(trains=(FINETUNE,), evaluation=TEST),
    'eval': Mode(trains=(), evaluation=TEST),
    'probe': Mode(trains=(), evaluation=PROBE),
    'few_shot': Mode(trains=(), evaluation=FEW_SHOT),
}
MODES = tuple(MODE_TABLE)
TRAINING_MODES = tuple(name for name, mode in MODE_TABLE.items() if mode.trains)

# Choice lists. The modules that act on a choice define the same tuples (tests/config/test_schema.py compares).
DATASETS = ('penn_action', 'n_ucla', 'ntu60_xsub', 'ntu60_xview', 'ntu120_xsub', 'ntu120_xset', 'synthetic_actions')
FOLDER = 'folder'
LAYOUT_FAMILIES = ('penn', 'nucla', 'ntu', 'generic')
MODEL_VARIANTS = ('1.0', '1.1', '1.2')
MODEL_LAYOUTS = ('penn', 'nucla', 'ntu')
SPATIAL_FORMS = ('project_back', 'concat')
CROSS_ATTENTIONS = ('simple', 'ffn')
HEADS = ('linear', 'mlp')
DECODERS = ('linear', 'mlp', 'mlp_residual', 'query', 'features')
POS_INITS = ('trunc_normal', 'zeros')
POOLINGS = ('mean', 'masked_mean')
DTYPES = ('float32', 'bfloat16')
REPRESENTATIONS = ('joint', 'bone', 'joint_bone', 'bone_param', 'motion', 'joint_motion', 'bone_motion')
# Folder datasets: 'auto' is the rule a work directory was trained with, else 'observed_motion' (data/generic.py).
PERSON_SELECTIONS = ('auto', 'observed_motion', 'abs_sum', 'motion_variance', 'first')
NTU_PERSON_SELECTIONS = ('abs_sum', 'motion_variance')
CENTRE_MODES = ('first_frame', 'per_frame', 'none')
SCALES = ('bone', 'minmax', 'none')
TEMPORAL_MODES = ('resample', 'pad')
OPTIMIZERS = ('adam', 'adamw', 'sgd')
SCHEDULES = ('constant', 'cosine', 'warmup_cosine')
SCHEDULE_UNITS = ('step', 'epoch')
SELECTIONS = ('last', 'holdout', 'test')
FREEZE = ('none', 't1', 't1_except_last')
T1_INITS = ('pretrained', 'scratch')
MASK_MODES = ('joints', 'frames', 'none')
OBJECTIVES = ('masked_joints', 'focal', 'query_decoder', 'feature_prediction')
PROTOCOLS = ('standard', 'cross_attn_4_heads', 'padding_aware', 'per_clip', 'multi_clip')
FEW_SHOT_PROCEDURES = ('prototype', 'original_transfer_ucla')
FEW_SHOT_PROTOCOLS = ('', 'ntu120_one_shot')
EMBEDDINGS = ('pooled', 't1_features', 't2_features', 'fused', 'logits')
MATMUL_PRECISIONS = ('default', 'tensorfloat32', 'highest')
PRNG_IMPLS = ('threefry2x32', 'rbg', 'unsafe_rbg')


class ConfigError(ValueError):
  """An experiment config has values outside their allowed ranges or sets (one line per field)."""


# ---------------------------------------------------------------------------------------------------------------
# Constraints: what values a field allows, and how to say so.


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
    low, high = _bound(self.low), _bound(self.high)
    if self.low is not None and self.high is not None:
      return f'{kind} in {"(" if self.low_open else "["}{low}, {high}{")" if self.high_open else "]"}'
    if self.low is not None:
      return f'{kind} {">" if self.low_open else ">="} {low}'
    if self.high is not None:
      return f'{kind} {"<" if self.high_open else "<="} {high}'
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


def _bound(value: float | None) -> str:
  """A bound as written: whole numbers in full (2**32 - 1 as 4294967295), others shortest."""
  if value is None:
    return ''
  return str(int(value)) if float(value).is_integer() else f'{value:g}'


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
class Increasing:
  """A strictly increasing sequence of positive integers (empty when `allow_empty`)."""

  allow_empty: bool = True

  def describe(self) -> str:
    return 'increasing positive integers' + (', or empty' if self.allow_empty else '')

  def allows(self, value: Any) -> bool:
    if not isinstance(value, (tuple, list)) or (not value and not self.allow_empty):
      return False
    positive = Range(1, integer=True)
    return all(positive.allows(v) for v in value) and all(a < b for a, b in zip(value, value[1:]))


@dataclasses.dataclass(frozen=True)
class OrNone:
  """None (the field's documented default) or a value allowed by `inner`."""

  inner: Range

  def describe(self) -> str:
    return f'None or {self.inner.describe()}'

  def allows(self, value: Any) -> bool:
    return value is None or self.inner.allows(value)


@dataclasses.dataclass(frozen=True)
class Flag:
  """True or False."""

  def describe(self) -> str:
    return 'True or False'

  def allows(self, value: Any) -> bool:
    return isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class FreeText:
  """A value with no fixed set (a path, a name, an address, what a dataset folder describes); `what` says which.

  Such values are checked where they are used (a path when it is opened, a folder's joints when it is read).
  """

  what: str

  def describe(self) -> str:
    return self.what

  def allows(self, value: Any) -> bool:
    del value
    return True


Constraint = Range | OneOf | CommaList | Interval | Each | Increasing | OrNone | Flag | FreeText


def integer(low: int, high: int | None = None) -> Range:
  return Range(low, high, integer=True)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Range:
  return Range(low, high, low_open=low_open, high_open=high_open)


POSITIVE = Range(0, low_open=True)  # > 0
NON_NEGATIVE = Range(0)  # >= 0
FRACTION = Range(0, 1, low_open=True)  # (0, 1]: a share of something that must not be empty
PROBABILITY = Range(0, 1)  # [0, 1]: how often something happens, 1 = always
RATE = Range(0, 1, high_open=True)  # [0, 1): a rate that must leave something
SEED = integer(0, 2**32 - 1)
AUTO_COUNT = integer(-1)  # -1 = chosen from the host's CPU count


# ---------------------------------------------------------------------------------------------------------------
# Conditions: when a field's constraint applies.

ABSENT = object()


def get_field(config: Any, path: str) -> Any:
  """The value at a dotted path below `config` (ConfigDicts or dicts), or `ABSENT` if a part does not exist."""
  node = config
  for part in path.split('.'):
    if not hasattr(node, 'keys') or part not in node:
      return ABSENT
    node = node[part]
  return node


@dataclasses.dataclass(frozen=True)
class Condition:
  """When a constraint applies: the words an error gives for it (``{mode}``: the config's mode), and for the
  schema's listing."""

  test: Callable[[Any], bool]
  reason: str
  applies: str


def _trains(stage: str) -> Condition:
  modes = (PROBE,) if stage == PROBE else tuple(name for name, mode in MODE_TABLE.items() if stage in mode.trains)
  return Condition(lambda config: get_field(config, 'mode') in modes, 'the stage trains in mode {mode!r}',
                   f'in modes {", ".join(modes)}')


# Folder datasets (data.layout 'generic') fill these in from the folder when the run starts.
_READ = Condition(lambda config: (get_field(config, 'data.layout') != 'generic'
                                  or get_field(config, 'data.joint_layout') not in (ABSENT, '')),
                  'as read from the dataset folder', 'once a folder dataset has been read')
_RESIZED = Condition(lambda config: get_field(config, 'data.layout') != 'penn', 'clips are resized to this length',
                     'unless data.layout is penn')


# ---------------------------------------------------------------------------------------------------------------
# Declarations.


class Elsewhere:
  """A default that is not one value: set where the dataset or model config is built."""

  def __init__(self, where: str):
    self.where = where

  def __repr__(self) -> str:
    return f'({self.where})'


PER_DATASET = Elsewhere('per dataset: data/config.py')
PER_MODEL = Elsewhere('per model: models/presets.py and the config file')
PER_CONFIG = Elsewhere('set by the config file')
AT_RUN_TIME = Elsewhere('recorded when a run reads its dataset')


@dataclasses.dataclass(frozen=True)
class Field:
  """One config field: dotted path below ``config.``, default, allowed values, recipe scope, description."""

  path: str
  default: Any
  allowed: Constraint
  scope: str
  doc: str
  when: Condition | None = None

  @property
  def has_default(self) -> bool:
    return not isinstance(self.default, Elsewhere)


def _stage_fields(stage: str, optimizer: str) -> list[Field]:
  s = stage
  return [
      Field(f'{s}.epochs', 1, integer(1), s, 'training epochs of the stage', _trains(s)),
      Field(f'{s}.batch_size', 4, integer(1), s, 'global batch size (split over the devices of the mesh)'),
      Field(f'{s}.optimizer', optimizer, OneOf(OPTIMIZERS), s, 'optimizer (train/optim.py)'),
      Field(f'{s}.lr', 1e-4, POSITIVE, s, 'peak learning rate'),
      Field(f'{s}.weight_decay', 0.0, number(0, 1), s, 'weight decay (decoupled for adamw)'),
      Field(f'{s}.momentum', 0.9, RATE, s, 'momentum of sgd'),
      Field(f'{s}.nesterov', False, Flag(), s, 'Nesterov momentum for sgd'),
      Field(f'{s}.schedule', 'constant', OneOf(SCHEDULES), s, 'learning-rate schedule'),
      Field(f'{s}.schedule_unit', 'step', OneOf(SCHEDULE_UNITS), s, 'the schedule changes every step or every epoch'),
      Field(f'{s}.warmup_fraction', 0.0, RATE, s, 'share of the training spent warming up (warmup_cosine)'),
      Field(f'{s}.min_lr', 0.0, NON_NEGATIVE, s, 'learning rate at the end of a cosine schedule'),
      Field(f'{s}.grad_clip_norm', 0.0, NON_NEGATIVE, s, 'clip gradients to this global norm (0 = off)'),
      Field(f'{s}.select_best', 'last', OneOf(SELECTIONS), s,
            "kept epoch: 'last', best on the 'holdout' split, or best on 'test' (leaks the test set: reproduction "
            'only)'),
  ]


_MODEL_INTEGERS = {
    'num_joints': 'joints per frame the model takes', 'coords': 'channels per joint the model takes',
    'd_model': 'width of the transformers', 'num_heads': 'attention heads', 'num_layers': 'layers of T1 and of T2',
    'num_classes': 'classes of the classifier', 'pos_len': 'length of the positional table (longest clip)',
    'ffn_dim': 'hidden width of the feed-forward blocks',
    'decoder_patch': "decoder 'query': frames per predicted temporal patch",
    'decoder_layers': "decoder 'query': cross-attention decoder layers",
    'target_levels': "decoder 'features': hierarchy levels of the target features"}
_MODEL_DROPOUTS = ('t1_dropout', 't2_dropout', 'spatial_dropout', 'cross_attn_dropout', 'head_dropout')

_FIELDS: list[Field] = [
    # What to run, where, and how it is shown.
    Field('dataset', PER_CONFIG, OneOf(DATASETS + (FOLDER,)), SHARED,
          'built-in dataset, or folder (your own clips: data.folder)'),
    Field('mode', 'train', OneOf(MODES), FREE,
          'train (pretrain + finetune + test), pretrain, finetune, eval, probe or few_shot'),
    Field('workdir', '', FreeText('a directory'), FREE, "work directory ('' = workdirs/<config file name>)"),
    Field('seed', 42, SEED, SHARED, 'seed of parameter init, dropout and masks'),
    Field('init_from', '', FreeText('a model directory, work directory or hf:<published folder>'), FINETUNE,
          "start fine-tuning / evaluation from this model ('' = this run's own)"),
    Field('published_accuracy', 0.0, number(0, 100), FREE, 'published test accuracy in %, shown next to ours'),
    Field('variant', PER_CONFIG, FreeText('a name'), FREE, 'published variant the config reproduces'),
    Field('log_every_steps', 10, integer(1), FREE, 'steps between training log lines'),
    Field('progress', True, Flag(), FREE, 'show progress bars'),
    Field('tensorboard', True, Flag(), FREE, 'write TensorBoard summaries'),
    Field('matmul_precision', 'default', OneOf(MATMUL_PRECISIONS), SHARED,
          "float32 matmuls: 'default' (TF32 / bfloat16 passes on accelerators), 'tensorfloat32' or 'highest'"),
    Field('prng_impl', 'threefry2x32', OneOf(PRNG_IMPLS), SHARED,
          "PRNG of parameter init, dropout and masks: JAX's default, or 'rbg' / 'unsafe_rbg' (faster on accelerators)"),
    Field('compilation_cache_dir', '', FreeText('a directory, or off'), FREE,
          "persistent XLA compilation cache ('' = ~/.cache/cascadeformer_jax/xla, 'off' = none)"),
    Field('profile_steps', '', FreeText("'a:b' or '<stage>:a:b'"), FREE,
          'write a jax.profiler trace of steps a to b-1 into <workdir>/profile'),
    Field('restart', False, Flag(), FREE,
          "move the work directory's earlier results aside (<workdir>.before-restart-<time>) and start over"),
    Field('debug', False, Flag(), FREE, 'show library tracebacks (also $CASCADEFORMER_DEBUG=1)'),
    Field('distributed.coordinator_address', '', FreeText('host:port'), FREE,
          "coordinator of a multi-process job ('' = $JAX_COORDINATOR_ADDRESS or auto-detected)"),
    Field('distributed.num_processes', 0, integer(0), FREE, 'processes of the job (0 = $JAX_NUM_PROCESSES)'),
    Field('distributed.process_id', -1, integer(-1), FREE, 'this process (-1 = $JAX_PROCESS_ID)'),
    Field('distributed.auto_detect', True, Flag(), FREE,
          'without a coordinator, detect a SLURM step or an Open MPI launch of several tasks'),
    Field('mesh.num_devices', 0, integer(0), FREE, 'devices the batch is split over (0 = all)'),
    Field('checkpoint.keep', 2, integer(1), FREE, 'checkpoints kept per stage'),
    Field('checkpoint.every_steps', 0, integer(0), FREE, 'checkpoint every this many steps (0 = off)'),
    Field('checkpoint.every_epochs', 1, integer(0), FREE,
          'checkpoint at the end of every this many epochs (0 = off; the end of a stage always is)'),
    # The model (models/config.py; ModelConfig checks divisibility and the layout's defaults).
    Field('model.variant', PER_MODEL, OneOf(MODEL_VARIANTS), SHARED, 'architecture variant'),
    Field('model.layout', PER_MODEL, OneOf(MODEL_LAYOUTS), SHARED, 'joint partition and defaults of a layout'),
    *[Field(f'model.{name}', PER_MODEL, integer(1), SHARED, doc) for name, doc in _MODEL_INTEGERS.items()],
    Field('model.target_width', PER_MODEL, integer(0), SHARED,
          "decoder 'features': width of the target features (0 = d_model)"),
    *[Field(f'model.{name}', PER_MODEL, RATE, SHARED, f'dropout rate ({name.rsplit("_", 1)[0]})')
      for name in _MODEL_DROPOUTS],
    Field('model.spatial_form', PER_MODEL, OneOf((None,) + SPATIAL_FORMS), SHARED,
          "spatial layer of 1.2 (None = the layout's)"),
    Field('model.spatial_heads', PER_MODEL, OrNone(integer(1)), SHARED,
          'heads of the 1.2 spatial layer (None = num_heads)'),
    Field('model.cross_attention', PER_MODEL, OneOf((None,) + CROSS_ATTENTIONS), SHARED,
          "form of the cross-attention (None = the layout's)"),
    Field('model.cross_attn_heads', PER_MODEL, OrNone(integer(1)), SHARED,
          'heads of the cross-attention (None = num_heads)'),
    Field('model.head', PER_MODEL, OneOf((None,) + HEADS), SHARED, "classifier head (None = the layout's)"),
    Field('model.decoder', PER_MODEL, OneOf(DECODERS), SHARED, 'head of the pretraining model'),
    Field('model.pos_init', PER_MODEL, OneOf(POS_INITS), SHARED, 'initialisation of the positional table'),
    Field('model.pooling', PER_MODEL, OneOf(POOLINGS), SHARED, 'pooling over frames: all, or real frames only'),
    Field('model.attention_padding_mask', PER_MODEL, Flag(), SHARED, 'mask padded frames out of temporal attention'),
    Field('model.dtype', PER_MODEL, OneOf(DTYPES), SHARED, 'compute dtype (parameters stay float32)'),
    # The data (data/config.py: default_data_config describes every field).
    Field('data.name', PER_DATASET, FreeText('a name'), SHARED,
          "the dataset's name; a folder dataset's from its dataset.json once read"),
    Field('data.data_dir', '', FreeText('a directory'), FREE,
          "TFDS data directory ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets)"),
    Field('data.train_split', 'train', FreeText('a TFDS split'), SHARED, 'split trained on'),
    Field('data.eval_split', 'test', FreeText('a TFDS split'), SHARED, 'split evaluated on'),
    Field('data.shuffle', True, Flag(), SHARED, 'shuffle the training order every epoch'),
    Field('data.seed', 42, SEED, SHARED, 'seed of the per-epoch shuffling and of augmentation (42 as in the original)'),
    Field('data.drop_remainder', True, Flag(), SHARED, 'drop the last incomplete training batch of each epoch'),
    Field('data.holdout_fraction', 0.0, RATE, SHARED,
          "stratified share of the training split held out, read with split='holdout' (0 keeps every clip)"),
    Field('data.label_fraction', 1.0, FRACTION, SHARED,
          'semi-supervised training on max(1, round(fraction x n_c)) clips of every class c after the hold-out'),
    Field('data.class_subset', '', OneOf(('', 'ntu120_auxiliary')), SHARED,
          "'' (every class) or 'ntu120_auxiliary' (NTU120: the 100 auxiliary classes of the one-shot protocol)"),
    Field('data.representation', 'joint', OneOf(REPRESENTATIONS), SHARED,
          "model input representation (data/transforms.py; 'joint' as the original)"),
    Field('data.bad_values', 'error', OneOf(('error', 'zero')), SHARED,
          "NaN/inf coordinates raise, naming the example ('error'), or become 0, counted per batch ('zero')"),
    Field('data.num_workers', -1, AUTO_COUNT, FREE,
          'input worker processes (0 = none, -1 = from the CPU count: data.config.input_parallelism)'),
    Field('data.worker_buffer_size', 2, integer(1), FREE, 'hand-offs (of several batches each) buffered per worker'),
    Field('data.num_threads', -1, AUTO_COUNT, FREE,
          'background threads preparing batches (0 = the calling thread, -1 = automatic)'),
    Field('data.prefetch_buffer_size', -1, AUTO_COUNT, FREE, 'hand-offs the threads keep ready (-1 = automatic)'),
    Field('data.device_prefetch', 2, integer(0), FREE,
          'global training batches placed on the devices ahead of the step (0 = none)'),
    Field('data.max_frames', PER_DATASET, integer(0), SHARED,
          "Penn: the longest clip (663), padded length of penn.padding='fixed' and the model's input length"),
    Field('data.tfds_name', PER_DATASET, FreeText('a TFDS builder'), SHARED,
          'TFDS builder passed to data_builders.load_data_source'),
    Field('data.tfds_config', PER_DATASET, FreeText('a TFDS config'), SHARED, "TFDS builder config ('' = none)"),
    Field('data.layout', PER_DATASET, OneOf(LAYOUT_FAMILIES), SHARED,
          'preprocessing family (synthetic_actions uses ntu, folder datasets generic)'),
    Field('data.folder', PER_DATASET, FreeText('a directory'), SHARED,
          "folder dataset: dataset.json, labels.csv and the clips, built into data_dir on first use of each "
          "content ('' with tfds_config: an already built one)"),
    Field('data.identity', AT_RUN_TIME, FreeText('an identity'), SHARED,
          "what the data is: a folder's content fingerprint, or a built dataset's builder, version and split sizes"),
    Field('data.num_classes', PER_DATASET, integer(1), SHARED, 'classes of the dataset', _READ),
    Field('data.num_joints', PER_DATASET, integer(1), SHARED, 'joints of the stored skeletons', _READ),
    Field('data.num_coords', PER_DATASET, integer(1), SHARED, 'coordinates per stored joint', _READ),
    Field('data.max_persons', PER_DATASET, integer(1), SHARED, 'folder dataset: persons per frame', _READ),
    Field('data.joint_layout', PER_DATASET, FreeText('a layout name'), SHARED, 'folder dataset: joint layout'),
    Field('data.joint_names', PER_DATASET, FreeText('joint names'), SHARED, 'folder dataset: joint names'),
    Field('data.parents', PER_DATASET, FreeText('joint indices'), SHARED, 'folder dataset: parent of every joint'),
    Field('data.centre_indices', PER_DATASET, FreeText('joint indices'), SHARED, 'folder dataset: centre joints'),
    Field('data.num_frames', PER_DATASET, integer(1), SHARED,
          'frames fed to the model (Penn: None, the native length padded per batch)', _RESIZED),
    Field('data.augment', PER_DATASET, Flag(), SHARED, 'random training-time augmentation (evaluation never augments)'),
    Field('data.penn.normalisation', 'none', OneOf(('none', 'image')), SHARED,
          "'none' (raw pixels) or 'image' ([-1, 1] by frame size)"),
    Field('data.penn.padding', 'batch_max', OneOf(('batch_max', 'fixed')), SHARED,
          "pad a batch to the longest clip of the global batch ('batch_max', as the original) or to max_frames"),
    # At most 50 % of a batch is padding beyond what its longest clip needs (up to 384 frames); 663 frames is the
    # longest clip.
    Field('data.penn.length_buckets', (64, 96, 128, 192, 256, 384, 663), Increasing(), SHARED,
          'padded lengths: a batch is padded to the first that holds its longest clip (() = the clip itself)'),
    Field('data.penn.pad_multiple', 1, integer(1), SHARED, 'round the padded length up to a multiple of this'),
    Field('data.penn.bucket_by_length', False, Flag(), SHARED, 'batch training clips of similar lengths together'),
    Field('data.penn.bucket_window', 32, integer(1), SHARED,
          'bucket_by_length: global training batches whose clips are sorted together by length'),
    Field('data.nucla.rotation_max_deg', 60, number(0, 180), SHARED, 'random rotation up to this angle'),
    Field('data.nucla.scale_range', (0.5, 1.5), Interval(POSITIVE), SHARED, 'random scale range'),
    Field('data.nucla.drop_prob', PER_DATASET, PROBABILITY, SHARED,
          'probability of each drop augmentation (an axis; joints in frames); 1 = every clip'),
    Field('data.nucla.repeat', PER_DATASET, integer(1), SHARED, 'training clips per epoch = repeat x split size'),
    Field('data.nucla.frozen_augmentation', False, Flag(), SHARED,
          "the original's one fixed draw per (copy, clip) reused in all epochs (quirk Q4), else fresh draws"),
    Field('data.nucla.frozen_seed', 42, SEED, SHARED, 'seed of the frozen augmentation'),
    Field('data.ntu.crop_interval', PER_DATASET, Interval(FRACTION), SHARED, 'share of the clip a training crop keeps'),
    Field('data.ntu.test_crop_fraction', PER_DATASET, FRACTION, SHARED, 'share of the clip the test crop keeps'),
    Field('data.ntu.test_window_position', 0.5, number(0, 1), SHARED,
          'where the test crop sits: 0 start, 0.5 centre (as the original), 1 end'),
    Field('data.ntu.min_crop_frames', 64, integer(1), SHARED, 'shortest crop in frames'),
    Field('data.ntu.rotation_max_rad', 0.3, number(0, math.pi), SHARED, 'random rotation up to this angle'),
    Field('data.ntu.person_selection', 'abs_sum', OneOf(NTU_PERSON_SELECTIONS), SHARED,
          "which person of a two-person clip is kept: 'abs_sum' (the original's) or 'motion_variance' (the paper's)"),
    Field('data.generic.person_selection', 'auto', OneOf(PERSON_SELECTIONS), SHARED,
          "which person of a clip is kept: 'observed_motion' (the most motion over the joints observed), 'abs_sum' "
          "(the farthest from the origin; the default before 'observed_motion'), 'motion_variance' (the most motion, "
          "missing joints counted as 0), 'first' (slot 0); 'auto': the rule the work directory was trained with, "
          "'observed_motion' for a new one"),
    Field('data.generic.centre_joints', (), FreeText('joint names'), SHARED,
          "joints whose mean is the centre (() = the layout's)"),
    Field('data.generic.centre_mode', 'first_frame', OneOf(CENTRE_MODES), SHARED, 'centring of the clip'),
    Field('data.generic.scale', 'bone', OneOf(SCALES), SHARED, 'scale normalisation'),
    Field('data.generic.temporal', 'resample', OneOf(TEMPORAL_MODES), SHARED,
          "'resample' to num_frames or 'pad' with frame lengths"),
    Field('data.generic.crop_interval', (0.9, 1.0), Interval(FRACTION), SHARED,
          'share of the clip a training window keeps'),
    Field('data.generic.rotation_max_deg', 15.0, number(0, 180), SHARED, 'random rotation up to this angle'),
    Field('data.generic.scale_range', (0.9, 1.1), Interval(POSITIVE), SHARED, 'random scale range'),
    # Pretraining (stage 1).
    *_stage_fields(PRETRAIN, 'adam'),
    Field('pretrain.mask_ratio', 0.3, number(0, 1, low_open=True, high_open=True), PRETRAIN, 'share masked'),
    Field('pretrain.mask_mode', 'joints', OneOf(MASK_MODES), PRETRAIN, 'what is masked'),
    Field('pretrain.objective', 'masked_joints', OneOf(OBJECTIVES), PRETRAIN,
          "'masked_joints' (the paper's) or another (objectives/losses.py); focal, feature_prediction: settings"),
    Field('pretrain.focal.windows', (4, 8, 12), Each(integer(1)), PRETRAIN, "objective 'focal': window lengths"),
    Field('pretrain.focal.k', 1.0, NON_NEGATIVE, PRETRAIN, "objective 'focal': focusing strength"),
    Field('pretrain.focal.eps', 1e-6, POSITIVE, PRETRAIN, "objective 'focal': numerical floor"),
    Field('pretrain.feature_prediction.prediction_weight', 5.0, NON_NEGATIVE, PRETRAIN,
          "objective 'feature_prediction': weight of the prediction term"),
    Field('pretrain.feature_prediction.variance_weight', 5.0, NON_NEGATIVE, PRETRAIN,
          "objective 'feature_prediction': weight of the variance term"),
    Field('pretrain.feature_prediction.covariance_weight', 1.0, NON_NEGATIVE, PRETRAIN,
          "objective 'feature_prediction': weight of the covariance term"),
    Field('pretrain.feature_prediction.gamma', 1.0, POSITIVE, PRETRAIN,
          "objective 'feature_prediction': target standard deviation"),
    # Fine-tuning (stage 2).
    *_stage_fields(FINETUNE, 'adamw'),
    Field('finetune.label_smoothing', 0.0, RATE, FINETUNE, 'label smoothing of the classification loss'),
    Field('finetune.freeze', 'none', OneOf(FREEZE), FINETUNE, 'parameters kept frozen'),
    Field('finetune.t1_init', 'pretrained', OneOf(T1_INITS), FINETUNE,
          "T1 from this run's stage 1 or init_from ('pretrained'), or 'scratch'"),
    # Evaluation.
    Field('eval.batch_size', 4, integer(1), FREE, 'evaluation batch size'),
    Field('eval.every_epochs', 1, integer(0), SHARED,
          'evaluate every this many epochs (0 = never; which epochs can be selected as the best)'),
    Field('eval.protocols', '', CommaList(PROTOCOLS), FREE,
          "extra test protocols reported side by side (evaluate/protocols.py), e.g. 'cross_attn_4_heads,per_clip'"),
    Field('eval.multi_clip_fraction', 0.8, FRACTION, FREE, "window length of the 'multi_clip' protocol"),
    Field('eval.name', '', FreeText('a folder name'), FREE,
          "eval mode in a work directory that has results: they go to eval/<name>/ ('' = the date and time)"),
    Field('probe.epochs', 100, integer(1), FREE, 'linear-probe epochs', _trains('probe')),
    Field('probe.batch_size', 256, integer(1), FREE, 'linear-probe batch size'),
    Field('probe.lr', 0.1, POSITIVE, FREE, 'linear-probe learning rate (SGD, cosine decay, standardised features)'),
    Field('probe.momentum', 0.9, RATE, FREE, 'linear-probe momentum'),
    Field('probe.weight_decay', 0.0, number(0, 1), FREE, 'linear-probe weight decay'),
    Field('probe.knn_k', 1, integer(1), FREE, 'neighbours of the kNN classifier'),
    Field('probe.seed', 0, SEED, FREE, 'seed of the linear probe'),
    Field('probe.t1_init', 'pretrained', OneOf(T1_INITS), FREE,
          "T1 probed: this run's stage 1 or init_from ('pretrained'), or a random one ('scratch')"),
    Field('few_shot.shots', '1,5', FreeText('comma-separated shot counts'), FREE,
          'support clips drawn per class from the training split, per evaluation'),
    Field('few_shot.runs', 10, integer(1), FREE, 'draws per shot count'),
    Field('few_shot.seed', 0, SEED, FREE, 'seed of the support draws'),
    Field('few_shot.embedding', 'pooled', OneOf(EMBEDDINGS), FREE,
          "'pooled' (the classifier's pooled feature; T1's for a pretrained model) or a frame-pooled intermediate"),
    Field('few_shot.replace', False, Flag(), FREE, 'draw with replacement when a class has too few clips'),
    Field('few_shot.procedure', 'prototype', OneOf(FEW_SHOT_PROCEDURES), FREE,
          "'prototype' (cosine nearest prototype) or 'original_transfer_ucla' (the original's NTU -> N-UCLA one)"),
    Field('few_shot.protocol', '', OneOf(FEW_SHOT_PROTOCOLS), FREE,
          "'' or 'ntu120_one_shot' (the official NTU120 one-shot protocol: 20 classes, their exemplars as support)"),
    Field('few_shot.mapping', '', FreeText("'' or 'original_partition_order'"), FREE,
          "how clips reach a model of another joint layout (data/layouts.py; '' = anatomical, "
          "'original_partition_order' = the original's N-UCLA -> NTU map)"),
]

FIELDS: tuple[Field, ...] = tuple(_FIELDS)
BY_PATH: dict[str, Field] = {field.path: field for field in FIELDS}


def under(prefix: str) -> Iterator[Field]:
  """The fields below a dotted prefix ('' = all), in declaration order."""
  for field in FIELDS:
    if not prefix or field.path.startswith(prefix + '.'):
      yield field


def defaults(prefix: str = '') -> dict[str, Any]:
  """{name: default} below ``prefix`` as nested dicts (fields whose default is set elsewhere are left out)."""
  tree: dict[str, Any] = {}
  for field in under(prefix):
    if not field.has_default:
      continue
    *parents, leaf = field.path[len(prefix) + 1 if prefix else 0:].split('.')
    node = tree
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = field.default
  return tree


# What a trained model is fed at test time. A model directory stores these fields with its weights
# (data/preprocessing.py); a config it is used with must agree on them. The free fields (paths, batch sizes,
# precision) and the training-only ones (augmentation, shuffling, crops of training clips) may differ.
MODEL_INPUT_FIELDS = (
    'data.layout', 'data.num_joints', 'data.num_coords', 'data.max_persons', 'data.joint_names', 'data.parents',
    'data.centre_indices', 'data.num_frames', 'data.max_frames', 'data.representation', 'data.penn.normalisation',
    'data.penn.padding', 'data.penn.length_buckets', 'data.penn.pad_multiple', 'data.ntu.test_crop_fraction',
    'data.ntu.test_window_position', 'data.ntu.person_selection', 'data.generic.person_selection',
    'data.generic.centre_joints', 'data.generic.centre_mode', 'data.generic.scale', 'data.generic.temporal')
# What the model's classes are: a model is evaluated on, or predicts for, a dataset with its classes (the benchmark
# split, e.g. NTU's cross-subject or cross-view, may differ).
DATASET_FIELDS = ('data.tfds_name', 'data.class_subset', 'data.num_classes')
# What still has to agree when a model's embeddings serve another dataset (few-shot, the probe): the joints are
# mapped between layouts and the target dataset's own preprocessing applies, by design.
TRANSFER_INPUT_FIELDS = ('data.representation', 'data.num_coords')


def scope(path: str) -> str:
  """The recipe scope of a dotted field; an undeclared one counts as SHARED (it blocks reruns until declared)."""
  field = BY_PATH.get(path)
  return field.scope if field is not None else SHARED


def violations(config: Any, prefix: str = '') -> list[str]:
  """One line per field of ``config`` (below ``prefix``) whose value breaks its constraint; [] = valid.

  Fields that ``config`` does not have (the sub-config of another dataset) are skipped, as are fields whose
  condition does not hold (a stage's epochs when the mode does not train it).
  """
  errors = []
  for field in under(prefix):
    value = get_field(config, field.path)
    if value is ABSENT:
      continue
    if field.when is not None and not field.when.test(config):
      continue
    if not field.allowed.allows(value):
      reason = f' ({field.when.reason.format(mode=get_field(config, "mode"))})' if field.when is not None else ''
      errors.append(f'config.{field.path}={show(value)}: must be {field.allowed.describe()}{reason}')
  return errors


def check(config: Any, prefix: str = '') -> None:
  """Raises ConfigError listing every violation (`violations`)."""
  errors = violations(config, prefix)
  if errors:
    raise ConfigError('\n'.join(errors))


def show(value: Any) -> str:
  if isinstance(value, str):
    return repr(value)
  if isinstance(value, (tuple, list)):
    return '(' + ', '.join(show(v) for v in value) + ')'
  return str(value)


def describe_default(field: Field) -> str:
  return repr(field.default) if field.has_default else str(field.default)


def help_text() -> str:
  """The schema as a table: field, default, allowed values, recipe scope, description."""
  lines = ['Experiment config fields (set with --config.<field>=<value>). Scope: which trained result a field',
           "changes: 'shared' (both stages), 'pretrain', 'finetune', or 'free' (none; a rerun may change it).", '']
  for field in FIELDS:
    condition = f' ({field.when.applies})' if field.when is not None else ''
    lines.append(f'{field.path}  [{field.scope}]  default: {describe_default(field)}')
    lines.append(f'    {field.doc}')
    lines.append(f'    allowed: {field.allowed.describe()}{condition}')
  return '\n'.join(lines)
