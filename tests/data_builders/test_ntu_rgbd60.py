"""ntu_rgbd60: CTR-GCN cleaning on the F1-F6 fixtures, raw vs npz builds, goldens, bad input."""

import logging
import pathlib
import shutil

import numpy as np
import pytest

import data_builders
from data_builders.ntu_rgbd60 import ctrgcn
from data_builders.ntu_rgbd60 import npz
from tests.data_builders import fixtures
from tests.data_builders import helpers

TEXTS = fixtures.ntu_fixture_texts()
EXPECTED = fixtures.expected_ntu_clips()
SPLIT_SIZES = {'xsub': {'train': 2, 'test': 3}, 'xview': {'train': 3, 'test': 2}}

# ---------------------------------------------------------------------------------------------------------------
# The cleaning functions.


def test_parse_drops_empty_frames():
  parsed = ctrgcn.parse_skeleton_text(TEXTS['S001C001P001R001A001'])
  assert parsed.num_frames == 3 and parsed.dropped_frames == [1]
  (joints, interval), = parsed.bodies.values()
  assert joints.shape == (75, 3) and joints.dtype == np.float32 and interval == [0, 1, 2]


def test_parse_accepts_crlf():
  parsed = ctrgcn.parse_skeleton_text(TEXTS['S001C001P006R001A010'])
  assert '\r\n' in TEXTS['S001C001P006R001A010'] and parsed.num_frames == 3


def test_motion_order_beats_file_order_and_spread_updates_motion():
  parsed = ctrgcn.parse_skeleton_text(TEXTS['S001C002P003R001A050'])
  assert [body_id[-3:] for body_id in parsed.bodies] == ['102', '101']  # B listed first
  kept = ctrgcn.denoise_bodies(parsed)
  assert [body_id[-3:] for body_id, _ in kept] == ['101', '102']
  np.testing.assert_allclose([motion for _, motion in kept], [0.414714, 0.228516], atol=1e-6)


def test_length_filter_and_motion_tie_keep_first_appearance():
  kept = ctrgcn.denoise_bodies(ctrgcn.parse_skeleton_text(TEXTS['S001C003P002R002A051']))
  assert [body_id[-3:] for body_id, _ in kept] == ['101', '104', '102']  # C (5 frames) dropped, A = D tie
  np.testing.assert_allclose([motion for _, motion in kept], [0.414714, 0.414714, 0.228516], atol=1e-6)


def test_spread_filter_removes_wide_body():
  parsed = ctrgcn.parse_skeleton_text(TEXTS['S002C002P007R001A052'])
  kept = ctrgcn.denoise_bodies(parsed)
  assert [body_id[-3:] for body_id, _ in kept] == ['101']


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_clip_matches_hand_derived_values(name):
  skeleton, num_bodies = ctrgcn.clip_from_skeleton_text(TEXTS[name])
  expected, expected_bodies = EXPECTED[name]
  np.testing.assert_array_equal(skeleton, expected)
  assert skeleton.dtype == np.float32 and num_bodies == expected_bodies


def test_spot_values_from_the_spec():
  f1, _ = ctrgcn.clip_from_skeleton_text(TEXTS['S001C001P001R001A001'])
  np.testing.assert_allclose(f1[0, 0, :4], [[-0.015625, -0.0625, -0.015625], [0, 0, 0], [0.015625, 0.0625, 0.015625],
                                            [0.03125, 0.125, 0.03125]], atol=1e-6)
  np.testing.assert_allclose(f1[2, 0, 24], [0.609375, 1.4375, 0.359375], atol=1e-6)
  assert not f1[:, 1].any()
  f2, _ = ctrgcn.clip_from_skeleton_text(TEXTS['S001C002P003R001A050'])
  np.testing.assert_allclose(f2[11, 0, 1], [1.375, 0, 0], atol=1e-6)
  np.testing.assert_allclose(f2[3, 1, 1], [1.046875, -0.046875, 0], atol=1e-6)
  f3, _ = ctrgcn.clip_from_skeleton_text(TEXTS['S001C003P002R002A051'])
  np.testing.assert_allclose(f3[[12, 23], 0, 1], [[1.5, 0, 0], [2.875, 0, 0]], atol=1e-6)
  np.testing.assert_allclose(f3[23, 1, 1], [1, 0, 0], atol=1e-6)
  f4, _ = ctrgcn.clip_from_skeleton_text(TEXTS['S001C001P006R001A010'])
  np.testing.assert_allclose(f4[2, 0, :2], [[0.109375, -0.0625, -0.015625], [0.125, 0, 0]], atol=1e-6)


