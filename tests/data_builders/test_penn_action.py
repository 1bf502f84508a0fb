"""penn_action builder: fixture build, values, metadata and bad input."""

import pathlib

import numpy as np
import pytest
import scipy.io

from cascadeformer_jax.data import layouts
import data_builders
from data_builders import penn_action
from tests.data_builders import fixtures
from tests.data_builders import helpers


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  manual_dir = tmp_path_factory.mktemp('penn_manual')
  fixtures.write_penn_action(manual_dir)
  return helpers.build('penn_action', tmp_path_factory.mktemp('penn_data'), manual_dir)


def test_split_sizes_and_names(built):
  assert {name: split.num_examples for name, split in built.info.splits.items()} == {'train': 2, 'test': 1}
  assert set(helpers.by_name(helpers.read_split(built, 'train'), 'video_id')) == {'0001', '0002'}
  assert set(helpers.by_name(helpers.read_split(built, 'test'), 'video_id')) == {'0003'}
  helpers.assert_split_disjoint(built, 'video_id')


def test_shapes_dtypes_labels(built):
  examples = helpers.by_name(helpers.read_split(built, 'train') + helpers.read_split(built, 'test'), 'video_id')
  for video_id, (action, pose, _, frames, size, _) in fixtures.PENN_FIXTURES.items():
    example = examples[video_id]
    assert example['skeleton'].shape == (frames, 13, 2) and example['skeleton'].dtype == np.float32
    assert example['visibility'].shape == (frames, 13) and example['visibility'].dtype == np.bool_
    assert example['bbox'].shape == (frames, 4) and example['bbox'].dtype == np.float32
    assert example['image_size'].dtype == np.int32 and tuple(example['image_size']) == size
    assert example['pose'] == pose.encode()
    assert example['label'] == penn_action.CLASS_NAMES.index(action)
  assert [examples[v]['label'] for v in ('0001', '0002', '0003')] == [0, 2, 14]


def test_hand_computed_values_of_0001(built):
  example = helpers.by_name(helpers.read_split(built, 'train'), 'video_id')['0001']
  np.testing.assert_array_equal(example['skeleton'][:, 0:3, 0], [[100, 110, 120], [101, 111, 121], [102, 112, 122]])
  np.testing.assert_array_equal(example['skeleton'][:, 0:3, 1], [[50, 55, 60], [52, 57, 62], [54, 59, 64]])
  expected_visibility = np.ones(13, bool)
  expected_visibility[12] = False
  np.testing.assert_array_equal(example['visibility'][1], expected_visibility)
  assert example['visibility'][0].all() and example['visibility'][2].all()
  np.testing.assert_array_equal(example['bbox'][0], [100, 50, 220, 110])
  # Occluded joints keep their raw coordinates (zeroing belongs to the input pipeline).
  np.testing.assert_array_equal(example['skeleton'][1, 12], [100 + 120 + 1, 50 + 60 + 2])


def test_metadata(built):
  data_root = pathlib.Path(built.data_dir).parents[1]  # data_root/penn_action/1.0.1
  metadata = data_builders.get_builder('penn_action', data_root).info.metadata
  assert metadata['class_names'] == list(penn_action.CLASS_NAMES)
  assert metadata['joint_names'][0] == 'head' and len(metadata['joint_names']) == 13
  assert metadata['edges'] == [list(edge) for edge in layouts.get_layout('penn13').edges]
  source = data_builders.load_data_source('penn_action', 'test', data_root)
  assert len(source) == 1


def _write_and_build_expecting(tmp_path, mutate, match):
  manual_dir = tmp_path / 'manual'
  fixtures.write_penn_action(manual_dir)
  mutate(manual_dir / 'Penn_Action' / 'labels')
  data_dir = tmp_path / 'data'
  with pytest.raises(data_builders.DatasetFormatError, match=match):
    helpers.build('penn_action', data_dir, manual_dir)
  helpers.assert_nothing_built(data_dir, 'penn_action')


def test_truncated_mat(tmp_path):
  def truncate(labels):
    data = (labels / '0002.mat').read_bytes()
    (labels / '0002.mat').write_bytes(data[:len(data) // 2])
  _write_and_build_expecting(tmp_path, truncate, r'0002\.mat: cannot read as a MATLAB \.mat file')


def test_not_a_mat_file(tmp_path):
  _write_and_build_expecting(tmp_path, lambda labels: (labels / '0003.mat').write_text('hello'),
                             r'0003\.mat: cannot read')


@pytest.mark.parametrize('change, match', [
    (lambda c: c.pop('x'), r"0001\.mat: missing field\(s\) \['x'\]"),
    (lambda c: c.update(action='bowling'), r"0001\.mat: unknown action 'bowling'"),
    (lambda c: c.update(train=np.array([[0.0]])), r"0001\.mat: field 'train' should be 1 \(train\) or -1"),
    (lambda c: c.update(y=np.zeros((2, 13))), r'0001\.mat: fields x, y, visibility disagree in shape'),
    (lambda c: c.update(x=np.zeros((3, 12))), r"0001\.mat: field 'x' should have shape \(T, 13\)"),
])
def test_malformed_fields(tmp_path, change, match):
  def rewrite(labels):
    content = fixtures.penn_mat_content('0001')
    change(content)
    scipy.io.savemat(labels / '0001.mat', content, format='5', do_compression=True)
  _write_and_build_expecting(tmp_path, rewrite, match)


def test_wrong_folder(tmp_path):
  manual_dir = tmp_path / 'manual'
  fixtures.write_n_ucla(manual_dir)  # a N-UCLA folder instead of Penn Action
  with pytest.raises(data_builders.DatasetFormatError,
                     match=r'no \*\.mat files found: .*manual holds 1 entries but no \*\.mat file \(all_sqe\)'):
    helpers.build('penn_action', tmp_path / 'data', manual_dir)
  helpers.assert_nothing_built(tmp_path / 'data', 'penn_action')


def test_empty_labels_folder(tmp_path):
  manual_dir = tmp_path / 'manual'
  (manual_dir / 'Penn_Action' / 'labels').mkdir(parents=True)
  with pytest.raises(data_builders.DatasetFormatError, match=r'Penn_Action/labels is empty'):
    helpers.build('penn_action', tmp_path / 'data', manual_dir)
  helpers.assert_nothing_built(tmp_path / 'data', 'penn_action')


def test_empty_manual_dir(tmp_path):
  (tmp_path / 'manual').mkdir()
  with pytest.raises(data_builders.DatasetFormatError, match=r'(?s)manual_dir .*manual is empty.*Penn_Action\.tar\.gz'):
    helpers.build('penn_action', tmp_path / 'data', tmp_path / 'manual')
  helpers.assert_nothing_built(tmp_path / 'data', 'penn_action')


def test_split_without_clips(tmp_path):
  _write_and_build_expecting(tmp_path, lambda labels: (labels / '0003.mat').unlink(),
                             r'penn_action: no test samples in .*labels \(train 2, test 0; split rule')
