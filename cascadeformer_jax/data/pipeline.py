"""Grain input pipelines: per-process training and evaluation batches from TFDS data sources.

Order and randomness are pure functions of (seed, epoch, position), so batches do not depend on the
number of worker processes or threads, and an iterator can be restored from its step count alone.

Every epoch has a *plan*: a (num_batches, global_batch_size) array of virtual example indices (−1 =
padding). Process p of P reads only columns [p·B, (p+1)·B) of each row, B = global_batch_size / P, so
the union of the P local batches is the global batch a single process would produce. A virtual index v
stands for stored example `examples[v % N]` (N-UCLA repeats the split `repeat` times per epoch); its
augmentation draws come from its own counter-based stream keyed by (seed, epoch, v), or by (frozen_seed, v) for
the original's frozen N-UCLA augmentation (`random_streams`).

Each batch is made by one call (`BatchLoader`) that reads its stored examples and preprocesses them together,
vectorised over the batch. By default one background thread prepares batches, long passes add worker
processes (`data.config.input_parallelism`), and both hand batches over about 128 clips at a time
(`BatchStack`). Label and clip-length scans (hold-out, labelled subset, Penn padding) happen once per source.
An evaluation iterator is reused across evaluations with `reset()`.

Batches (process-local, B = local batch size):
  skeleton: float32 (B, T, J, C) — model input (Penn: zero-padded to the longest clip of the global batch).
  label: int32 (B,); lengths: int32 (B,) real frames (T for fixed-length datasets, 0 for padding).
  valid: bool (B,) — False for padding slots (evaluation's last batch); index: int32 (B,) stored example
  index (−1 for padding); epoch: int32 (B,); nonfinite_count: int32 (B,) coordinates replaced by 0
  (only with `bad_values='zero'`).
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Iterator, Mapping

import grain
import ml_collections
import numpy as np

from cascadeformer_jax.data import config as config_lib
from cascadeformer_jax.data import examples as examples_lib
from cascadeformer_jax.data import random_streams
from cascadeformer_jax.data import sources
from cascadeformer_jax.data import transforms

_STATE_VERSION = 1
_INFINITE_STOP = 2**62
# Seed-sequence tags keep the streams of shuffling, fresh and frozen augmentation apart.
_SHUFFLE, _BATCH_ORDER, _FRESH, _FROZEN, _HOLDOUT, _LABEL_SUBSET = 1, 2, 3, 4, 5, 6


# --- Plans -----------------------------------------------------------------------------------------

class EpochPlan:
  """Which virtual example fills each slot of each global batch of an epoch (picklable)."""

  def __init__(self, num_virtual: int, global_batch_size: int, *, shuffle: bool, seed: int,
               drop_remainder: bool, lengths: np.ndarray | None = None, bucket_window: int = 0):
    """Describes the epochs; orders are computed lazily per epoch.

    Args:
      num_virtual: virtual examples per epoch.
      global_batch_size: G.
      shuffle: new permutation per epoch from (seed, epoch); otherwise the identity order.
      seed: shuffling seed.
      drop_remainder: drop the incomplete last batch; otherwise pad it with −1.
      lengths: (num_virtual,) clip lengths, used for bucketing.
      bucket_window: if > 0 (and lengths given), sort each window of this many global batches by length
        before cutting batches, then shuffle the order of the batches.
    """
    self.num_virtual = num_virtual
    self.global_batch_size = global_batch_size
    self.shuffle = shuffle
    self.seed = seed
    self.drop_remainder = drop_remainder
    self.lengths = lengths
    self.bucket_window = bucket_window
    if drop_remainder:
      self.num_batches = num_virtual // global_batch_size
    else:
      self.num_batches = -(-num_virtual // global_batch_size)
    self._cache: dict[int, np.ndarray] = {}

  def order(self, epoch: int) -> np.ndarray:
    """(num_batches, G) int64 virtual indices of `epoch` (−1 = padding slot)."""
    cached = self._cache.get(epoch)
    if cached is None:
      cached = self._compute(epoch)
      if len(self._cache) >= 2:
        self._cache.pop(min(self._cache))
      self._cache[epoch] = cached
    return cached

  def _compute(self, epoch: int) -> np.ndarray:
    size = self.num_batches * self.global_batch_size
    if self.shuffle:
      order = np.random.default_rng([self.seed, _SHUFFLE, epoch]).permutation(self.num_virtual)
    else:
      order = np.arange(self.num_virtual)
    order = order[:size]
    num_full = len(order) // self.global_batch_size
    full = order[:num_full * self.global_batch_size]
    if self.bucket_window > 0 and self.lengths is not None:
      window = self.bucket_window * self.global_batch_size
      full = np.concatenate([
          chunk[np.argsort(self.lengths[chunk], kind='stable')]
          for chunk in np.split(full, range(window, len(full), window))]) if len(full) else full
    batches = full.reshape(num_full, self.global_batch_size)
    if self.bucket_window > 0 and self.lengths is not None and self.shuffle:
      batches = batches[np.random.default_rng([self.seed, _BATCH_ORDER, epoch]).permutation(num_full)]
    rest = order[num_full * self.global_batch_size:]
    if len(rest):
      padded = np.full((1, self.global_batch_size), -1, dtype=np.int64)
      padded[0, :len(rest)] = rest
      batches = np.concatenate([batches, padded])
    return batches.astype(np.int64)


# --- Batch loading (module level so worker processes can unpickle it) ----------------------------

class BatchLoader:
  """Batch position → process-local batch dict (see the module docstring).

  One call reads the batch's stored examples and preprocesses them together (`examples.process_examples`,
  vectorised over the batch); every example still draws from its own random stream, so values do not depend
  on how batches are spread over threads or worker processes. Evaluation loaders (`cycle=True`) read
  position p as p mod batches-per-epoch, so an evaluation stream can run on into the next identical pass.
  """

  def __init__(self, source: Any, plan: EpochPlan, settings: Mapping[str, Any], *, train: bool,
               examples: np.ndarray, process_index: int, local_batch_size: int, where: str,
               rng_mode: str, seed: int, lengths: np.ndarray | None, fixed_frames: int,
               pad_multiple: int, cycle: bool, length_buckets: tuple[int, ...] = ()):
    self.source = source
    self.plan = plan
    self.settings = dict(settings)
    self.parents = config_lib.joint_parents(ml_collections.ConfigDict(self.settings))
    self.train = train
    self.examples = examples
    self.process_index = process_index
    self.local_batch_size = local_batch_size
    self.where = where
    self.rng_mode = rng_mode
    self.seed = seed
    self.lengths = lengths
    self.fixed_frames = fixed_frames
    self.pad_multiple = pad_multiple
    self.length_buckets = tuple(length_buckets)
    self.cycle = cycle
    self.variable_length = settings['layout'] == 'penn'
    _, self.num_joints, self.channels = config_lib.model_input_shape(ml_collections.ConfigDict(self.settings))

  def _keys(self, epoch: int, virtuals: np.ndarray) -> np.ndarray | None:
    if self.rng_mode == 'fresh':
      return random_streams.example_keys((self.seed, _FRESH, epoch), virtuals)
    if self.rng_mode == 'frozen':
      return random_streams.example_keys((self.seed, _FROZEN), virtuals)
    return None

  def _read(self, indices: list[int]) -> list[Any]:
    if hasattr(self.source, '__getitems__'):  # TFDS data sources read a batch of records in one call
      return list(self.source.__getitems__(indices))
    return [self.source[index] for index in indices]

  def __call__(self, position: int) -> dict[str, np.ndarray]:
    position = int(position)
    if self.cycle:
      position %= self.plan.num_batches
    epoch, batch = divmod(position, self.plan.num_batches)
    row = self.plan.order(epoch)[batch]
    size = self.local_batch_size
    local = row[self.process_index * size:(self.process_index + 1) * size]
    valid = local >= 0
    slots = np.flatnonzero(valid)
    virtuals = local[slots]
    stored = self.examples[virtuals % len(self.examples)]
    indices = stored.tolist()
    out = {'label': np.zeros(size, np.int32), 'lengths': np.zeros(size, np.int32), 'valid': valid,
           'index': np.full(size, -1, np.int32), 'epoch': np.full(size, epoch, np.int32),
           'nonfinite_count': np.zeros(size, np.int32)}
    out['index'][slots] = stored
    processed = None
    if indices:
      raws = self._read(indices)
      processed = examples_lib.process_examples(
          raws, self.settings, self.parents, self._keys(epoch, virtuals), self.train,
          [f'{self.where} example {index}' for index in indices])
      out['label'][slots] = processed['label']
      out['lengths'][slots] = processed['length']
      out['nonfinite_count'][slots] = processed['nonfinite_count']
    if not self.variable_length:
      if processed is not None and len(slots) == size:
        out['skeleton'] = processed['skeleton']
      else:
        out['skeleton'] = np.zeros((size, self.settings['num_frames'], self.num_joints, self.channels),
                                   np.float32)
        if processed is not None:
          out['skeleton'][slots] = processed['skeleton']
      return {'skeleton': out.pop('skeleton'), **out}
    clips = [] if processed is None else processed['skeleton']
    if self.fixed_frames:
      for clip, raw, index in zip(clips, raws, indices):
        if clip.shape[0] > self.fixed_frames:
          raise examples_lib.BadExampleError(
              f"{examples_lib.describe_example(raw, f'{self.where} example {index}')}: {clip.shape[0]} "
              f'frames exceed penn.padding=fixed length max_frames={self.fixed_frames}')
      target = self.fixed_frames
    else:
      pad_to = 0
      if self.lengths is not None:
        real = row[row >= 0]
        pad_to = int(self.lengths[real % len(self.examples)].max()) if len(real) else 0
      target = transforms.padded_length(max([clip.shape[0] for clip in clips] + [pad_to, 1]),
                                        self.length_buckets, self.pad_multiple)
    skeleton = np.zeros((size, target, self.num_joints, self.channels), np.float32)
    for slot, clip in zip(slots, clips):
      skeleton[slot, :clip.shape[0]] = clip
    return {'skeleton': skeleton, **out}


class BatchStack:
  """Hand-off position c → batches c·k … c·k + k − 1 of `loader` (picklable).

  Threads and worker processes hand over k batches at once, so that the fixed cost of a hand-off (a thread
  queue's wake-up, or a worker's shared memory and pickling: about as much as preparing a batch of 4 clips) is
  paid once per k. With `stack` (worker processes), the batches are stacked along a new leading axis, so that a
  worker passes one array per field; a thread hands over the list.
  """

  def __init__(self, loader: BatchLoader, batches: int, stack: bool):
    self.loader = loader
    self.batches = batches
    self.stack = stack

  def __call__(self, position: int) -> dict[str, np.ndarray] | list[dict[str, np.ndarray]]:
    parts = [self.loader(int(position) * self.batches + k) for k in range(self.batches)]
    if not self.stack:
      return parts
    return {key: np.stack([part[key] for part in parts]) for key in parts[0]}


class _Unstacked(Iterator[dict[str, np.ndarray]]):
  """Batches of a stream of `BatchStack` hand-offs, starting `skip` batches into the first."""

  def __init__(self, handoffs: Iterator[Any], skip: int):
    self._handoffs = handoffs
    self._skip = skip
    self._batches: list[dict[str, np.ndarray]] = []
    self._next = 0

  def __next__(self) -> dict[str, np.ndarray]:
    if self._next >= len(self._batches):
      handoff = next(self._handoffs)
      if isinstance(handoff, Mapping):
        # One copy out of a worker's shared memory per field; the batches are views of it.
        fields = {key: np.array(value) for key, value in handoff.items()}
        handoff = [{key: value[k] for key, value in fields.items()} for k in range(len(fields['label']))]
      self._batches, self._next, self._skip = handoff, self._skip, 0
    batch = self._batches[self._next]
    self._next += 1
    return batch

  def close(self) -> None:
    if hasattr(self._handoffs, 'close'):
      self._handoffs.close()


# --- Iterator --------------------------------------------------------------------------------------

class DataIterator(Iterator[dict[str, np.ndarray]]):
  """Iterator over process-local batches with checkpointable state.

  Attributes:
    step: batches returned so far.
    epoch: epoch of the next batch (= completed epochs for the training iterator).
    batches_per_epoch: global batches per epoch (the same on every process).
    local_batch_size, global_batch_size: B and G.
  """

  def __init__(self, build: Callable[[int], Iterator[dict[str, np.ndarray]]], *,
               batches_per_epoch: int, total_batches: int | None, identity: dict[str, Any],
               local_batch_size: int, global_batch_size: int):
    self._build = build
    self.batches_per_epoch = batches_per_epoch
    self._total = total_batches
    self._identity = identity
    self.local_batch_size = local_batch_size
    self.global_batch_size = global_batch_size
    self.step = 0
    self._iterator = None

  @property
  def epoch(self) -> int:
    return self.step // self.batches_per_epoch

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._total is not None and self.step >= self._total:
      raise StopIteration
    if self._iterator is None:
      self._iterator = self._build(self.step)
    batch = next(self._iterator)
    self.step += 1
    # Worker processes hand over shared-memory array subclasses; plain copies free the shared memory
    # now instead of whenever the caller drops the batch.
    return {key: value if type(value) is np.ndarray else np.array(value)  # pylint: disable=unidiomatic-typecheck
            for key, value in batch.items()}

  def __len__(self) -> int:
    if self._total is None:
      raise TypeError('the training iterator is infinite')
    return self._total

  def get_state(self) -> dict[str, Any]:
    """JSON-serialisable state: the step count plus what must match on restore."""
    return {'version': _STATE_VERSION, 'step': self.step, **self._identity}

  def set_state(self, state: Mapping[str, Any]) -> None:
    """Continues after the batches counted in `state` (prefetched batches are discarded)."""
    if state.get('version') != _STATE_VERSION:
      raise ValueError(f"iterator state version {state.get('version')!r} is not {_STATE_VERSION}")
    for key, value in self._identity.items():
      if state.get(key) != value:
        raise ValueError(f'iterator state was saved with {key}={state.get(key)!r}, this iterator has '
                         f'{key}={value!r}; batches would differ')
    step = int(state['step'])
    if step < 0 or (self._total is not None and step > self._total):
      raise ValueError(f'iterator state step {step} is out of range')
    self.close()
    self.step = step

  def reset(self) -> None:
    """Starts an evaluation iterator's pass again, with the same batches.

    After a pass read to its end, the running pipeline (threads, worker processes, prefetched batches)
    carries on into the next pass; otherwise it is rebuilt from the first batch.
    """
    if self._total is None:
      raise TypeError('the training iterator is infinite; restore a position with set_state()')
    if self.step != self._total:
      self.close()
    self.step = 0

  def close(self) -> None:
    """Stops worker processes (if any); iteration continues lazily from `step`."""
    if self._iterator is not None and hasattr(self._iterator, 'close'):
      self._iterator.close()
    self._iterator = None


# --- Public constructors ---------------------------------------------------------------------------

def open_data_source(data_config: ml_collections.ConfigDict, split: str) -> Any:
  """Opens the TFDS data source of `split` (through `data.sources`, the package's door to `data_builders`)."""
  return sources.open_split(data_config, split)


def _resolve_processes(global_batch_size: int, process_index: int | None,
                       process_count: int | None) -> tuple[int, int, int]:
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if global_batch_size < 1:
    raise ValueError(f'global_batch_size must be positive, got {global_batch_size}')
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} is not in [0, process_count={process_count})')
  if global_batch_size % process_count:
    raise ValueError(f'global_batch_size {global_batch_size} is not divisible by the number of '
                     f'processes {process_count}')
  return process_index, process_count, global_batch_size // process_count


