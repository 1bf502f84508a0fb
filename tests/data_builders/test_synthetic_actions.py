"""synthetic_actions: tiny build, layout, determinism, and the baseline code."""

import numpy as np
import pytest

from cascadeformer_jax.data import layouts
from data_builders.synthetic_actions import baseline
from data_builders.synthetic_actions import builder as synthetic_builder
from data_builders.synthetic_actions import generator
from tests.data_builders import helpers

HANDSHAKE = generator.CLASS_NAMES.index('handshake')


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  return helpers.build('synthetic_actions', tmp_path_factory.mktemp('synthetic'), config='tiny')


def test_tiny_split_sizes_subjects_and_classes(built):
  assert {name: split.num_examples for name, split in built.info.splits.items()} == {'train': 30, 'test': 10}
  train, test = helpers.read_split(built, 'train'), helpers.read_split(built, 'test')
  assert {e['subject'] for e in train} == {1, 2, 3} and {e['subject'] for e in test} == {4}
  for examples in (train, test):
    assert sorted(e['label'] for e in examples) == sorted(list(range(10)) * (len(examples) // 10))
  helpers.assert_split_disjoint(built, 'sample_name')


def test_layout_dtypes_and_values(built):
  for example in helpers.read_split(built, 'train') + helpers.read_split(built, 'test'):
    skeleton = example['skeleton']
    assert skeleton.dtype == np.float32 and skeleton.shape[1:] == (2, 25, 3)
    assert 40 <= skeleton.shape[0] <= 120
    assert np.all(np.isfinite(skeleton))
    assert example['view'] in (1, 2, 3)
    two_person = example['label'] == HANDSHAKE
    assert example['num_bodies'] == (2 if two_person else 1)
    assert skeleton[:, 1].any() == two_person  # slot 1 zeros for one-person classes
    np.testing.assert_array_equal(skeleton[0, 0, 1], 0)  # centred on actor 1's spine_mid of the first frame
    assert np.abs(skeleton).max() < 4.0  # metres around the body
    name = example['sample_name'].decode()
    assert name == f'P{example["subject"]:03d}C{example["view"]:03d}R001A{example["label"] + 1:03d}'


def test_body_is_a_rigid_skeleton():
  """Bone lengths stay constant over time up to the joint noise (missing joints excluded)."""
  for label in range(len(generator.CLASS_NAMES)):
    skeleton, num_bodies, _ = generator.generate_clip(0, generator.ClipSpec(subject=2, label=label, repetition=1))
    for person in range(num_bodies):
      points = skeleton[:, person]
      for child, parent in layouts.LAYOUTS['ntu25'].edges:
        tracked = points[:, child].any(axis=-1) & points[:, parent].any(axis=-1)
        lengths = np.linalg.norm(points[tracked, child] - points[tracked, parent], axis=-1)
        assert lengths.std() < 0.05, (generator.CLASS_NAMES[label], child, parent)


def test_deterministic_and_seed_dependent():
  spec = generator.ClipSpec(subject=3, label=5, repetition=2)
  first, bodies, view = generator.generate_clip(7, spec)
  second, bodies2, view2 = generator.generate_clip(7, spec)
  np.testing.assert_array_equal(first, second)
  assert (bodies, view) == (bodies2, view2)
  other, _, _ = generator.generate_clip(8, spec)
  assert other.shape != first.shape or not np.array_equal(other, first)


def test_tiny_config_is_a_subset_of_the_default(built):
  """A clip depends only on (seed, subject, class, repetition): the tiny clips are those of the full dataset."""
  example = helpers.read_split(built, 'test')[3]
  spec = generator.ClipSpec(subject=int(example['subject']), label=int(example['label']), repetition=1)
  skeleton, _, view = generator.generate_clip(0, spec)
  np.testing.assert_array_equal(example['skeleton'], skeleton)
  assert example['view'] == view


def test_rebuild_is_identical(built, tmp_path):
  again = helpers.build('synthetic_actions', tmp_path, config='tiny')
  for split in ('train', 'test'):
    for a, b in zip(helpers.read_split(built, split), helpers.read_split(again, split), strict=True):
      for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_custom_config_and_metadata(tmp_path):
  config = synthetic_builder.SyntheticActionsConfig(name='two_subjects', num_subjects=2, test_subject_every=2,
                                                    clips_per_class=1, seed=3, min_frames=20, max_frames=30)
  builder = helpers.build('synthetic_actions', tmp_path, config=config)
  assert builder.info.splits['train'].num_examples == 10 and builder.info.splits['test'].num_examples == 10
  assert all(20 <= e['skeleton'].shape[0] <= 30 for e in helpers.read_split(builder, 'train'))
  metadata = builder.info.metadata
  assert metadata['class_names'] == list(generator.CLASS_NAMES)
  assert metadata['two_person_classes'] == [HANDSHAKE]
  assert metadata['generator_config']['seed'] == 3 and metadata['test_subjects'] == [2]
  assert len(metadata['edges']) == 24 and metadata['joint_names'][20] == 'spine_shoulder'


def test_bad_config(tmp_path):
  config = synthetic_builder.SyntheticActionsConfig(name='bad', min_frames=50, max_frames=10)
  with pytest.raises(ValueError, match='min_frames <= max_frames'):
    helpers.build('synthetic_actions', tmp_path, config=config)
  with pytest.raises(ValueError, match='leaves an empty split'):
    generator.subject_split(num_subjects=3, test_subject_every=4)


def test_logistic_regression_fits_a_separable_problem():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(3, 5)) * 4
  y = np.repeat(np.arange(3), 40)
  x = centres[y] + rng.normal(size=(120, 5))
  weights, bias = baseline.train_logistic_regression((x - x.mean(0)) / x.std(0), y, 3, l2=1e-3, steps=300)
  assert np.mean(((x - x.mean(0)) / x.std(0) @ weights + bias).argmax(1) == y) > 0.95


def test_baseline_features_and_evaluation_run_on_small_data():
  train = baseline.generate_split(0, (1, 2, 3), clips_per_class=1)
  test = baseline.generate_split(0, (4,), clips_per_class=1)
  assert baseline.mean_pose_features(train[0][0]).shape == (150,)
  assert baseline.motion_features(train[0][0]).shape == (600,)
  accuracy, l2 = baseline.evaluate(baseline.motion_features, train, test, l2_grid=(1e-2,))
  assert 0.0 <= accuracy <= 1.0 and l2 == 1e-2