def test_npz_row_round_trip():
  skeleton, _ = EXPECTED['S001C002P003R001A050']
  row = np.zeros((30, 150), np.float32)
  row[:12] = skeleton.reshape(12, 150)
  decoded, num_bodies = ctrgcn.clip_from_npz_row(row)
  np.testing.assert_array_equal(decoded, skeleton)
  assert num_bodies == 2


def test_split_order_is_ctrgcn_order():
  names = sorted(EXPECTED)
  for benchmark in ('xsub', 'xview'):
    assert ctrgcn.ctrgcn_split_order(names, benchmark) == fixtures.NTU_NPZ_ORDER[benchmark]


@pytest.mark.parametrize('text, match', [
    ('', r'file ends after 0 lines, expected the number of frames at line 1'),
    (TEXTS['S001C001P001R001A001'][:600], r'file ends after \d+ lines inside the joints of body 0 of frame 0'),
    ('2\n1\n', r'expected the info line of body 0 of frame 0 .*truncated'),
    ('1\nx\n', r"line 2: expected the number of bodies of frame 0 \(an integer\), got 'x'"),
    (TEXTS['S001C001P001R001A001'].replace('25\n', '24\n', 1), r'line 4: expected 25 joints, got 24'),
    (TEXTS['S001C001P001R001A001'].replace('0.015625 0.0625 3.015625', '0.015625 abc 3.015625', 1),
     r'line 6: expected a joint line'),
    (TEXTS['S001C001P001R001A001'].replace('0.015625 0.0625 3.015625', '0.015625 nan 3.015625', 1),
     r'line 6: non-finite joint coordinate'),
    ('2\n0\n0\n', r'all 2 frames are empty'),
])
def test_malformed_text_is_reported_with_its_line(text, match):
  with pytest.raises(ctrgcn.SkeletonFormatError, match=match):
    ctrgcn.clip_from_skeleton_text(text)


def test_only_short_bodies_is_an_error():
  frames = [[('A', fixtures.tall()), ('B', fixtures.tall(1.0))] for _ in range(5)]
  with pytest.raises(ctrgcn.SkeletonFormatError, match='none is tracked for more than 11 frames'):
    ctrgcn.clip_from_skeleton_text(fixtures.skeleton_text(frames))


def test_packaged_missing_list():
  missing = data_builders.ntu_rgbd60.missing_samples()
  assert len(missing) == 302 and fixtures.NTU_MISSING_FIXTURE in missing
  assert 'S017C003P020R001A059' in missing


def test_packaged_missing_list_equals_the_shared_metadata(shared_data_dir):
  shared = (shared_data_dir / 'ntu60' / 'samples_with_missing_skeletons.txt').read_text()
  assert data_builders.ntu_rgbd60.missing_samples() == frozenset(ctrgcn.read_sample_list(shared))


def test_npz_member_reading_memmaps_stored_arrays(tmp_path):
  path = fixtures.write_ntu_npz(tmp_path, 'xsub')
  x = npz.load_member(str(path), 'x_train')
  assert isinstance(x, np.memmap) and x.shape == (2, 24, 150)
  np.testing.assert_array_equal(x, np.load(path)['x_train'])
  compressed = fixtures.write_ntu_npz(tmp_path / 'c', 'xsub', compressed=True)
  np.testing.assert_array_equal(npz.load_member(str(compressed), 'y_test'), np.load(path)['y_test'])


# ---------------------------------------------------------------------------------------------------------------
# Builds from fixtures: raw and npz sources agree.


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('ntu_manual')
  fixtures.write_ntu_skeletons(path)
  for benchmark in ('xsub', 'xview'):
    fixtures.write_ntu_npz(path, benchmark)
  return path


@pytest.fixture(scope='module')
def builds(manual_dir, tmp_path_factory):
  """{(benchmark, source): builder} for the fixture dataset."""
  data_dir = tmp_path_factory.mktemp('ntu_data')
  out = {}
  for benchmark in ('xsub', 'xview'):
    out[benchmark, 'raw'] = helpers.build('ntu_rgbd60', data_dir / 'raw', manual_dir, benchmark, source='raw')
    out[benchmark, 'npz'] = helpers.build('ntu_rgbd60', data_dir / 'npz', manual_dir, benchmark, source='npz')
  return out


