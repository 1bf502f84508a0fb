"""One stored example → one model input: per-dataset processing and bad-input handling."""

import numpy as np
import pytest

from cascadeformer_jax.data import config as config_lib
from cascadeformer_jax.data import examples
from cascadeformer_jax.data import random_streams
from cascadeformer_jax.data import transforms
from tests.data import fakes


def _process(dataset, raw, train=False, rng_seed=0, **overrides):
  cfg = config_lib.default_data_config(dataset)
  for key, value in overrides.items():
    target = cfg
    *path, leaf = key.split('.')
    for part in path:
      target = target[part]
    target[leaf] = value
  key = int(random_streams.example_keys((rng_seed,), np.array([3]))[0])
  return examples.process_example(raw, cfg.to_dict(), config_lib.joint_parents(cfg), key, train,
                                  f'{dataset}/x example 3')


def test_ntu_output_and_single_person_slot():
  raw = fakes.ntu_example(np.random.default_rng(0), 40, 7)
  out = _process('ntu60_xsub', raw)
  assert out['skeleton'].shape == (64, 25, 3) and out['skeleton'].dtype == np.float32
  assert out['label'] == 7 and out['length'] == 64 and out['nonfinite_count'] == 0
  expected = transforms.resize_time_linear(raw['skeleton'][1:39, 0], 64)  # bias int(0.05·40/2) = 1
  np.testing.assert_allclose(out['skeleton'], expected, atol=1e-6)


def test_ntu_uses_leading_valid_frames_only():
  raw = fakes.ntu_example(np.random.default_rng(0), 30, 0)
  padded = dict(raw, skeleton=np.concatenate([raw['skeleton'], np.zeros((20, 2, 25, 3), np.float32)]))
  np.testing.assert_array_equal(_process('ntu60_xview', padded)['skeleton'],
                                _process('ntu60_xview', raw)['skeleton'])


def test_ntu_training_rotation_preserves_bone_lengths():
  raw = fakes.ntu_example(np.random.default_rng(0), 80, 3)
  fixed_window = {'ntu.crop_interval': (1.0, 1.0), 'ntu.test_crop_fraction': 1.0}
  plain = _process('ntu60_xsub', raw, train=False, **fixed_window)['skeleton']
  rotated = _process('ntu60_xsub', raw, train=True, **fixed_window)['skeleton']
  assert not np.allclose(plain, rotated, atol=1e-3)
  bones = lambda y: np.linalg.norm(y - y[:, transforms.NTU_PARENTS], axis=-1)
  np.testing.assert_allclose(bones(rotated), bones(plain), atol=1e-5)


def test_ntu_training_draws_depend_on_rng_only():
  raw = fakes.ntu_example(np.random.default_rng(0), 150, 3, two_people=True)
  a = _process('ntu60_xsub', raw, train=True, rng_seed=1)['skeleton']
  b = _process('ntu60_xsub', raw, train=True, rng_seed=1)['skeleton']
  c = _process('ntu60_xsub', raw, train=True, rng_seed=2)['skeleton']
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)
  np.testing.assert_array_equal(_process('ntu60_xsub', raw, train=True, augment=False)['skeleton'],
                                _process('ntu60_xsub', raw, train=False)['skeleton'])


def test_nucla_training_output_ranges():
  raw = fakes.nucla_source(1, min_frames=30, max_frames=30)[0]
  for seed in range(10):
    out = _process('n_ucla', raw, train=True, rng_seed=seed, **{'nucla.drop_prob': 0.5})
    x = out['skeleton']
    assert x.shape == (64, 20, 3) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= -1 and x.max() <= 1


def test_nucla_length_one_training_clip_is_finite():
  raw = {'skeleton': np.zeros((1, 20, 3), np.float32), 'label': 1,
         'sample_name': b'a02_s09_e04_v03'}
  for train in (False, True):
    out = _process('n_ucla', raw, train=train)
    assert np.isfinite(out['skeleton']).all() and (out['skeleton'] == 0).all()


