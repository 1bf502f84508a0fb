"""ntu_rgbd120: splits of NTU120-named fixtures, missing-list exclusion, raw vs npz, packaged facts, bad input."""

import numpy as np
import pytest

import data_builders
from data_builders import ntu_rgbd120
from data_builders.ntu_rgbd60 import ctrgcn
from tests.data_builders import fixtures
from tests.data_builders import helpers

EXPECTED = fixtures.expected_ntu120_clips()
SPLIT_SIZES = {'xsub': {'train': 3, 'test': 2}, 'xset': {'train': 3, 'test': 2}}


def test_split_rules():
  assert len(ntu_rgbd120.builder.XSUB_TRAIN_PERFORMERS) == 53
  assert len(ntu_rgbd120.builder.XSUB_TEST_PERFORMERS) == 53 and 106 in ntu_rgbd120.builder.XSUB_TEST_PERFORMERS
  assert ntu_rgbd120.builder.XSET_TRAIN_SETUPS == tuple(range(2, 33, 2))
  names = sorted(EXPECTED)
  for benchmark in ('xsub', 'xset'):
    assert ctrgcn.split_order(names, ntu_rgbd120.builder.SPLIT_GROUPS[benchmark]) == fixtures.NTU120_NPZ_ORDER[
        benchmark]


def test_packaged_facts_equal_the_shared_metadata(shared_data_dir):
  shared = shared_data_dir / 'ntu120'
  missing = ntu_rgbd120.missing_samples()
  assert len(missing) == 535 and data_builders.ntu_rgbd60.missing_samples() <= missing
  assert missing == frozenset(ctrgcn.read_sample_list((shared / 'samples_with_missing_skeletons.txt').read_text()))
  descriptions = [line.split('\t', 1)[1] for line in (shared / 'class_names.txt').read_text().splitlines()]
  assert list(ntu_rgbd120.CLASS_DESCRIPTIONS) == descriptions


def test_class_names():
  names = ntu_rgbd120.CLASS_NAMES
  assert len(names) == len(set(names)) == 120
  assert names[1] == 'eat_meal_or_snack' and names[119] == 'finger_guessing_game_playing_rock_paper_scissors'
  assert names[108] == 'grab_other_persons_stuff'  # typographic apostrophe in the official name
  same_as_ntu60 = [a == b for a, b in zip(names, data_builders.ntu_rgbd60.CLASS_NAMES)]
  assert sum(same_as_ntu60) == 58  # the official NTU120 list words A009 and A049 longer


def test_one_shot_protocol():
  protocol = ntu_rgbd120.one_shot_protocol()
  assert protocol['evaluation_classes'] == list(range(1, 120, 6))
  assert protocol['evaluation_labels'] == list(range(0, 120, 6))
  assert len(protocol['auxiliary_labels']) == 100 and not set(protocol['auxiliary_labels']) & set(
      protocol['evaluation_labels'])
  assert [int(name[-3:]) for name in protocol['exemplars']] == protocol['evaluation_classes']


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('ntu120_manual')
  fixtures.write_ntu120_skeletons(path)
  for benchmark in ('xsub', 'xset'):
    fixtures.write_ntu120_npz(path, benchmark)
  return path


@pytest.fixture(scope='module')
def builds(manual_dir, tmp_path_factory):
  data_dir = tmp_path_factory.mktemp('ntu120_data')
  return {(benchmark, source): helpers.build('ntu_rgbd120', data_dir / source, manual_dir, benchmark, source=source)
          for benchmark in ('xsub', 'xset') for source in ('raw', 'npz')}


@pytest.mark.parametrize('benchmark', ['xsub', 'xset'])
@pytest.mark.parametrize('source', ['raw', 'npz'])
def test_split_membership_order_and_values(builds, benchmark, source):
  builder = builds[benchmark, source]
  assert builder.info.metadata['source'] == source
  assert {name: split.num_examples for name, split in builder.info.splits.items()} == SPLIT_SIZES[benchmark]
  for split, names in fixtures.NTU120_NPZ_ORDER[benchmark].items():
    examples = helpers.read_split(builder, split)
    assert [example['sample_name'].decode() for example in examples] == names
    for example in examples:
      name = example['sample_name'].decode()
      expected, num_bodies = EXPECTED[name]
      np.testing.assert_array_equal(example['skeleton'], expected)
      assert example['num_bodies'] == num_bodies and example['label'] == int(name[-3:]) - 1
      rule_field, ids = ntu_rgbd120.builder.SPLIT_GROUPS[benchmark][split]
      assert example[rule_field] in ids
  helpers.assert_split_disjoint(builder, 'sample_name')


