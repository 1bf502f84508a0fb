"""Grain pipelines: batch layout, determinism, sharding over processes, checkpoint/restore, eval padding."""

import json
import sys
import types

import numpy as np
import pytest

from cascadeformer_jax import data
from tests.data import fakes

SOURCES = {
    'ntu60_xsub': lambda: fakes.ntu_source(14),
    'ntu60_xview': lambda: fakes.ntu_source(14, seed=1),
    'synthetic_actions': lambda: fakes.ntu_source(14, num_classes=10),
    'n_ucla': lambda: fakes.nucla_source(10),
    'penn_action': lambda: fakes.penn_source(13),
}


def _config(dataset, **overrides):
  cfg = data.default_data_config(dataset)
  for key, value in overrides.items():
    target = cfg
    *path, leaf = key.split('.')
    for part in path:
      target = target[part]
    target[leaf] = value
  return cfg


def _train(cfg, source, batch=4, index=0, count=1, **kwargs):
  return data.make_train_iterator(cfg, batch, source=source, process_index=index,
                                  process_count=count, **kwargs)


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


# --- Config ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('dataset,shape', [('penn_action', (663, 13, 2)), ('n_ucla', (64, 20, 3)),
                                           ('ntu60_xsub', (64, 25, 3)), ('ntu60_xview', (64, 25, 3)),
                                           ('synthetic_actions', (64, 25, 3))])
def test_default_config_and_model_input_shape(dataset, shape):
  cfg = data.default_data_config(dataset)
  data.validate_data_config(cfg)
  assert data.model_input_shape(cfg) == shape
  cfg.representation = 'joint_bone'
  assert data.model_input_shape(cfg) == shape[:2] + (2 * shape[2],)


def test_config_originals():
  ntu = data.default_data_config('ntu60_xview')
  assert (ntu.tfds_name, ntu.tfds_config) == ('ntu_rgbd60', 'xview')
  assert ntu.ntu.crop_interval == (0.5, 1.0) and ntu.ntu.test_crop_fraction == 0.95
  assert ntu.ntu.person_selection == 'abs_sum' and ntu.seed == 42
  nucla = data.default_data_config('n_ucla')
  assert (nucla.nucla.repeat, nucla.nucla.drop_prob) == (30, 0.1)
  assert not nucla.nucla.frozen_augmentation
  assert (data.default_data_config('n_ucla', '1.2').nucla.repeat,
          data.default_data_config('n_ucla', '1.2').nucla.drop_prob) == (25, 0.3)
  penn = data.default_data_config('penn_action')
  assert penn.num_frames is None and penn.penn.normalisation == 'none' and not penn.augment
  assert penn.num_workers == -1 and penn.num_threads == -1  # automatic (data.input_parallelism)


def test_nucla_joint_parents_follow_partition_order():
  parents = data.joint_parents(data.default_data_config('n_ucla'))
  order = data.transforms.NUCLA_PARTITION_ORDER
  np.testing.assert_array_equal(order[parents], data.transforms.NUCLA_PARENTS[order])


@pytest.mark.parametrize('field,value,message', [
    ('representation', 'angles', 'representation'), ('bad_values', 'skip', 'bad_values'),
    ('ntu.person_selection', 'tallest', 'person_selection'), ('ntu.crop_interval', (0.0, 1.0),
                                                            'crop_interval')])
def test_config_validation(field, value, message):
  cfg = _config('ntu60_xsub', **{field: value})
  with pytest.raises(ValueError, match=message):
    _train(cfg, fakes.ntu_source(4))


def test_unknown_dataset():
  with pytest.raises(ValueError, match='unknown dataset'):
    data.default_data_config('kinetics')


# --- Batches ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('dataset', sorted(SOURCES))
def test_train_batches_layout(dataset):
  cfg = data.default_data_config(dataset)
  iterator = _train(cfg, SOURCES[dataset]())
  batch = next(iterator)
  t, j, c = data.model_input_shape(cfg)
  assert batch['skeleton'].dtype == np.float32 and batch['skeleton'].shape[0] == 4
  assert batch['skeleton'].shape[2:] == (j, c)
  if dataset == 'penn_action':
    # Padded to the first default length bucket that holds the longest clip.
    assert batch['skeleton'].shape[1] == min(b for b in cfg.penn.length_buckets if b >= batch['lengths'].max())
    for clip, length in zip(batch['skeleton'], batch['lengths']):
      assert (clip[length:] == 0).all()
  else:
    assert batch['skeleton'].shape[1] == t and (batch['lengths'] == t).all()
  assert batch['label'].dtype == np.int32 and batch['lengths'].dtype == np.int32
  assert batch['valid'].all() and np.isfinite(batch['skeleton']).all()
  assert len(set(batch['index'].tolist())) == 4
  json.dumps(iterator.get_state())