def test_penn_occluded_joints_and_normalisation():
  raw = fakes.penn_source(1, min_frames=5, max_frames=5)[0]
  out = _process('penn_action', raw)
  assert out['skeleton'].shape == (5, 13, 2) and out['length'] == 5
  hidden = ~raw['visibility']
  assert (out['skeleton'][hidden] == 0).all()
  np.testing.assert_array_equal(out['skeleton'][~hidden], raw['skeleton'][~hidden])
  normalised = _process('penn_action', raw, **{'penn.normalisation': 'image'})['skeleton']
  assert (normalised[hidden] == 0).all()
  assert np.abs(normalised).max() <= 1


def test_penn_nan_at_occluded_joint_is_ignored():
  raw = fakes.penn_source(1, min_frames=4, max_frames=4)[0]
  raw['visibility'][2, 5] = False
  raw['skeleton'][2, 5] = np.nan
  out = _process('penn_action', raw)
  assert np.isfinite(out['skeleton']).all() and out['nonfinite_count'] == 0


def test_representation_switch_changes_channels():
  raw = fakes.ntu_example(np.random.default_rng(0), 40, 7)
  assert _process('ntu60_xsub', raw, representation='joint_bone')['skeleton'].shape == (64, 25, 6)
  penn = fakes.penn_source(1, min_frames=6, max_frames=6)[0]
  motion = _process('penn_action', penn, representation='motion')['skeleton']
  assert motion.shape == (6, 13, 2) and (motion[-1] == 0).all()


# --- Bad input ------------------------------------------------------------------------------------

def _ntu(**changes):
  raw = fakes.ntu_example(np.random.default_rng(0), 20, 5, name='S001C001P001R001A006')
  raw.update(changes)
  return raw


@pytest.mark.parametrize('dataset,raw,message', [
    ('ntu60_xsub', _ntu(skeleton=np.zeros((10, 25, 3), np.float32)),
     r"'skeleton' has shape \(10, 25, 3\), expected \(T, 2, 25, 3\)"),
    ('ntu60_xsub', _ntu(skeleton=np.zeros((0, 2, 25, 3), np.float32)), 'empty clip'),
    ('ntu60_xsub', _ntu(skeleton=np.zeros((12, 2, 25, 3), np.float32)), 'no valid frame'),
    ('ntu60_xsub', _ntu(label=60), r"'label' 60 is outside \[0, 60\)"),
    ('ntu60_xsub', _ntu(label=np.array([1, 2])), "'label' must be an integer scalar"),
    ('n_ucla', {'skeleton': np.zeros((5, 25, 3), np.float32), 'label': 0, 'sample_name': b'a01'},
     r'expected \(T, 20, 3\)'),
    ('n_ucla', {'skeleton': np.zeros((0, 20, 3), np.float32), 'label': 0, 'sample_name': b'a01'},
     'empty clip'),
    ('n_ucla', {'label': 0, 'sample_name': b'a01'}, "missing key 'skeleton'"),
    ('penn_action', {'skeleton': np.zeros((3, 13, 2), np.float32), 'label': 0, 'video_id': b'0007'},
     "missing key 'visibility'"),
    ('penn_action', {'skeleton': np.zeros((3, 13, 2), np.float32), 'visibility': np.ones((2, 13)),
                     'label': 0, 'video_id': b'0007'}, "'visibility' has shape"),
])
def test_bad_examples_raise_naming_the_example(dataset, raw, message):
  with pytest.raises(examples.BadExampleError, match=message) as error:
    _process(dataset, raw)
  assert f'{dataset}/x example 3' in str(error.value)


def test_error_names_the_sample():
  with pytest.raises(examples.BadExampleError, match=r"example 3 \('S001C001P001R001A006'\)"):
    _process('ntu60_xsub', _ntu(label=99))