def stratified_subset(labels: np.ndarray, fraction: float, seed: int, stream: int,
                      min_per_class: int = 0) -> np.ndarray:
  """Boolean (N,) mask of max(min_per_class, round(fraction·n_c)) random clips of every class c.

  `stream` keeps independent draws apart: the hold-out (`_HOLDOUT`, min 0) and the semi-supervised labelled
  subset (`_LABEL_SUBSET`, min 1) use the same rule with different random streams.
  """
  chosen = np.zeros(len(labels), bool)
  rng = np.random.default_rng([seed, stream])
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    chosen[rng.permutation(members)[:max(min_per_class, int(round(fraction * len(members))))]] = True
  return chosen


# Per-example scans (labels for the hold-out and the labelled subset, Penn clip lengths) are done once per
# source: keyed by the TFDS split a source was opened from, or by the source object itself.
_SCAN_CACHE: collections.OrderedDict[tuple, tuple[Any, int, np.ndarray]] = collections.OrderedDict()
_SCAN_CACHE_ENTRIES = 16
_SCAN_CHUNK = 1024


def _scan(source: Any, source_key: tuple | None, what: str, field: str, where: str,
          value: Callable[[Any, str], int]) -> np.ndarray:
  """(N,) int64 `value(raw[field])` of every stored example, read in chunks and cached per source."""
  key = (what,) + (source_key if source_key is not None else ('object', id(source)))
  cached = _SCAN_CACHE.get(key)
  if cached is not None and (source_key is not None or cached[0] is source) and cached[1] == len(source):
    _SCAN_CACHE.move_to_end(key)
    return cached[2]
  values = []
  for start in range(0, len(source), _SCAN_CHUNK):
    indices = list(range(start, min(start + _SCAN_CHUNK, len(source))))
    if hasattr(source, '__getitems__'):
      raws = source.__getitems__(indices)
    else:
      raws = [source[i] for i in indices]
    for index, raw in zip(indices, raws):
      name = f'{where} example {index}'
      values.append(value(examples_lib.get_field(raw, field, name), name))
  result = np.array(values, np.int64)
  _SCAN_CACHE[key] = (None if source_key is not None else source, len(source), result)
  while len(_SCAN_CACHE) > _SCAN_CACHE_ENTRIES:
    _SCAN_CACHE.popitem(last=False)
  return result