@pytest.mark.parametrize('benchmark', ['xsub', 'xview'])
@pytest.mark.parametrize('source', ['raw', 'npz'])
def test_split_sizes_order_and_values(builds, benchmark, source):
  builder = builds[benchmark, source]
  assert builder.info.metadata['source'] == source
  assert {name: split.num_examples for name, split in builder.info.splits.items()} == SPLIT_SIZES[benchmark]
  for split, names in fixtures.NTU_NPZ_ORDER[benchmark].items():
    examples = helpers.read_split(builder, split)
    assert [example['sample_name'].decode() for example in examples] == names
    for example in examples:
      name = example['sample_name'].decode()
      expected, num_bodies = EXPECTED[name]
      np.testing.assert_array_equal(example['skeleton'], expected)
      assert example['skeleton'].dtype == np.float32
      assert example['num_bodies'] == num_bodies
      assert example['label'] == int(name[-3:]) - 1
      ids = ctrgcn.parse_sample_name(name)
      assert [example[k] for k in ('setup', 'camera', 'performer', 'replication')] == [
          ids['setup'], ids['camera'], ids['performer'], ids['replication']]
  helpers.assert_split_disjoint(builder, 'sample_name')


@pytest.mark.parametrize('benchmark', ['xsub', 'xview'])
def test_raw_and_npz_sources_give_identical_examples(builds, benchmark):
  for split in ('train', 'test'):
    raw = helpers.read_split(builds[benchmark, 'raw'], split)
    from_npz = helpers.read_split(builds[benchmark, 'npz'], split)
    assert len(raw) == len(from_npz)
    for a, b in zip(raw, from_npz):
      assert a.keys() == b.keys()
      for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_missing_samples_are_skipped_and_reported(builds):
  metadata = builds['xsub', 'raw'].info.metadata
  assert metadata['num_skipped_missing_samples'] == 1
  assert metadata['skipped_missing_samples'] == [fixtures.NTU_MISSING_FIXTURE]
  assert len(metadata['class_names']) == 60 and metadata['joint_names'][1] == 'spine_mid'


def test_skip_is_logged(manual_dir, tmp_path, caplog):
  caplog.set_level(logging.INFO, logger='data_builders')
  helpers.build('ntu_rgbd60', tmp_path, manual_dir, 'xview', source='raw')
  assert any('skipped 1 of 6 .skeleton files listed in the official missing-skeleton list' in r.getMessage()
             and fixtures.NTU_MISSING_FIXTURE in r.getMessage() for r in caplog.records)


def test_npz_with_name_list_compressed_and_auto_source(tmp_path):
  manual = tmp_path / 'manual'
  fixtures.write_ntu_npz(manual, 'xview', compressed=True)
  fixtures.write_ntu_available_names(manual)
  builder = helpers.build('ntu_rgbd60', tmp_path / 'data', manual, 'xview')  # auto: no raw folder -> npz
  assert builder.info.metadata['source'] == 'npz'
  test = helpers.read_split(builder, 'test')
  assert [e['sample_name'].decode() for e in test] == fixtures.NTU_NPZ_ORDER['xview']['test']
  np.testing.assert_array_equal(test[0]['skeleton'], EXPECTED['S001C001P001R001A001'][0])


def test_ntu120_samples_are_ignored(tmp_path):
  manual = tmp_path / 'manual'
  folder = fixtures.write_ntu_skeletons(manual)
  (folder / 'S018C001P008R001A061.skeleton').write_text(TEXTS['S001C001P001R001A001'])
  builder = helpers.build('ntu_rgbd60', tmp_path / 'data', manual, 'xsub')
  assert builder.info.splits['train'].num_examples + builder.info.splits['test'].num_examples == 5


def test_load_data_source(builds):
  data_root = pathlib.Path(builds['xsub', 'raw'].data_dir).parents[2]  # root/ntu_rgbd60/xsub/1.0.1
  source = data_builders.load_data_source('ntu_rgbd60', 'test', data_root, config='xsub')
  assert len(source) == 3 and source[0]['sample_name'] == b'S001C002P003R001A050'
  with pytest.raises(data_builders.DatasetNotBuiltError, match='--config=xview'):
    data_builders.load_data_source('ntu_rgbd60', 'test', data_root / 'elsewhere', config='xview')


