"""Data settings (`config.data` of an experiment config) and the model-input shape they imply."""

from __future__ import annotations

import os

import ml_collections
from ml_collections import config_dict
import numpy as np

from cascadeformer_jax.config import schema
from cascadeformer_jax.data import generic
from cascadeformer_jax.data import layouts
from cascadeformer_jax.data import transforms

# Built-in datasets; FOLDER is any user folder of clips (`data.folder`, data_builders.skeleton_folder).
DATASETS = schema.DATASETS
FOLDER = schema.FOLDER
LAYOUT_FAMILIES = schema.LAYOUT_FAMILIES
# The named joint layout in which each built-in family stores its clips (N-UCLA: native order, before the
# partition reorder of its pipeline).
STORED_LAYOUTS = {'penn': 'penn13', 'nucla': 'nucla20', 'ntu': 'ntu25'}

# NTU datasets: experiment dataset name -> (TFDS builder, number of classes).
_NTU_DATASETS = {'ntu60_xsub': ('ntu_rgbd60', 60), 'ntu60_xview': ('ntu_rgbd60', 60),
                 'ntu120_xsub': ('ntu_rgbd120', 120), 'ntu120_xset': ('ntu_rgbd120', 120)}
# Labels of the two-person actions: NTU60 A050-A060; NTU120 adds A106-A120.
NTU60_TWO_PERSON_LABELS = tuple(range(49, 60))
NTU120_TWO_PERSON_LABELS = NTU60_TWO_PERSON_LABELS + tuple(range(105, 120))
_TWO_PERSON_LABELS = {'ntu_rgbd60': NTU60_TWO_PERSON_LABELS, 'ntu_rgbd120': NTU120_TWO_PERSON_LABELS}

# Padded lengths of Penn Action batches (data.penn.length_buckets): every batch is padded to the first bucket that
# holds its longest clip, so training, evaluation and prediction compile at most this many shapes.
PENN_LENGTH_BUCKETS = schema.BY_PATH['data.penn.length_buckets'].default

# N-UCLA augmentation settings of the published runs (docs/original_code.md: training recipes, quirk Q12).
_NUCLA_VARIANT_AUGMENTATION = {'1.0': (30, 0.1), '1.1': (10, 0.1), '1.2': (25, 0.3)}


def default_data_config(dataset: str, variant: str | None = None) -> ml_collections.ConfigDict:
  """Data settings of a dataset, with the original code's values as defaults.

  Every field is declared, with its allowed values and description, in config/schema.py (``python -m
  cascadeformer_jax.main --config_help`` lists them); the fields every dataset has take its defaults. Set here:
  what the dataset is (name, TFDS builder, layout family, sizes, frames, augmentation), and the sub-config of its
  preprocessing family: ``ntu`` (NTU60, NTU120 and synthetic_actions), ``nucla``, ``penn`` or, for a folder
  dataset, ``generic`` (data/generic.py). A folder dataset's classes, joints, coordinates, persons and joint
  layout are placeholders until the run reads its folder (`sources.resolve_folder`).

  Args:
    dataset: one of `DATASETS` or `FOLDER`.
    variant: '1.0', '1.1' or '1.2' selects the N-UCLA repeat / drop probability of that published run
      (30/0.1, 10/0.1, 25/0.3); other datasets do not depend on it.
  """
  if dataset not in DATASETS + (FOLDER,):
    raise ValueError(f'unknown dataset {dataset!r}; expected one of {DATASETS} or {FOLDER!r} (a folder of your '
                     'own clips: data.folder)')
  cfg = ml_collections.ConfigDict()
  cfg.name = dataset
  # The fields every dataset has, with the defaults declared in config/schema.py.
  cfg.update({name: value for name, value in schema.defaults('data').items() if not isinstance(value, dict)})
  cfg.max_frames = 0

  if dataset == FOLDER:
    cfg.tfds_name, cfg.tfds_config, cfg.layout = 'skeleton_folder', '', 'generic'
    cfg.folder = ''
    cfg.num_classes, cfg.num_joints, cfg.num_coords, cfg.max_persons = 0, 0, 0, 0
    cfg.joint_layout = ''
    cfg.joint_names = ()
    cfg.parents = ()
    cfg.centre_indices = ()
    cfg.num_frames = 32
    cfg.augment = True
    cfg.generic = ml_collections.ConfigDict(dict(generic.DEFAULT_SETTINGS))
  elif dataset == 'penn_action':
    cfg.tfds_name, cfg.tfds_config, cfg.layout = 'penn_action', '', 'penn'
    cfg.num_classes, cfg.num_joints, cfg.num_coords = 15, 13, 2
    cfg.num_frames = config_dict.placeholder(int)
    cfg.max_frames = 663
    cfg.augment = False
    cfg.penn = ml_collections.ConfigDict(schema.defaults('data.penn'))
  elif dataset == 'n_ucla':
    cfg.tfds_name, cfg.tfds_config, cfg.layout = 'n_ucla', '', 'nucla'
    cfg.num_classes, cfg.num_joints, cfg.num_coords = 10, 20, 3
    cfg.num_frames = 64
    cfg.augment = True
    repeat, drop_prob = _NUCLA_VARIANT_AUGMENTATION.get(variant or '1.0', (30, 0.1))
    cfg.nucla = ml_collections.ConfigDict(dict(schema.defaults('data.nucla'), drop_prob=drop_prob, repeat=repeat))
  else:
    if dataset == 'synthetic_actions':
      cfg.tfds_name, cfg.tfds_config = 'synthetic_actions', ''
      cfg.num_classes = 10
      crop_interval, test_crop_fraction = (1.0, 1.0), 1.0
    else:
      cfg.tfds_name, cfg.num_classes = _NTU_DATASETS[dataset]
      cfg.tfds_config = dataset.rsplit('_', 1)[1]
      crop_interval, test_crop_fraction = (0.5, 1.0), 0.95
    cfg.layout = 'ntu'
    cfg.num_joints, cfg.num_coords = 25, 3
    cfg.num_frames = 64
    cfg.augment = True
    cfg.ntu = ml_collections.ConfigDict(dict(schema.defaults('data.ntu'), crop_interval=crop_interval,
                                             test_crop_fraction=test_crop_fraction))
  return cfg