@pytest.mark.parametrize('benchmark', ['xsub', 'xset'])
def test_raw_and_npz_give_identical_examples(builds, benchmark):
  for split in ('train', 'test'):
    raw = helpers.read_split(builds[benchmark, 'raw'], split)
    from_npz = helpers.read_split(builds[benchmark, 'npz'], split)
    assert len(raw) == len(from_npz) == SPLIT_SIZES[benchmark][split]
    for a, b in zip(raw, from_npz):
      assert a.keys() == b.keys()
      for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_missing_list_samples_are_excluded(builds):
  metadata = builds['xset', 'raw'].info.metadata
  assert metadata['skipped_missing_samples'] == [fixtures.NTU120_MISSING_FIXTURE]
  names = {e['sample_name'].decode() for split in ('train', 'test') for e in helpers.read_split(builds['xset', 'raw'],
                                                                                                split)}
  assert fixtures.NTU120_MISSING_FIXTURE not in names and len(names) == 5
  assert metadata['num_classes'] == 120 and metadata['class_names'][105] == 'hit_other_person_with_something'
  assert metadata['two_person_labels'] == list(range(49, 60)) + list(range(105, 120))
  assert metadata['one_shot_protocol']['exemplars'][0] == 'S001C003P008R001A001'


def test_npz_with_name_list(tmp_path):
  manual = tmp_path / 'manual'
  fixtures.write_ntu120_npz(manual, 'xsub', compressed=True)
  fixtures.write_ntu120_available_names(manual)
  builder = helpers.build('ntu_rgbd120', tmp_path / 'data', manual, 'xsub')
  assert builder.info.metadata['source'] == 'npz'
  test = helpers.read_split(builder, 'test')
  assert [e['sample_name'].decode() for e in test] == fixtures.NTU120_NPZ_ORDER['xsub']['test']


# ---------------------------------------------------------------------------------------------------------------
# Bad input: one dataset's files given to the other's builder.


def _build_expecting(tmp_path, name, manual, config, match, **kwargs):
  with pytest.raises(data_builders.DatasetFormatError, match=match):
    helpers.build(name, tmp_path / 'data', manual, config, **kwargs)
  helpers.assert_nothing_built(tmp_path / 'data', name, config)


def test_ntu120_builder_on_an_ntu60_folder(tmp_path):
  fixtures.write_ntu_skeletons(tmp_path / 'manual')
  _build_expecting(tmp_path, 'ntu_rgbd120', tmp_path / 'manual', 'xsub',
                   r'all 6 samples are NTU RGB\+D 60 samples \(setups S001-S017\); the NTU120 extension \(setups '
                   r'S018-S032, nturgbd_skeletons_s018_to_s032\.zip')


def test_ntu120_builder_on_the_extension_alone(tmp_path):
  fixtures.write_ntu120_skeletons(tmp_path / 'manual', tuple(n for n in fixtures.NTU120_FIXTURES if n[1:4] >= '018'))
  _build_expecting(tmp_path, 'ntu_rgbd120', tmp_path / 'manual', 'xset',
                   r'the NTU RGB\+D 60 part \(setups S001-S017, nturgbd_skeletons_s001_to_s017\.zip\) is missing')


def test_ntu60_builder_on_the_ntu120_extension(tmp_path):
  fixtures.write_ntu120_skeletons(tmp_path / 'manual', tuple(n for n in fixtures.NTU120_FIXTURES if n[1:4] >= '018'))
  _build_expecting(tmp_path, 'ntu_rgbd60', tmp_path / 'manual', 'xsub',
                   r'all 5 samples belong to the NTU RGB\+D 120 extension .* the NTU RGB\+D 60 samples \(setups '
                   r'S001-S017, nturgbd_skeletons_s001_to_s017\.zip\) are missing')


def test_ntu120_builder_given_ntu60_npz(tmp_path):
  manual = tmp_path / 'manual'
  fixtures.write_ntu_npz(manual, 'xsub')
  _build_expecting(tmp_path, 'ntu_rgbd120', manual, 'xsub',
                   r'found neither \.skeleton files nor NTU120_CSub\.npz .* NTU60_CS\.npz belong\(s\) to another '
                   r'dataset: build ntu_rgbd60 from them; NTU120_CSub\.npz is missing')


def test_ntu60_builder_given_ntu120_npz(tmp_path):
  manual = tmp_path / 'manual'
  fixtures.write_ntu120_npz(manual, 'xset')
  fixtures.write_ntu120_npz(manual, 'xsub')
  _build_expecting(tmp_path, 'ntu_rgbd60', manual, 'xview',
                   r'found neither \.skeleton files nor NTU60_CV\.npz .* NTU120_CSet\.npz, NTU120_CSub\.npz '
                   r'belong\(s\) to another dataset: build ntu_rgbd120 from them; NTU60_CV\.npz is missing')


def test_ntu60_npz_renamed_as_ntu120(tmp_path):
  manual = tmp_path / 'manual'
  fixtures.write_ntu_npz(manual, 'xsub').rename(manual / 'NTU120_CSub.npz')
  fixtures.write_ntu120_available_names(manual)
  _build_expecting(tmp_path, 'ntu_rgbd120', manual, 'xsub',
                   r'NTU120_CSub\.npz: y_train has 60 one-hot columns but ntu_rgbd120 has 120 classes')


def test_unknown_source():
  with pytest.raises(ValueError, match="ntu_rgbd120: unknown source 'csv'"):
    ntu_rgbd120.NtuRgbd120(config='xsub', source='csv')
