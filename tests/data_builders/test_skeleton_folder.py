"""The skeleton_folder builder: a user's folder in any layout, its example generator and every bad-input case."""

import csv
import json
import os
import pathlib
import shutil

import numpy as np
import pytest

import data_builders
from data_builders import build
from data_builders.skeleton_folder import example
from data_builders.skeleton_folder import folder as folder_lib
from tests.data_builders import helpers


def _write_folder(root: pathlib.Path, rows, dataset=None, clips=None) -> pathlib.Path:
  """A folder with dataset.json (coco17, 2D by default), labels.csv rows and clip files {path: array or text}."""
  root.mkdir(parents=True, exist_ok=True)
  dataset = {'name': 'mine', 'layout': 'coco17', 'coords': 2, **(dataset or {})}
  (root / 'dataset.json').write_text(json.dumps(dataset))
  with open(root / 'labels.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    for row in rows:
      writer.writerow(row)
  for path, content in (clips or {}).items():
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
      target.write_text(content)
    elif path.endswith('.npz'):
      np.savez(target, skeleton=content)
    else:
      np.save(target, content)
  return root


def _clip(frames=3, joints=17, coords=2, persons=None, value=1.0):
  shape = (frames, joints, coords) if persons is None else (frames, persons, joints, coords)
  ramp = np.arange(frames, dtype=np.float32).reshape((-1,) + (1,) * (len(shape) - 1))
  return np.full(shape, value, np.float32) + ramp


def _assert_no_dataset(data_dir: pathlib.Path, name: str) -> None:
  leftovers = [os.path.join(root, f) for root, _, files in os.walk(data_dir) for f in files]
  assert not leftovers, leftovers
  with pytest.raises(data_builders.DatasetNotBuiltError, match='python -m data_builders.build skeleton_folder'):
    data_builders.load_data_source('skeleton_folder', 'train', data_dir, config=name)


def test_example_folder_builds_through_the_cli_and_reads_back_by_name(tmp_path, capsys):
  folder = example.write_example(tmp_path / 'my_dataset', layout='coco17', clips_per_class=4)
  data_dir = tmp_path / 'data'
  assert build.main(['skeleton_folder', f'--manual_dir={folder}', f'--data_dir={data_dir}', '--quiet']) == 0
  fingerprint = folder_lib.content(folder).fingerprint
  assert (f'skeleton_folder/my_dataset-{fingerprint[:16]}/1.0.0: test 5, train 15 examples'
          in capsys.readouterr().out)
  train = data_builders.load_data_source('skeleton_folder', 'train', data_dir, config='my_dataset')
  assert len(train) == 15
  first = train[0]
  assert first['skeleton'].shape[1:] == (1, 17, 2) and first['skeleton'].dtype == np.float32
  assert first['sample_name'] == b'clips/wave_000.npy'
  np.testing.assert_array_equal(first['skeleton'][:, 0], np.load(folder / 'clips' / 'wave_000.npy'))
  info = data_builders.get_builder('skeleton_folder', data_dir, 'my_dataset').info
  metadata = info.metadata
  assert metadata['class_names'] == sorted(example.CLASS_NAMES) == info.features['label'].names
  assert first['label'] == metadata['class_names'].index('wave')
  assert (metadata['layout_name'], metadata['coords'], metadata['max_persons'], metadata['num_joints']) == (
      'coco17', 2, 1, 17)
  assert metadata['parents'][5] == 0 and metadata['centre_joints'] == [11, 12]
  assert metadata['content_fingerprint'] == fingerprint
  assert metadata['nonfinite_values'] == 0
  # A second folder lives next to the first one in the same data dir.
  other = example.write_example(tmp_path / 'ntu_example', layout='ntu25', clips_per_class=2, file_format='npz',
                                group_split=True)
  helpers.build('skeleton_folder', data_dir, manual_dir=other)
  test = data_builders.load_data_source('skeleton_folder', 'test', data_dir, config='ntu_example')
  assert test[0]['skeleton'].shape[1:] == (1, 25, 3) and test[0]['group'] == b's001'


def test_content_fingerprint_ignores_place_and_mtimes_and_caches_clip_hashes(tmp_path, monkeypatch):
  folder = example.write_example(tmp_path / 'a', layout='coco17', clips_per_class=2)
  copy = tmp_path / 'elsewhere' / 'b'
  shutil.copytree(folder, copy)  # new path, new modification times
  os.utime(copy / 'clips' / 'wave_000.npy', (1, 1))
  cache = tmp_path / 'cache'
  first = folder_lib.content(folder, cache)
  assert folder_lib.content(copy).fingerprint == first.fingerprint
  assert len(first.rows) == 10 and first.rows[0][:3] == ('clips/wave_000.npy', 'wave', 'train')
  assert folder_lib.read_manifest(cache, first.fingerprint)['rows'][0] == list(first.rows[0])
  # Hashes of clips not modified in the last seconds come from the cache, keyed by (path, size, mtime).
  for clip in (folder / 'clips').iterdir():
    os.utime(clip, (1e9, 1e9))
  folder_lib.content(folder, cache)
  read = []
  monkeypatch.setattr(folder_lib, 'clip_sha256', lambda path: read.append(path) or 'x')
  assert folder_lib.content(folder, cache).fingerprint == first.fingerprint and read == []
  np.save(folder / 'clips' / 'clap_000.npy', np.zeros((3, 17, 2), np.float32))  # new size and mtime
  assert folder_lib.content(folder, cache).fingerprint != first.fingerprint
  assert [pathlib.Path(path).name for path in read] == ['clap_000.npy']


def test_describe_changes_names_rows_added_removed_relabelled_and_clips(tmp_path):
  folder = example.write_example(tmp_path / 'a', layout='coco17', clips_per_class=2)
  before = folder_lib.content(folder).manifest()
  lines = (folder / 'labels.csv').read_text().splitlines()
  lines[1] = lines[1].replace(',wave,', ',clap,')
  (folder / 'labels.csv').write_text('\n'.join(lines[:-1] + ['clips/new.npy,squat,train']) + '\n')
  np.save(folder / 'clips' / 'new.npy', _clip())
  np.save(folder / 'clips' / 'clap_000.npy', _clip())
  after = folder_lib.content(folder).manifest()
  assert folder_lib.describe_changes(before, after) == (
      '1 row added (clips/new.npy); 1 row removed (clips/side_kick_001.npy); 1 row relabelled (clips/wave_000.npy: '
      'wave -> clap); 1 row with a changed clip file (clips/clap_000.npy)')
  current = (folder / 'labels.csv').read_text().splitlines()
  (folder / 'labels.csv').write_text('\n'.join(current[:1] + current[:0:-1]) + '\n')
  reordered = folder_lib.content(folder).manifest()
  assert reordered['fingerprint'] != after['fingerprint']  # the order of the examples changes what trains
  assert folder_lib.describe_changes(after, reordered) == 'labels.csv reordered (every row the same)'


def test_same_named_folders_build_side_by_side_and_a_failed_build_touches_neither(tmp_path):
  data_dir = tmp_path / 'data'
  first = example.write_example(tmp_path / 'one', layout='coco17', clips_per_class=2, name='shared')
  second = example.write_example(tmp_path / 'two', layout='coco17', clips_per_class=2, name='shared', seed=1)
  builds = [helpers.build('skeleton_folder', data_dir, manual_dir=folder) for folder in (first, second)]
  assert builds[0].data_path != builds[1].data_path
  names = [pathlib.Path(builder.data_path).parent.name for builder in builds]
  assert folder_lib.read_dataset_json(first).name == 'shared' and all(n.startswith('shared-') for n in names)
  for builder, folder in zip(builds, (first, second)):
    train = helpers.by_name(helpers.read_split(builder, 'train'), 'sample_name')
    np.testing.assert_array_equal(train['clips/wave_000.npy']['skeleton'][:, 0],
                                  np.load(folder / 'clips' / 'wave_000.npy'))
  names = sorted(names)
  with pytest.raises(ValueError, match=f'holds 2 builds of folder dataset .shared. .different content.: {names[0]}, '
                                       f'{names[1]}'):
    data_builders.load_data_source('skeleton_folder', 'train', data_dir, config='shared')
  assert len(data_builders.load_data_source('skeleton_folder', 'test', data_dir, config=names[0])) == 5
  # A clip replaced after the content was fingerprinted fails the build; the other builds stay as they were.
  labels = (first / 'labels.csv').read_text()
  (first / 'labels.csv').write_text(labels.replace('wave_001.npy,wave,', 'wave_001.npy,clap,'))
  config = data_builders.skeleton_folder.SkeletonFolder.config_for(manual_dir=first, data_dir=data_dir)
  np.save(first / 'clips' / 'wave_000.npy', _clip())
  with pytest.raises(data_builders.DatasetFormatError, match='wave_000.npy changed while building'):
    data_builders.build_dataset('skeleton_folder', data_dir, manual_dir=first, config=config, verbose=False)
  assert sorted(p.name for p in (data_dir / 'skeleton_folder').iterdir() if not p.name.startswith('.')) == names
  assert all(builder.is_prepared() for builder in builds)


def test_example_generator_is_deterministic_and_writes_json(tmp_path):
  a = example.write_example(tmp_path / 'a', layout='openpose25', clips_per_class=2, file_format='json')
  b = example.write_example(tmp_path / 'b', layout='openpose25', clips_per_class=2, file_format='json')
  assert (a / 'clips' / 'clap_001.json').read_text() == (b / 'clips' / 'clap_001.json').read_text()
  clip = folder_lib.load_clip(a / 'clips' / 'clap_001.json')
  assert clip.ndim == 3 and clip.shape[1:] == (25, 2)
  assert example.main([f'--output={a}']) == 1  # not empty


def test_classes_order_persons_formats_and_group_split(tmp_path):
  two_persons = _clip(frames=4, persons=2)
  two_persons[:, 1] = 0  # second slot empty in this clip
  clips = {'c/a.npy': _clip(), 'c/b.npz': _clip(frames=1), 'c/c.json': json.dumps({'skeleton': _clip().tolist()}),
           'c/d.json': json.dumps(_clip(persons=2).tolist()), 'c/e.npy': two_persons}
  rows = [['path', 'label', 'subject'], ['c/a.npy', 'run', 'p1'], ['c/b.npz', 'jump', 'p1'],
          ['./c/c.json', 'run', 'p2'], ['c/d.json', 'jump', 'p2'], ['c/e.npy', 'run', 'p1']]
  folder = _write_folder(tmp_path / 'f', rows, {'classes': ['run', 'jump', 'sit'], 'max_persons': 2,
                                                'split': {'column': 'subject', 'test': ['p2']}}, clips)
  # 'sit' has no training clip
  with pytest.raises(data_builders.DatasetFormatError, match="class 'sit' has no training clip"):
    folder_lib.check_folder(folder)
  (folder / 'dataset.json').write_text(json.dumps({
      'name': 'mine', 'layout': 'coco17', 'coords': 2, 'classes': ['run', 'jump'], 'max_persons': 2,
      'split': {'column': 'subject', 'test': ['p2']}}))
  builder = helpers.build('skeleton_folder', tmp_path / 'data', manual_dir=folder)
  train = helpers.by_name(helpers.read_split(builder, 'train'), 'sample_name')
  test = helpers.by_name(helpers.read_split(builder, 'test'), 'sample_name')
  assert sorted(train) == ['c/a.npy', 'c/b.npz', 'c/e.npy'] and sorted(test) == ['c/c.json', 'c/d.json']
  assert train['c/a.npy']['label'] == 0 and train['c/b.npz']['label'] == 1
  assert train['c/a.npy']['skeleton'].shape == (3, 2, 17, 2) and not train['c/a.npy']['skeleton'][:, 1].any()
  assert train['c/b.npz']['skeleton'].shape[0] == 1
  assert train['c/e.npy']['num_persons'] == 1 and test['c/d.json']['num_persons'] == 2
  assert test['c/c.json']['group'] == b'p2'
  assert builder.info.metadata['split_rule'] == {'column': 'subject', 'test': ['p2']}


def test_test_fraction_split_rule(tmp_path):
  rows = [['path', 'label', 'subject']] + [[f'c/{i}.npy', 'ab'[i % 2], f's{i // 2}'] for i in range(8)]
  folder = _write_folder(tmp_path / 'f', rows, {'split': {'column': 'subject', 'test_fraction': 0.25, 'seed': 1}},
                         {f'c/{i}.npy': _clip() for i in range(8)})
  _, rows_out, _ = folder_lib.check_folder(folder)
  test_subjects = {row.group for row in rows_out if row.split == 'test'}
  assert len(test_subjects) == 1 and sum(row.split == 'test' for row in rows_out) == 2


def test_every_bad_row_is_listed_in_one_error_and_nothing_is_written(tmp_path, capsys):
  nan_clip = _clip()
  nan_clip[1, 3, 0] = np.nan
  clips = {
      'ok.npy': _clip(), 'ok2.npy': _clip(),
      'joints.npy': _clip(joints=25), 'coords.npy': _clip(coords=3), 'empty.npy': np.zeros((0, 17, 2), np.float32),
      'nan.npy': nan_clip, 'persons.npy': _clip(persons=3), 'broken.json': '{"skeleton": [[1, 2]',
      'text.txt': 'hello',
  }
  rows = [['path', 'label', 'split'],
          ['ok.npy', 'walk', 'train'],
          ['missing.npy', 'walk', 'train'],
          ['joints.npy', 'walk', 'train'],
          ['coords.npy', 'walk', 'train'],
          ['empty.npy', 'walk', 'train'],
          ['nan.npy', 'walk', 'train'],
          ['ok2.npy', 'jog', 'test'],
          ['../outside.npy', 'walk', 'train'],
          ['ok.npy', 'walk', 'test'],
          ['persons.npy', 'walk', 'train'],
          ['broken.json', 'walk', 'train'],
          ['text.txt', 'walk', 'train'],
          ['ok2.npy', 'walk'],
          ['other.npy', 'walk', 'tset'],
          ['', 'walk', 'train'],
          ['nokey.npz', 'walk', 'train']]
  folder = _write_folder(tmp_path / 'f', rows, {'classes': ['walk', 'run']}, clips)
  np.savez(folder / 'nokey.npz', other=_clip())
  data_dir = tmp_path / 'data'
  assert build.main(['skeleton_folder', f'--manual_dir={folder}', f'--data_dir={data_dir}', '--quiet']) == 1
  message = capsys.readouterr().err
  assert message.startswith('error: building skeleton_folder failed: ')
  expected = [
      'labels.csv line 3 (missing.npy): file not found',
      'labels.csv line 4 (joints.npy): shape (3, 25, 2): 25 joints, layout \'coco17\' has 17',
      'labels.csv line 5 (coords.npy): shape (3, 17, 3): 3 coordinates per joint, dataset.json says coords 2 (drop '
      'the confidence channel)',
      'labels.csv line 6 (empty.npy): shape (0, 17, 2): 0 frames',
      'labels.csv line 7 (nan.npy): 1 NaN/inf values',
      "labels.csv line 8, column 'label': 'jog' is not one of the classes in dataset.json ['walk', 'run']",
      "labels.csv line 9, column 'path': '../outside.npy' is outside the folder",
      "labels.csv line 10, column 'path': 'ok.npy' duplicates line 2",
      'labels.csv line 11 (persons.npy): shape (3, 3, 17, 2): 3 persons, dataset.json says max_persons 1',
      'labels.csv line 12 (broken.json): invalid JSON at line 1, column',
      "labels.csv line 13 (text.txt): unsupported file type '.txt'",
      'labels.csv line 14: 2 fields, the header has 3',
      "labels.csv line 15, column 'split': 'tset' is not one of ['train', 'test', 'validation']",
      "labels.csv line 16, column 'path': empty",
      'labels.csv line 17 (nokey.npz): no array "skeleton" in the .npz (arrays: [\'other\'])',
      "split 'test' has no clips",
      "class 'run' has no training clip",
  ]
  missing = [line for line in expected if line not in message]
  assert not missing, message
  assert '17 problems in dataset.json / labels.csv / clips; nothing was written' in message
  _assert_no_dataset(data_dir, 'mine')


def test_bad_values_zero_replaces_and_counts(tmp_path):
  nan_clip = _clip()
  nan_clip[1, 3] = [np.nan, np.inf]
  folder = _write_folder(tmp_path / 'f', [['path', 'label', 'split'], ['a.npy', 'x', 'train'], ['b.npy', 'x', 'test']],
                         {'bad_values': 'zero'}, {'a.npy': nan_clip, 'b.npy': _clip()})
  builder = helpers.build('skeleton_folder', tmp_path / 'data', manual_dir=folder)
  example_a = helpers.read_split(builder, 'train')[0]
  assert example_a['nonfinite_count'] == 2 and not example_a['skeleton'][1, 0, 3].any()
  assert builder.info.metadata['nonfinite_values'] == 2


def test_more_than_twenty_problems_are_counted(tmp_path):
  rows = [['path', 'label', 'split']] + [[f'missing{i}.npy', 'x', 'train'] for i in range(25)]
  folder = _write_folder(tmp_path / 'f', rows + [['ok.npy', 'x', 'test']], clips={'ok.npy': _clip()})
  with pytest.raises(data_builders.DatasetFormatError) as error:
    folder_lib.check_folder(folder)
  message = str(error.value)
  assert '25 problems' in message and '... and 5 more' in message
  assert 'missing19.npy' in message and 'missing20.npy' not in message


@pytest.mark.parametrize('content,message', [
    ('{"name": "x", "layout": "coco17", "coords": 2,\n "max_persons": 1,,}',
     r'dataset.json line 2, column 19: invalid JSON'),
    ('{"name": "x", "layout": "kinect", "coords": 2}', 'unknown joint layout .kinect.; known layouts: coco17, h36m17, '
                                                       'mediapipe33, ntu25, nucla20, openpose25, penn13'),
    ('{"name": "x", "layout": "coco17", "coords": 4, "persons": 2}', r"unknown key \['persons'\](.|\n)*"
                                                                     r'"coords" must be 2 or 3, got 4'),
    ('{"name": "my data", "layout": "coco17", "coords": 2}', '"name" must be'),
    ('{"layout": "coco17", "coords": 2}', 'missing key "name"'),
    ('{"name": "x", "layout": {"joints": ["a", "b"], "parents": [1, 0]}, "coords": 2}', 'exactly one root'),
    ('{"name": "x", "layout": "coco17", "coords": 2, "split": {"column": "subject"}}', 'exactly one of "test"'),
    ('[1, 2]', 'expected a JSON object'),
])
def test_malformed_dataset_json(tmp_path, content, message):
  folder = _write_folder(tmp_path / 'f', [['path', 'label', 'split']])
  (folder / 'dataset.json').write_text(content)
  with pytest.raises(data_builders.DatasetFormatError, match=message):
    folder_lib.check_folder(folder)
  data_dir = tmp_path / 'data'
  with pytest.raises(data_builders.DatasetFormatError):
    data_builders.build_dataset('skeleton_folder', data_dir, manual_dir=folder, verbose=False)
  assert not data_dir.exists() or not any(data_dir.rglob('*.json'))


@pytest.mark.parametrize('text,message', [
    ('', 'labels.csv is empty'),
    ('path,label\nok.npy,x\n', "labels.csv line 1: no column 'split'"),
    ('path,label,split\nok.npy,x,train\n"ok.npy,x,test\n', 'labels.csv line 3: malformed CSV'),
])
def test_malformed_labels_csv(tmp_path, text, message):
  folder = _write_folder(tmp_path / 'f', [], clips={'ok.npy': _clip()})
  (folder / 'labels.csv').write_text(text)
  with pytest.raises(data_builders.DatasetFormatError, match=message):
    folder_lib.check_folder(folder)


def test_group_split_column_must_exist_and_missing_folder_files(tmp_path):
  folder = _write_folder(tmp_path / 'f', [['path', 'label', 'split'], ['ok.npy', 'x', 'train']],
                         {'split': {'column': 'subject', 'test': ['s1']}}, {'ok.npy': _clip()})
  with pytest.raises(data_builders.DatasetFormatError, match="no column 'subject'"):
    folder_lib.check_folder(folder)
  (folder / 'labels.csv').unlink()
  with pytest.raises(data_builders.DatasetFormatError, match='labels.csv not found'):
    folder_lib.check_folder(folder)
  (folder / 'dataset.json').unlink()
  with pytest.raises(data_builders.DatasetFormatError, match='dataset.json not found'):
    data_builders.build_dataset('skeleton_folder', tmp_path / 'data', manual_dir=folder, verbose=False)