def two_person_labels(data_config: ml_collections.ConfigDict) -> tuple[int, ...] | None:
  """Labels of the two-person actions of an NTU dataset (for the single-/two-person breakdown), else None."""
  return _TWO_PERSON_LABELS.get(data_config.get('tfds_name', ''))


def penn_batch_frames(data_config: ml_collections.ConfigDict, longest: int) -> int:
  """Padded length of a Penn Action batch whose longest clip has ``longest`` frames, under the data config."""
  penn = data_config.penn
  if penn.padding == 'fixed':
    return int(data_config.max_frames)
  return transforms.padded_length(longest, tuple(penn.get('length_buckets', ())), penn.pad_multiple)


def resolve_data_dir(data_config: ml_collections.ConfigDict) -> str:
  """`data_dir`, or TFDS's default: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  if data_config.data_dir:
    return os.path.expanduser(data_config.data_dir)
  return os.path.expanduser(os.environ.get('TFDS_DATA_DIR', '~/tensorflow_datasets'))


def model_input_shape(data_config: ml_collections.ConfigDict) -> tuple[int, int, int]:
  """(T, J, C) of one model input clip, known before any data is read.

  For Penn Action T is `max_frames` (an upper bound: batches are padded to their longest clip unless
  `penn.padding='fixed'`); C includes the extra channels of the chosen `representation`.
  """
  num_frames = data_config.num_frames if data_config.layout != 'penn' else data_config.max_frames
  channels = transforms.representation_channels(data_config.representation, data_config.num_coords)
  return int(num_frames), int(data_config.num_joints), channels


# Automatic worker processes only pay off for passes of at least this many examples (start-up: seconds each)
# and, where batches cannot be stacked, for local batches of at least this many clips (handing one batch over
# costs the main process about a millisecond of CPU, as much as preprocessing a few clips itself).
MIN_EXAMPLES_FOR_WORKERS = 2048
MIN_BATCH_FOR_WORKERS = 16
# Batches are handed from background threads and worker processes to the trainer about this many clips at a time:
# a hand-off has a fixed cost (a thread queue's wake-up; a worker's shared memory and pickling) of up to about a
# millisecond, which a batch of 4 clips cannot pay for.
HANDOFF_CLIPS = 128


def available_cores() -> int:
  """CPU cores this process may run on (its affinity mask, which cluster schedulers set per task)."""
  if hasattr(os, 'sched_getaffinity'):
    return len(os.sched_getaffinity(0)) or 1
  return os.cpu_count() or 1


def stackable_batches(data_config: ml_collections.ConfigDict) -> bool:
  """Whether every batch of the pipeline has the same shape (all but Penn Action padded per batch)."""
  return data_config.layout != 'penn' or data_config.penn.padding == 'fixed'


def handoff_batches(batch_size: int) -> int:
  """Batches a background thread or worker process hands over at once: ⌊HANDOFF_CLIPS / batch⌋, at least 1."""
  return max(1, HANDOFF_CLIPS // max(1, batch_size))


def input_parallelism(data_config: ml_collections.ConfigDict, num_workers: int | None = None,
                      num_examples: int | None = None, batch_size: int | None = None) -> tuple[int, int, int]:
  """(worker processes, background threads, hand-offs kept ready) of the input pipeline; −1 fields resolved.

  Automatic choices scale with the host: one background thread prepares batches while the caller runs the
  step, and passes of at least `MIN_EXAMPLES_FOR_WORKERS` examples add one worker process per available core
  (`available_cores`, at most 8); both hand batches over `handoff_batches` at a time. A worker process costs
  seconds to start, which short passes do not repay. Batches of varying shape (Penn Action's per-batch padding)
  cannot be stacked and go to worker processes one by one, a hand-off that costs about as much as preparing a
  small batch, so those keep workers only for local batches of at least `MIN_BATCH_FOR_WORKERS` clips
  (`benchmarks/README.md`, input pipeline).

  Args:
    data_config: the data settings.
    num_workers: overrides `data_config.num_workers` when given.
    num_examples: examples per pass of the pipeline being built (None: not known).
    batch_size: its process-local batch size (None: not known).
  """
  workers = data_config.num_workers if num_workers is None else num_workers
  if workers < 0:
    cores = available_cores()
    workers = min(8, cores) if cores > 1 else 0
    if ((num_examples is not None and num_examples < MIN_EXAMPLES_FOR_WORKERS) or
        (batch_size is not None and batch_size < MIN_BATCH_FOR_WORKERS and not stackable_batches(data_config))):
      workers = 0
  threads = data_config.num_threads
  if threads < 0:
    threads = 1
  prefetch = data_config.prefetch_buffer_size
  if prefetch < 0:
    prefetch = 2 if threads else 0
  return int(workers), int(threads), int(prefetch)


def joint_parents(data_config: ml_collections.ConfigDict) -> np.ndarray:
  """(J,) parent of every joint in the order the model sees (after the N-UCLA partition reorder)."""
  if data_config.layout == 'generic':
    return np.asarray(data_config.parents, dtype=np.int64)
  if data_config.layout == 'penn':
    return transforms.PENN_PARENTS
  if data_config.layout == 'ntu':
    return transforms.NTU_PARENTS
  order = transforms.NUCLA_PARTITION_ORDER
  position = {int(native): k for k, native in enumerate(order)}
  return np.array([position[int(transforms.NUCLA_PARENTS[native])] for native in order], dtype=np.int64)


def stored_layout(data_config: ml_collections.ConfigDict) -> layouts.Layout:
  """The joint layout of the stored clips (before any reordering by the pipeline)."""
  if data_config.layout == 'generic':
    if not data_config.joint_names:
      raise ValueError('data config: the folder dataset is not resolved yet (no joint names)')
    return layouts.Layout(data_config.joint_layout or 'custom', tuple(data_config.joint_names),
                          tuple(int(p) for p in data_config.parents), tuple(data_config.centre_indices))
  return layouts.get_layout(STORED_LAYOUTS[data_config.layout])


def validate_data_config(data_config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the field when a setting is outside its declared values (config/schema.py), or a
  folder dataset has not been read yet."""
  schema.check({'data': data_config}, 'data')
  if data_config.layout == 'generic':
    if not data_config.folder and not data_config.tfds_config:
      raise ValueError('data config: a folder dataset needs data.folder (the folder with dataset.json, labels.csv '
                       'and the clips), e.g. --config.data.folder=my_dataset')
    generic.check_centre_joints(data_config.generic, data_config.joint_names or None)
    if not data_config.num_joints:
      raise ValueError('data config: the folder dataset is not resolved yet (num_joints is 0); '
                       'sources.resolve_folder fills it from the folder')
