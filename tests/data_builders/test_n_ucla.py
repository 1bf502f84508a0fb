"""n_ucla builder: fixture build, values, metadata and bad input."""

import json
import pathlib

import numpy as np
import pytest

import data_builders
from data_builders import n_ucla
from tests.data_builders import fixtures
from tests.data_builders import helpers


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  manual_dir = tmp_path_factory.mktemp('n_ucla_manual')
  fixtures.write_n_ucla(manual_dir)
  return helpers.build('n_ucla', tmp_path_factory.mktemp('n_ucla_data'), manual_dir)


def test_split_sizes_and_membership(built):
  assert {name: split.num_examples for name, split in built.info.splits.items()} == {'train': 2, 'test': 2}
  train = helpers.by_name(helpers.read_split(built, 'train'), 'sample_name')
  test = helpers.by_name(helpers.read_split(built, 'test'), 'sample_name')
  assert set(train) == {'a01_s01_e00_v01', 'a12_s10_e04_v02'}
  assert set(test) == {'a08_s02_e01_v03', 'a02_s09_e04_v03'}
  helpers.assert_split_disjoint(built, 'sample_name')


def test_shapes_dtypes_ids_labels(built):
  examples = helpers.by_name(helpers.read_split(built, 'train') + helpers.read_split(built, 'test'), 'sample_name')
  expected_labels = {'a01_s01_e00_v01': 0, 'a12_s10_e04_v02': 9, 'a08_s02_e01_v03': 6, 'a02_s09_e04_v03': 1}
  for name, (frames, _) in fixtures.N_UCLA_FIXTURES.items():
    example = examples[name]
    assert example['skeleton'].shape == (frames, 20, 3) and example['skeleton'].dtype == np.float32
    assert example['label'] == expected_labels[name]
    ids = n_ucla.parse_sample_name(name)
    assert (example['view'], example['subject'], example['episode']) == (ids['view'], ids['subject'], ids['episode'])
    np.testing.assert_array_equal(example['skeleton'], fixtures.n_ucla_skeleton(frames).astype(np.float32))


def test_hand_computed_values(built):
  example = helpers.by_name(helpers.read_split(built, 'test'), 'sample_name')['a02_s09_e04_v03']
  np.testing.assert_allclose(example['skeleton'][0, 0], [-0.25, 0.5, 2.5], atol=1e-6)
  np.testing.assert_allclose(example['skeleton'][0, 1], [-0.21875, 0.4375, 2.515625], atol=1e-6)
  assert (example['view'], example['subject'], example['episode']) == (3, 9, 4)


def test_metadata(built):
  metadata = built.info.metadata
  assert metadata['class_names'] == list(n_ucla.CLASS_NAMES)
  assert metadata['action_ids'] == ['a01', 'a02', 'a03', 'a04', 'a05', 'a06', 'a08', 'a09', 'a11', 'a12']
  assert metadata['joint_names'][:2] == ['hip_center', 'spine'] and len(metadata['joint_names']) == 20
  # The N-UCLA feeders' bone pairs (1-based) without the root's (3, 3): the edges that version 1.0.0 stores.
  feeder_pairs = [(1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11),
                  (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)]
  assert metadata['edges'] == [[child - 1, parent - 1] for child, parent in feeder_pairs]
  data_root = pathlib.Path(built.data_dir).parents[1]
  assert len(data_builders.load_data_source('n_ucla', 'train', data_root)) == 2


def _build_expecting(tmp_path, mutate, match):
  manual_dir = tmp_path / 'manual'
  fixtures.write_n_ucla(manual_dir)
  mutate(manual_dir / 'all_sqe')
  with pytest.raises(data_builders.DatasetFormatError, match=match):
    helpers.build('n_ucla', tmp_path / 'data', manual_dir)
  helpers.assert_nothing_built(tmp_path / 'data', 'n_ucla')


def _write_json(folder, name, content):
  (folder / f'{name}.json').write_text(json.dumps(content))


def test_unknown_action_rejected(tmp_path):
  content = {'skeletons': fixtures.n_ucla_skeleton(2).tolist()}
  _build_expecting(tmp_path, lambda folder: _write_json(folder, 'a07_s01_e00_v01', content),
                   r'a07_s01_e00_v01\.json: action id a07 is not one of the 10')


def test_truncated_json(tmp_path):
  def truncate(folder):
    path = folder / 'a12_s10_e04_v02.json'
    path.write_text(path.read_text()[:100])
  _build_expecting(tmp_path, truncate, r'a12_s10_e04_v02\.json: not valid JSON')


@pytest.mark.parametrize('content, match', [
    ({'file_name': 'x'}, r'a01_s01_e00_v01\.json: expected a JSON object with key "skeletons"'),
    ([1, 2], r'a01_s01_e00_v01\.json: expected a JSON object'),
    ({'skeletons': [[[0, 0, 0]] * 20, [[0, 0]] * 20]}, r'a01_s01_e00_v01\.json: "skeletons" is not a \(T, 20, 3\)'),
    ({'skeletons': [[[0, 0, 0]] * 19]}, r'a01_s01_e00_v01\.json: "skeletons" should have shape \(T >= 1, 20, 3\)'),
    ({'skeletons': []}, r'a01_s01_e00_v01\.json: "skeletons" should have shape'),
    ({'skeletons': [[[0, 0, 0]] * 20], 'label': 3}, r'a01_s01_e00_v01\.json: "label" is 3 but the file name says'),
])
def test_malformed_json_content(tmp_path, content, match):
  _build_expecting(tmp_path, lambda folder: _write_json(folder, 'a01_s01_e00_v01', content), match)


def test_bad_file_name(tmp_path):
  _build_expecting(tmp_path, lambda folder: _write_json(folder, 'readme', {}),
                   r"readme\.json: sample name 'readme' does not look like aAA_sSS_eEE_vVV")


def test_wrong_folder(tmp_path):
  manual_dir = tmp_path / 'manual'
  fixtures.write_penn_action(manual_dir)
  with pytest.raises(data_builders.DatasetFormatError, match=r'no \*\.json files found: .*manual holds 1 entries'):
    helpers.build('n_ucla', tmp_path / 'data', manual_dir)
  helpers.assert_nothing_built(tmp_path / 'data', 'n_ucla')


def test_empty_all_sqe_folder(tmp_path):
  (tmp_path / 'manual' / 'all_sqe').mkdir(parents=True)
  with pytest.raises(data_builders.DatasetFormatError, match=r'all_sqe is empty'):
    helpers.build('n_ucla', tmp_path / 'data', tmp_path / 'manual')
  helpers.assert_nothing_built(tmp_path / 'data', 'n_ucla')


def test_split_without_clips(tmp_path):
  def drop_view_3(folder):
    for path in folder.glob('*_v03.json'):
      path.unlink()
  _build_expecting(tmp_path, drop_view_3, r'n_ucla: no test samples in .*all_sqe \(train 2, test 0')