@pytest.mark.parametrize('bad_value', [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize('dataset', ['ntu60_xsub', 'n_ucla', 'penn_action', 'synthetic_actions'])
def test_nonfinite_coordinates_raise_or_are_counted(dataset, bad_value):
  if dataset == 'n_ucla':
    raw = fakes.nucla_source(1, min_frames=10, max_frames=10)[0]
  elif dataset == 'penn_action':
    raw = fakes.penn_source(1, min_frames=10, max_frames=10)[0]
    raw['visibility'][:] = True
  else:
    raw = fakes.ntu_example(np.random.default_rng(0), 30, 3)
  raw['skeleton'].reshape(-1)[[4, 9]] = bad_value
  with pytest.raises(examples.BadExampleError, match='2 NaN/inf coordinates'):
    _process(dataset, raw)
  for train in (False, True):
    out = _process(dataset, raw, train=train, bad_values='zero')
    assert out['nonfinite_count'] == 2
    assert np.isfinite(out['skeleton']).all()


@pytest.mark.parametrize('dataset,train', [('ntu60_xsub', True), ('ntu60_xsub', False), ('n_ucla', True),
                                           ('n_ucla', False), ('penn_action', False)])
def test_batched_processing_equals_one_by_one(dataset, train):
  source = {'ntu60_xsub': lambda: fakes.ntu_source(6), 'n_ucla': lambda: fakes.nucla_source(6),
            'penn_action': lambda: fakes.penn_source(6)}[dataset]()
  cfg = config_lib.default_data_config(dataset)
  if dataset == 'n_ucla':
    cfg.nucla.drop_prob = 0.7  # exercise the axis and joint drops
  settings, parents = cfg.to_dict(), config_lib.joint_parents(cfg)
  keys = random_streams.example_keys((5,), np.arange(len(source)))
  wheres = [f'x example {i}' for i in range(len(source))]
  batch = examples.process_examples(source, settings, parents, keys, train, wheres)
  for i, raw in enumerate(source):
    one = examples.process_example(raw, settings, parents, int(keys[i]), train, wheres[i])
    np.testing.assert_array_equal(batch['skeleton'][i], one['skeleton'])
    assert (batch['label'][i], batch['length'][i]) == (one['label'], one['length'])


def test_ntu_batched_values_are_the_per_clip_transforms():
  """Slot selection before the resize (single-actor clips) and the batched rotation change no bit."""
  source = fakes.ntu_source(9)
  cfg = config_lib.default_data_config('ntu60_xsub')
  settings, parents = cfg.to_dict(), config_lib.joint_parents(cfg)
  keys = random_streams.example_keys((1,), np.arange(9))
  batch = examples.process_examples(source, settings, parents, keys, True, ['x'] * 9)
  u = random_streams.ExampleStreams(keys).uniform(transforms.AUGMENTATION, transforms.NTU_DRAWS)
  for i, raw in enumerate(source):
    skeleton = raw['skeleton']
    valid = transforms.ntu_valid_length(skeleton)
    (start,), (length,) = transforms.ntu_train_windows(np.array([valid]), u[i:i + 1, :2], (0.5, 1.0), 64)
    x = transforms.ntu_crop_resize(skeleton[:valid], start, length, 64)
    x = transforms.rotate_points(x, transforms.rotation_matrix_xyz((2 * u[i, 2:5] - 1) * 0.3))
    np.testing.assert_array_equal(batch['skeleton'][i], transforms.select_person(x)[0])


def test_nucla_batched_values_are_the_per_clip_transforms():
  """The channels-first batched normalisation, frame gather and drops change no bit of the per-clip transforms."""
  source = fakes.nucla_source(7)
  cfg = config_lib.default_data_config('n_ucla')
  cfg.nucla.drop_prob = 0.7
  settings, parents = cfg.to_dict(), config_lib.joint_parents(cfg)
  keys = random_streams.example_keys((2,), np.arange(7))
  batch = examples.process_examples(source, settings, parents, keys, True, ['x'] * 7)
  streams = random_streams.ExampleStreams(keys)
  u = streams.uniform(transforms.AUGMENTATION, 8 + 20 + 64)
  views = transforms.nucla_views(u[:, :3], 60, (0.5, 1.5)).astype(np.float32)
  lengths = np.array([len(raw['skeleton']) for raw in source])
  selected = transforms.draw_nucla_train_frame_indices(lengths, streams, 64)
  axes, joints = transforms.nucla_drops(u[:, 3:], 0.7, 64, 20, 3)
  assert (axes >= 0).any() and joints.any()
  for i, raw in enumerate(source):
    x = (transforms.nucla_centre(raw['skeleton']).reshape(-1, 3) @ views[i]).reshape(-1, 20, 3)
    low, high = transforms.axis_range(x)
    x = transforms.minmax_to_unit_range(x[selected[i]], low, high)
    if axes[i] >= 0:
      x[..., axes[i]] = 0
    x[joints[i]] = 0
    np.testing.assert_array_equal(batch['skeleton'][i], x[:, transforms.NUCLA_PARTITION_ORDER])