def test_epochs_cover_every_example_and_reshuffle():
  cfg = _config('ntu60_xsub', augment=False)
  iterator = _train(cfg, fakes.ntu_source(14), batch=4)
  assert iterator.batches_per_epoch == 3
  epochs = []
  for epoch in range(3):
    assert iterator.epoch == epoch
    batches = _take(iterator, 3)
    assert all((b['epoch'] == epoch).all() for b in batches)
    epochs.append(np.concatenate([b['index'] for b in batches]))
  for order in epochs:
    assert len(set(order.tolist())) == 12  # 14 examples, remainder of 2 dropped
  assert not np.array_equal(epochs[0], epochs[1])


def test_same_seed_same_batches_other_seed_differs():
  source = fakes.ntu_source(14)
  cfg = data.default_data_config('ntu60_xsub')
  first = _take(_train(cfg, source), 4)
  _assert_batches_equal(first, _take(_train(cfg, source), 4))
  other = _take(_train(cfg, source, seed=7), 4)
  assert not np.array_equal(first[0]['skeleton'], other[0]['skeleton'])


def _by_index(batches):
  return {int(i): s for b in batches for i, s in zip(b['index'], b['skeleton'])}


def test_fresh_augmentation_differs_across_epochs():
  cfg = _config('n_ucla', **{'nucla.repeat': 1})
  iterator = _train(cfg, fakes.nucla_source(8), batch=4)
  epoch0, epoch1 = _by_index(_take(iterator, 2)), _by_index(_take(iterator, 2))
  assert epoch0.keys() == epoch1.keys()
  assert all(not np.array_equal(epoch0[i], epoch1[i]) for i in epoch0)


def test_frozen_augmentation_repeats_the_same_draws():
  cfg = _config('n_ucla', **{'nucla.repeat': 1, 'nucla.frozen_augmentation': True})
  source = fakes.nucla_source(8)
  iterator = _train(cfg, source, batch=4)
  epoch0, epoch1 = _by_index(_take(iterator, 2)), _by_index(_take(iterator, 2))
  assert all(np.array_equal(epoch0[i], epoch1[i]) for i in epoch0)
  # The draws are augmented (not the test transform) and independent of the order seed.
  test_mode = _by_index(data.make_eval_iterator(cfg, 4, source=source, process_index=0,
                                                process_count=1))
  assert any(not np.array_equal(epoch0[i], test_mode[i]) for i in epoch0)
  other_order = _by_index(_take(_train(cfg, source, batch=4, seed=3), 2))
  assert all(np.array_equal(epoch0[i], other_order[i]) for i in epoch0)


def test_nucla_repeat_multiplies_epoch_length():
  cfg = _config('n_ucla', **{'nucla.repeat': 3})
  iterator = _train(cfg, fakes.nucla_source(8), batch=4)
  assert iterator.batches_per_epoch == 6
  indices = np.concatenate([b['index'] for b in _take(iterator, 6)])
  assert np.bincount(indices).tolist() == [3] * 8


@pytest.mark.parametrize('dataset,overrides', [
    ('n_ucla', {'nucla.repeat': 1}),
    ('ntu60_xsub', {}),
    ('penn_action', {'penn.bucket_by_length': True, 'penn.bucket_window': 2}),
])
def test_restore_mid_epoch_gives_the_uninterrupted_batches(dataset, overrides):
  cfg = _config(dataset, **overrides)
  source = SOURCES[dataset]()
  reference = _take(_train(cfg, source, batch=4), 8)  # crosses epoch boundaries
  interrupted = _train(cfg, source, batch=4)
  _take(interrupted, 2)
  state = json.loads(json.dumps(interrupted.get_state()))
  _take(interrupted, 1)  # consumed after the checkpoint: must be replayed
  restored = _train(cfg, source, batch=4)
  restored.set_state(state)
  assert restored.step == 2
  _assert_batches_equal(_take(restored, 6), reference[2:])
  assert restored.epoch == 8 // restored.batches_per_epoch