def _tfds_key(data_config: ml_collections.ConfigDict, split: str) -> tuple:
  return ('tfds', data_config.tfds_name, data_config.tfds_config or '', config_lib.resolve_data_dir(data_config),
          split)


def _label_value(label: Any, where: str) -> int:
  del where
  return int(np.asarray(label))


def _length_value(skeleton: Any, where: str) -> int:
  del where
  skeleton = np.asarray(skeleton)
  return skeleton.shape[0] if skeleton.ndim else 0


def class_subset_labels(data_config: ml_collections.ConfigDict) -> np.ndarray | None:
  """The labels `data.class_subset` keeps in every split, or None (all classes).

  'ntu120_auxiliary': the 100 auxiliary classes of the NTU RGB+D 120 one-shot protocol (its 20 evaluation classes
  are left out, for training a model that the protocol then evaluates with --config.mode=few_shot).
  """
  name = data_config.get('class_subset', '')
  if not name:
    return None
  if name != 'ntu120_auxiliary':
    raise ValueError(f"data config: class_subset={name!r} is not one of ('', 'ntu120_auxiliary')")
  if data_config.tfds_name != 'ntu_rgbd120':
    raise ValueError(f"data config: class_subset='ntu120_auxiliary' needs ntu120_xsub or ntu120_xset, not "
                     f'{data_config.name}')
  return np.asarray(sources.one_shot_protocol(data_config)['auxiliary_labels'], np.int64)