# ---------------------------------------------------------------------------------------------------------------
# Goldens: the original CTR-GCN scripts' npz made from the same six files.


@pytest.mark.parametrize('benchmark, npz_name', [('xsub', 'NTU60_CS.npz'), ('xview', 'NTU60_CV.npz')])
def test_golden_raw_and_npz_paths_reproduce_ctrgcn_arrays(golden_dir, tmp_path, benchmark, npz_name):
  manual = golden_dir / 'ntu_raw'
  golden = np.load(manual / npz_name)
  for source in ('raw', 'npz'):
    builder = helpers.build('ntu_rgbd60', tmp_path / source, manual, benchmark, source=source)
    for split in ('train', 'test'):
      examples = helpers.read_split(builder, split)
      rows, labels = golden[f'x_{split}'], golden[f'y_{split}'].argmax(axis=1)
      assert len(examples) == len(rows)
      for example, row, label in zip(examples, rows, labels):
        valid = np.flatnonzero(row.sum(axis=1) != 0)
        expected = row[:valid[-1] + 1].reshape(-1, 2, 25, 3)
        np.testing.assert_array_equal(example['skeleton'], expected)
        assert example['label'] == label


# ---------------------------------------------------------------------------------------------------------------
# Bad input.


def _build_expecting(tmp_path, manual, match, config='xsub', **kwargs):
  with pytest.raises(data_builders.DatasetFormatError, match=match):
    helpers.build('ntu_rgbd60', tmp_path / 'data', manual, config, **kwargs)
  helpers.assert_nothing_built(tmp_path / 'data', 'ntu_rgbd60', config)


def test_truncated_skeleton_file(tmp_path):
  folder = fixtures.write_ntu_skeletons(tmp_path / 'manual')
  path = folder / 'S001C003P002R002A051.skeleton'
  path.write_bytes(path.read_bytes()[:20000])
  _build_expecting(tmp_path, tmp_path / 'manual', r'S001C003P002R002A051\.skeleton: file ends after \d+ lines')


def test_malformed_skeleton_line(tmp_path):
  folder = fixtures.write_ntu_skeletons(tmp_path / 'manual')
  path = folder / 'S001C001P006R001A010.skeleton'
  path.write_text(path.read_text().replace('3.03125', '3.0e3x', 1))
  _build_expecting(tmp_path, tmp_path / 'manual', r'S001C001P006R001A010\.skeleton: line \d+: expected a joint line')


def test_sample_without_bodies_not_on_the_missing_list(tmp_path):
  folder = fixtures.write_ntu_skeletons(tmp_path / 'manual')
  (folder / 'S001C001P001R002A002.skeleton').write_text('3\n0\n0\n0\n')
  _build_expecting(tmp_path, tmp_path / 'manual', r'S001C001P001R002A002\.skeleton: all 3 frames are empty')


def test_binary_garbage_skeleton_file(tmp_path):
  folder = fixtures.write_ntu_skeletons(tmp_path / 'manual')
  (folder / 'S001C001P001R001A001.skeleton').write_bytes(b'\x89PNG\r\n\x1a\n\xff\xfe')
  _build_expecting(tmp_path, tmp_path / 'manual', r'S001C001P001R001A001\.skeleton: not an ASCII \.skeleton text file')


def test_bad_skeleton_file_name(tmp_path):
  folder = fixtures.write_ntu_skeletons(tmp_path / 'manual')
  (folder / 'notes.skeleton').write_text('1\n')
  _build_expecting(tmp_path, tmp_path / 'manual', r"sample name\(s\) not of the form SsssCcccPpppRrrrAaaa: \['notes'\]")


def _npz_manual(tmp_path):
  manual = tmp_path / 'manual'
  path = fixtures.write_ntu_npz(manual, 'xsub')
  fixtures.write_ntu_available_names(manual)
  return manual, path


def test_truncated_npz(tmp_path):
  manual, path = _npz_manual(tmp_path)
  path.write_bytes(path.read_bytes()[:30000])
  _build_expecting(tmp_path, manual, r'NTU60_CS\.npz: (not a readable|cannot read)')