def test_set_state_rejects_a_different_pipeline():
  source = fakes.ntu_source(14)
  cfg = data.default_data_config('ntu60_xsub')
  state = _train(cfg, source, batch=4).get_state()
  with pytest.raises(ValueError, match='global_batch_size=4'):
    _train(cfg, source, batch=2).set_state(state)
  with pytest.raises(ValueError, match='seed'):
    _train(cfg, source, batch=4, seed=1).set_state(state)


def test_threads_do_not_change_batches():
  source = fakes.nucla_source(8)
  cfg = _config('n_ucla', **{'nucla.repeat': 2})
  reference = _take(_train(cfg, source), 5)
  threaded = _config('n_ucla', **{'nucla.repeat': 2, 'num_threads': 2, 'prefetch_buffer_size': 8})
  _assert_batches_equal(_take(_train(threaded, source), 5), reference)


def test_worker_processes_do_not_change_batches():
  """Workers hand over stacks of 32 batches of 4; a restore may start in the middle of a stack."""
  source = fakes.ntu_source(14)
  cfg = data.default_data_config('ntu60_xsub')
  reference = _take(_train(cfg, source), 40)
  iterator = _train(cfg, source, num_workers=2)
  try:
    _assert_batches_equal(_take(iterator, 5), reference[:5])
    iterator.set_state(dict(iterator.get_state(), step=37))
    _assert_batches_equal(_take(iterator, 3), reference[37:40])
  finally:
    iterator.close()


# --- Processes -------------------------------------------------------------------------------------

@pytest.mark.parametrize('dataset', ['n_ucla', 'penn_action'])
def test_process_shards_make_up_the_global_batch(dataset):
  source = SOURCES[dataset]()
  cfg = _config(dataset, **({'nucla.repeat': 1} if dataset == 'n_ucla' else {}))
  single = _take(_train(cfg, source, batch=4), 4)
  shards = [_take(_train(cfg, source, batch=4, index=p, count=2), 4) for p in range(2)]
  for step, whole in enumerate(single):
    halves = [shards[p][step] for p in range(2)]
    assert all(h['skeleton'].shape[0] == 2 for h in halves)
    # Penn: every process pads to the longest clip of the global batch, so shapes agree.
    assert halves[0]['skeleton'].shape == halves[1]['skeleton'].shape
    for key in whole:
      np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), whole[key], err_msg=key)


def test_batch_not_divisible_by_processes():
  with pytest.raises(ValueError, match='global_batch_size 5 is not divisible by the number of '
                                       'processes 2'):
    _train(data.default_data_config('ntu60_xsub'), fakes.ntu_source(14), batch=5, count=2)


def test_too_few_examples_for_one_batch():
  with pytest.raises(ValueError, match='do not fill one global batch'):
    _train(data.default_data_config('ntu60_xsub'), fakes.ntu_source(3), batch=4)


def test_empty_source():
  with pytest.raises(ValueError, match='data source is empty'):
    _train(data.default_data_config('ntu60_xsub'), [], batch=4)


def test_process_defaults_come_from_jax():
  iterator = data.make_train_iterator(data.default_data_config('ntu60_xsub'), 2,
                                      source=fakes.ntu_source(4))
  assert iterator.get_state()['process_count'] >= 1


# --- Evaluation ------------------------------------------------------------------------------------