def _split_examples(data_config, source, split: str, where: str, source_key: tuple | None = None) -> np.ndarray:
  """Indices of the split's examples: the training split minus the hold-out, reduced to the labelled subset;
  every split reduced to `data.class_subset`."""
  num_examples = len(source)
  if num_examples == 0:
    raise ValueError(f'{where}: the data source is empty')
  indices = np.arange(num_examples)
  holdout, label_fraction = data_config.holdout_fraction, data_config.get('label_fraction', 1.0)
  if split == 'holdout' and not holdout > 0:
    raise ValueError("split='holdout' needs data.holdout_fraction > 0")
  classes = class_subset_labels(data_config)
  training = split in (data_config.train_split, 'holdout')
  if classes is None and (not training or (holdout <= 0 and label_fraction >= 1)):
    return indices
  labels = _scan(source, source_key, 'label', 'label', where, _label_value)
  if classes is not None:
    kept = np.isin(labels, classes)
    indices, labels = indices[kept], labels[kept]
    if not indices.size:
      raise ValueError(f'{where}: no example of the data.class_subset={data_config.class_subset!r} classes')
    if not training:
      return indices
  if holdout > 0:
    held = stratified_subset(labels, holdout, data_config.seed, _HOLDOUT)
    if split == 'holdout':
      return indices[held]
    indices, labels = indices[~held], labels[~held]
  if label_fraction < 1:
    indices = indices[stratified_subset(labels, label_fraction, data_config.seed, _LABEL_SUBSET, 1)]
  return indices