def test_npz_missing_array(tmp_path):
  manual, path = _npz_manual(tmp_path)
  arrays = dict(np.load(path))
  del arrays['y_test']
  np.savez(path, **arrays)
  _build_expecting(tmp_path, manual, r"NTU60_CS\.npz: no array 'y_test'")


def test_npz_wrong_row_count(tmp_path):
  manual, _ = _npz_manual(tmp_path)
  with open(manual / 'skes_available_name.txt', 'a') as f:
    f.write('S001C001P001R001A002\n')
  _build_expecting(tmp_path, manual, r'NTU60_CS\.npz: x_train has 2 rows but .*skes_available_name\.txt gives 3')


def test_npz_labels_disagree_with_names(tmp_path):
  manual, _ = _npz_manual(tmp_path)
  names = (manual / 'skes_available_name.txt').read_text().split()
  names[0] = 'S001C001P001R001A002'  # F1's row now claims action 2
  (manual / 'skes_available_name.txt').write_text('\n'.join(names))
  _build_expecting(tmp_path, manual, r'NTU60_CS\.npz: y_train row 0 has label 0 but the sample name for that row, '
                   r'S001C001P001R001A002')


def test_npz_all_zero_row(tmp_path):
  manual, path = _npz_manual(tmp_path)
  arrays = dict(np.load(path))
  arrays['x_test'][1] = 0
  np.savez(path, **arrays)
  _build_expecting(tmp_path, manual, r'NTU60_CS\.npz: x_test row 1 \(S001C001P006R001A010\): the row is all zeros')


def test_npz_without_sample_names(tmp_path):
  manual = tmp_path / 'manual'
  fixtures.write_ntu_npz(manual, 'xsub')
  _build_expecting(tmp_path, manual, r'skes_available_name\.txt')


def test_wrong_folder(tmp_path):
  fixtures.write_penn_action(tmp_path / 'manual')
  _build_expecting(tmp_path, tmp_path / 'manual', r'found neither \.skeleton files nor NTU60_CS\.npz in .*manual '
                   r'\(it holds Penn_Action\)')


def test_empty_skeleton_folder(tmp_path):
  (tmp_path / 'manual' / 'nturgb+d_skeletons').mkdir(parents=True)
  _build_expecting(tmp_path, tmp_path / 'manual', r'found neither \.skeleton files nor NTU60_CV\.npz', config='xview')


def test_forced_raw_source_without_skeletons(tmp_path):
  manual, _ = _npz_manual(tmp_path)
  _build_expecting(tmp_path, manual, r'no \.skeleton files in', source='raw')


def test_unknown_source():
  with pytest.raises(ValueError, match="unknown source 'csv'"):
    data_builders.ntu_rgbd60.NtuRgbd60(config='xsub', source='csv')


def test_failed_build_keeps_an_existing_other_config(tmp_path, manual_dir):
  """A failing xview build must not disturb a finished xsub build next to it."""
  helpers.build('ntu_rgbd60', tmp_path / 'data', manual_dir, 'xsub', source='raw')
  broken = tmp_path / 'broken'
  shutil.copytree(manual_dir / 'nturgb+d_skeletons', broken / 'nturgb+d_skeletons')
  (broken / 'nturgb+d_skeletons' / 'S001C001P001R001A001.skeleton').write_text('4\n1\n')
  with pytest.raises(data_builders.DatasetFormatError, match='S001C001P001R001A001'):
    helpers.build('ntu_rgbd60', tmp_path / 'data', broken, 'xview', source='raw')
  assert len(data_builders.load_data_source('ntu_rgbd60', 'train', tmp_path / 'data', config='xsub')) == 2
  with pytest.raises(data_builders.DatasetNotBuiltError):
    data_builders.load_data_source('ntu_rgbd60', 'train', tmp_path / 'data', config='xview')


def test_split_without_samples(tmp_path):
  fixtures.write_ntu_skeletons(tmp_path / 'manual', ('S001C001P001R001A001', 'S001C002P005R002A008'))
  _build_expecting(tmp_path, tmp_path / 'manual', r'ntu_rgbd60/xsub: no test samples in .*nturgb\+d_skeletons '
                   r'\(train 1, test 0; split rule: cross-subject')