@pytest.mark.parametrize('dataset', ['ntu60_xsub', 'penn_action', 'n_ucla'])
def test_eval_counts_every_example_once_across_processes(dataset):
  source = SOURCES[dataset]()
  cfg = data.default_data_config(dataset)
  seen = []
  for p in range(2):
    iterator = data.make_eval_iterator(cfg, 4, source=source, process_index=p, process_count=2)
    batches = list(iterator)
    assert len(batches) == len(iterator) == -(-len(source) // 4)
    for batch in batches:
      assert batch['skeleton'].shape[0] == 2
      seen.extend(batch['index'][batch['valid']].tolist())
      padded = ~batch['valid']
      assert (batch['skeleton'][padded] == 0).all() and (batch['index'][padded] == -1).all()
      assert (batch['lengths'][padded] == 0).all()
  assert sorted(seen) == list(range(len(source)))


def test_eval_is_the_deterministic_transform():
  source = fakes.ntu_source(6)
  cfg = data.default_data_config('ntu60_xsub')
  batches = list(data.make_eval_iterator(cfg, 4, source=source, process_index=0, process_count=1))
  assert [b['index'].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, -1, -1]]
  again = list(data.make_eval_iterator(cfg, 4, source=source, process_index=0, process_count=1))
  _assert_batches_equal(batches, again)
  with pytest.raises(StopIteration):
    iterator = data.make_eval_iterator(cfg, 4, source=source, process_index=0, process_count=1)
    for _ in range(3):
      next(iterator)


def test_eval_state_restore():
  source = fakes.penn_source(13)
  cfg = data.default_data_config('penn_action')
  reference = list(data.make_eval_iterator(cfg, 4, source=source, process_index=0, process_count=1))
  iterator = data.make_eval_iterator(cfg, 4, source=source, process_index=0, process_count=1)
  next(iterator)
  state = iterator.get_state()
  restored = data.make_eval_iterator(cfg, 4, source=source, process_index=0, process_count=1)
  restored.set_state(state)
  _assert_batches_equal(list(restored), reference[1:])


def test_holdout_is_stratified_and_disjoint():
  source = fakes.nucla_source(40)
  cfg = _config('n_ucla', holdout_fraction=0.25, **{'nucla.repeat': 1})
  train = _train(cfg, source, batch=2)
  train_indices = set(np.concatenate([b['index'] for b in _take(train, train.batches_per_epoch)])
                      .tolist())
  holdout = data.make_eval_iterator(cfg, 4, split='holdout', source=source, process_index=0,
                                    process_count=1)
  held = [i for b in holdout for i in b['index'][b['valid']].tolist()]
  assert len(held) == 10 and not train_indices & set(held)
  assert sorted(source[i]['label'] for i in held) == list(range(10))
  assert train_indices | set(held) == set(range(40))


def _label_subset(labels, fraction, seed):
  return data.pipeline.stratified_subset(labels, fraction, seed, data.pipeline._LABEL_SUBSET, min_per_class=1)


def test_label_fraction_is_class_balanced_and_excludes_the_holdout():
  source = fakes.nucla_source(100)  # 10 clips of each of the 10 classes
  labels = np.array([s['label'] for s in source])
  kept = _label_subset(labels, 0.2, seed=3)
  assert np.bincount(labels[kept], minlength=10).tolist() == [2] * 10
  np.testing.assert_array_equal(kept, _label_subset(labels, 0.2, seed=3))
  assert not np.array_equal(kept, _label_subset(labels, 0.2, seed=4))
  # At least one clip per class, however small the fraction.
  assert np.bincount(labels[_label_subset(labels, 0.01, 0)]).tolist() == [1] * 10

  cfg = _config('n_ucla', holdout_fraction=0.2, label_fraction=0.25, **{'nucla.repeat': 1})
  train = _train(cfg, source, batch=2, num_workers=0)
  train_indices = np.concatenate([b['index'] for b in _take(train, train.batches_per_epoch)])
  holdout = data.make_eval_iterator(cfg, 4, split='holdout', source=source, process_index=0, process_count=1)
  held = {i for b in holdout for i in b['index'][b['valid']].tolist()}
  assert len(held) == 20 and not set(train_indices.tolist()) & held
  assert len(train_indices) == len(set(train_indices.tolist())) == 20  # round(0.25 * 8) of each class
  assert np.bincount(labels[train_indices], minlength=10).tolist() == [2] * 10
  # The test split is never reduced.
  test = data.make_eval_iterator(cfg, 4, split='test', source=source, process_index=0, process_count=1)
  assert sum(int(b['valid'].sum()) for b in test) == 100
  assert [data.num_examples(cfg, split, source=source) for split in ('train', 'holdout', 'test')] == [20, 20, 100]


@pytest.mark.parametrize('fraction', [0.0, 1.5])
def test_label_fraction_validation(fraction):
  with pytest.raises(ValueError, match='label_fraction'):
    _train(_config('n_ucla', label_fraction=fraction), fakes.nucla_source(10))