def _penn_lengths(source, indices: np.ndarray, where: str, source_key: tuple | None = None) -> np.ndarray:
  return _scan(source, source_key, 'length', 'skeleton', where, _length_value)[indices]


def _ensure_absl_flags_parsed() -> None:
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _make_iterator(data_config, global_batch_size, *, split, train, source, process_index,
                   process_count, seed, num_workers) -> DataIterator:
  config_lib.validate_data_config(data_config)
  process_index, process_count, local_batch = _resolve_processes(
      global_batch_size, process_index, process_count)
  source_split = data_config.train_split if split == 'holdout' else split
  source_key = None
  if source is None:
    source = open_data_source(data_config, source_split)
    source_key = _tfds_key(data_config, source_split)
  where = f'{data_config.name}/{split}'
  indices = _split_examples(data_config, source, split, where, source_key)
  settings = data_config.to_dict()
  seed = data_config.seed if seed is None else int(seed)
  layout = data_config.layout

  repeat = 1
  rng_mode = 'none'
  element_seed = seed
  if train and data_config.augment:
    rng_mode = 'fresh'
    if layout == 'nucla':
      repeat = data_config.nucla.repeat
      if data_config.nucla.frozen_augmentation:
        rng_mode, element_seed = 'frozen', data_config.nucla.frozen_seed
  num_virtual = len(indices) * repeat

  lengths = None
  bucket_window = 0
  fixed_frames = 0
  pad_multiple = 1
  length_buckets = ()
  if layout == 'penn':
    penn = data_config.penn
    fixed_frames = data_config.max_frames if penn.padding == 'fixed' else 0
    pad_multiple = penn.pad_multiple
    length_buckets = tuple(penn.get('length_buckets', ()))
    bucketing = train and penn.bucket_by_length
    if bucketing or (process_count > 1 and not fixed_frames):
      # Needed to sort by length, or to pad every process to the longest clip of the global batch.
      lengths = _penn_lengths(source, indices, where, source_key)
    bucket_window = penn.bucket_window if bucketing else 0

  drop_remainder = data_config.drop_remainder if train else False
  plan = EpochPlan(num_virtual, global_batch_size, shuffle=train and data_config.shuffle, seed=seed,
                   drop_remainder=drop_remainder,
                   lengths=None if lengths is None else np.tile(lengths, repeat),
                   bucket_window=bucket_window)
  if plan.num_batches == 0:
    fraction = data_config.get('label_fraction', 1.0)
    subset = f', data.label_fraction={fraction}' if fraction < 1 else ''
    raise ValueError(f'{where}: {num_virtual} examples do not fill one global batch of '
                     f'{global_batch_size} (drop_remainder=True{subset})')
  loader = BatchLoader(source, plan, settings, train=train, examples=indices,
                       process_index=process_index, local_batch_size=local_batch, where=where,
                       rng_mode=rng_mode, seed=element_seed, lengths=lengths,
                       fixed_frames=fixed_frames, pad_multiple=pad_multiple,
                       length_buckets=length_buckets, cycle=not train)
  num_workers, num_threads, prefetch = config_lib.input_parallelism(data_config, num_workers, num_virtual,
                                                                     local_batch)
  total = None if train else plan.num_batches
  read_options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)

  stack = config_lib.stackable_batches(data_config)
  # Batches of varying shape go to worker processes one by one: a list of batches would be handed over as one
  # shared-memory block per array, which buys nothing and leaves more blocks in flight when the iterator closes.
  handoff = config_lib.handoff_batches(local_batch) if num_workers == 0 or stack else 1

  def build(start_batch: int) -> Iterator[dict[str, np.ndarray]]:
    # Evaluation streams are endless too (the loader cycles): a finished pass runs on into the next,
    # identical one, so `reset()` reuses the running threads and worker processes.
    if num_workers == 0 and num_threads == 0:
      return iter(grain.MapDataset.range(start_batch, _INFINITE_STOP).map(loader).to_iter_dataset(read_options))
    dataset = (grain.MapDataset.range(start_batch // handoff, _INFINITE_STOP // handoff)
               .map(BatchStack(loader, handoff, stack=num_workers > 0))
               .to_iter_dataset(read_options))
    if num_workers > 0:
      _ensure_absl_flags_parsed()
      dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=num_workers, per_worker_buffer_size=data_config.worker_buffer_size))
    return _Unstacked(iter(dataset), start_batch % handoff)

  identity = {'dataset': data_config.name, 'split': split, 'train': train, 'seed': seed,
              'global_batch_size': global_batch_size, 'process_index': process_index,
              'process_count': process_count, 'num_examples': int(len(indices)),
              'batches_per_epoch': plan.num_batches}
  return DataIterator(build, batches_per_epoch=plan.num_batches, total_batches=total,
                      identity=identity, local_batch_size=local_batch,
                      global_batch_size=global_batch_size)