# --- Penn padding ----------------------------------------------------------------------------------

def test_penn_padding_options():
  source = fakes.penn_source(12, min_frames=3, max_frames=40)
  lengths = np.array([len(s['skeleton']) for s in source])
  fixed = _config('penn_action', **{'penn.padding': 'fixed'}, max_frames=50)
  assert next(_train(fixed, source))['skeleton'].shape[1] == 50
  rounded = _config('penn_action', **{'penn.pad_multiple': 16})
  assert next(_train(rounded, source))['skeleton'].shape[1] % 16 == 0
  too_short = _config('penn_action', **{'penn.padding': 'fixed'}, max_frames=int(lengths.min()))
  with pytest.raises(data.BadExampleError, match='exceed penn.padding=fixed'):
    for _ in range(3):
      next(_train(too_short, source))


def test_penn_bucketing_reduces_padding():
  source = fakes.penn_source(64, min_frames=3, max_frames=200)
  def padded_frames(cfg):
    iterator = _train(cfg, source, batch=4)
    return sum(b['skeleton'].shape[1] * 4 - b['lengths'].sum()
               for b in _take(iterator, iterator.batches_per_epoch))
  plain = padded_frames(data.default_data_config('penn_action'))
  bucketed = padded_frames(_config('penn_action', **{'penn.bucket_by_length': True,
                                                     'penn.bucket_window': 16}))
  assert bucketed < plain / 2


# --- Bad data inside a pipeline --------------------------------------------------------------------

def test_bad_example_in_pipeline_names_it():
  source = fakes.ntu_source(8)
  source[5] = dict(source[5], skeleton=np.full((10, 2, 25, 3), np.nan, np.float32))
  iterator = data.make_eval_iterator(data.default_data_config('ntu60_xsub'), 4, source=source,
                                     process_index=0, process_count=1)
  # Raised by the batch that holds it at the latest (batches are handed over about 128 clips at a time).
  with pytest.raises(data.BadExampleError, match=r"ntu60_xsub/test example 5 \('S001C001P001R001A005'"):
    for _ in range(2):
      next(iterator)


def test_nonfinite_values_counted_in_batch():
  source = fakes.ntu_source(4)
  source[2]['skeleton'][0, 0, 0, 0] = np.nan
  cfg = _config('ntu60_xsub', bad_values='zero')
  batch = next(data.make_eval_iterator(cfg, 4, source=source, process_index=0, process_count=1))
  assert batch['nonfinite_count'].tolist() == [0, 0, 1, 0]
  assert np.isfinite(batch['skeleton']).all()


# --- Opening TFDS sources --------------------------------------------------------------------------

def test_source_is_opened_through_data_builders(monkeypatch):
  calls = []
  def load_data_source(name, split, data_dir, config=None):
    calls.append((name, split, data_dir, config))
    return fakes.ntu_source(8)
  monkeypatch.setitem(sys.modules, 'data_builders',
                      types.SimpleNamespace(load_data_source=load_data_source))
  cfg = data.default_data_config('ntu60_xview')
  cfg.data_dir = 'some/dir'
  next(data.make_train_iterator(cfg, 4, process_index=0, process_count=1))
  next(data.make_eval_iterator(cfg, 4, process_index=0, process_count=1))
  assert calls == [('ntu_rgbd60', 'train', 'some/dir', 'xview'),
                   ('ntu_rgbd60', 'test', 'some/dir', 'xview')]


# --- Golden parity through the whole evaluation pipeline -------------------------------------------

def test_ntu_eval_pipeline_matches_golden(golden_dir):
  golden = np.load(golden_dir / 'transforms' / 'ntu60_test_transform.npz')
  # Stored clips are unpadded: keep the valid frames of the zero-padded rows.
  source = [{'skeleton': row.reshape(300, 2, 25, 3)[:length], 'label': i}
            for i, (row, length) in enumerate(zip(golden['rows'], golden['valid_lengths']))]
  batch = next(data.make_eval_iterator(data.default_data_config('ntu60_xsub'), 4, source=source,
                                       process_index=0, process_count=1))
  np.testing.assert_allclose(batch['skeleton'], golden['selected_person_TVC'], rtol=0, atol=1e-5)


def test_nucla_eval_pipeline_matches_golden(golden_dir):
  golden = np.load(golden_dir / 'transforms' / 'n_ucla_test_transform.npz')
  source = [{'skeleton': golden[f'raw_{i}'].astype(np.float32), 'label': i} for i in range(3)]
  batch = next(data.make_eval_iterator(data.default_data_config('n_ucla'), 4, source=source,
                                       process_index=0, process_count=1))
  assert batch['valid'].tolist() == [True, True, True, False]
  np.testing.assert_allclose(batch['skeleton'][:3], golden['output_TVC'], rtol=0, atol=1e-5)


# --- Reuse and scans -------------------------------------------------------------------------------

class _CountingSource:
  """A map-style source that counts how often each example is read."""

  def __init__(self, examples):
    self.examples = examples
    self.reads = 0

  def __len__(self):
    return len(self.examples)

  def __getitem__(self, index):
    self.reads += 1
    return self.examples[index]


@pytest.mark.parametrize('threads', [0, 1])
def test_eval_reset_repeats_the_pass_without_a_rebuild(threads):
  source = fakes.ntu_source(10)
  cfg = _config('ntu60_xsub', num_threads=threads)
  iterator = data.make_eval_iterator(cfg, 4, source=source, process_index=0, process_count=1)
  first = list(iterator)
  running = iterator._iterator  # pylint: disable=protected-access
  iterator.reset()
  assert iterator.step == 0 and iterator._iterator is running  # pylint: disable=protected-access
  _assert_batches_equal(list(iterator), first)
  iterator.reset()
  next(iterator)  # a partial pass: the next reset starts over from the first batch
  iterator.reset()
  _assert_batches_equal(list(iterator), first)
  with pytest.raises(TypeError, match='infinite'):
    _train(cfg, source).reset()


def test_holdout_labels_are_scanned_once():
  source = _CountingSource(fakes.nucla_source(40))
  # No background thread, whose read-ahead into the next pass would make the count timing-dependent.
  cfg = _config('n_ucla', holdout_fraction=0.25, num_threads=0, **{'nucla.repeat': 1})
  holdout = data.make_eval_iterator(cfg, 4, split='holdout', source=source, process_index=0, process_count=1)
  assert source.reads == 40
  _train(cfg, source, batch=2)
  data.make_eval_iterator(cfg, 4, split='holdout', source=source, process_index=0, process_count=1)
  assert data.num_examples(cfg, 'holdout', source=source) == 10
  assert source.reads == 40  # later pipelines on the same source reuse the labels
  list(holdout)
  assert source.reads == 50  # the hold-out pass reads its 10 examples, nothing else


def test_automatic_parallelism_scales_with_the_host(monkeypatch):
  cfg = data.default_data_config('ntu60_xsub')
  penn = data.default_data_config('penn_action')
  for cores, workers in [(1, 0), (2, 2), (4, 4), (8, 8), (64, 8)]:
    monkeypatch.setattr(data.config, 'available_cores', lambda cores=cores: cores)
    assert data.config.input_parallelism(cfg) == (workers, 1, 2)
    assert data.config.input_parallelism(cfg, num_examples=100_000) == (workers, 1, 2)
    assert data.config.input_parallelism(cfg, num_examples=500) == (0, 1, 2)  # start-up would not pay off
    assert data.config.input_parallelism(cfg, num_examples=40_000, batch_size=4) == (workers, 1, 2)  # stacked
    # Penn batches are padded per batch and cannot be stacked: small ones are not worth a hand-off each.
    assert data.config.input_parallelism(penn, num_examples=40_000, batch_size=4) == (0, 1, 2)
    assert data.config.input_parallelism(penn, num_examples=40_000, batch_size=16) == (workers, 1, 2)
  assert data.config.handoff_batches(4) == 32 and data.config.handoff_batches(256) == 1
  assert data.config.available_cores() >= 1
  assert data.config.input_parallelism(_config('ntu60_xsub', num_workers=3, num_threads=0)) == (3, 0, 0)
  assert data.config.input_parallelism(cfg, num_workers=0)[0] == 0
  with pytest.raises(ValueError, match='num_threads=-2'):
    _train(_config('ntu60_xsub', num_threads=-2), fakes.ntu_source(4))