def make_train_iterator(data_config: ml_collections.ConfigDict, global_batch_size: int, *,
                        source: Any = None, process_index: int | None = None,
                        process_count: int | None = None, seed: int | None = None,
                        num_workers: int | None = None) -> DataIterator:
  """Infinite iterator over shuffled, augmented training epochs (process-local batches).

  Args:
    data_config: `default_data_config(...)`, possibly overridden.
    global_batch_size: G, split evenly over processes (ValueError if not divisible).
    source: map-style data source (`len`, `[i]` → stored example); default: the TFDS source of
      `data_config.train_split` under `data_config.data_dir`.
    process_index, process_count: this process and the process count (default: from JAX).
    seed: order and augmentation seed (default `data_config.seed`).
    num_workers: grain worker processes (default `data_config.num_workers`).

  Returns:
    `DataIterator`; `next()` gives the batch dict of the module docstring, `get_state()` /
    `set_state()` checkpoint it, `epoch` counts epochs. Incomplete last global batches are dropped
    (`data_config.drop_remainder`).
  """
  return _make_iterator(data_config, global_batch_size, split=data_config.train_split, train=True,
                        source=source, process_index=process_index, process_count=process_count,
                        seed=seed, num_workers=num_workers)


def num_examples(data_config: ml_collections.ConfigDict, split: str, *, source: Any = None) -> int:
  """Number of distinct examples a pipeline reads from `split` (after the hold-out and the labelled subset)."""
  source_split = data_config.train_split if split == 'holdout' else split
  source_key = None
  if source is None:
    source = open_data_source(data_config, source_split)
    source_key = _tfds_key(data_config, source_split)
  return len(_split_examples(data_config, source, split, f'{data_config.name}/{split}', source_key))


def make_eval_iterator(data_config: ml_collections.ConfigDict, global_batch_size: int,
                       split: str = 'test', *, source: Any = None, process_index: int | None = None,
                       process_count: int | None = None,
                       num_workers: int | None = None) -> DataIterator:
  """One deterministic pass over every example of `split` (no shuffling, no augmentation).

  The last global batch is padded to full size; padded slots have `valid=False`, `index=−1`, zero
  skeletons, so summing metrics over `valid` counts every example exactly once across processes.
  `split='holdout'` reads the stratified hold-out of the training split (`data_config.holdout_fraction`).
  """
  return _make_iterator(data_config, global_batch_size, split=split, train=False, source=source,
                        process_index=process_index, process_count=process_count, seed=None,
                        num_workers=num_workers)
