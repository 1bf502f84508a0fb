"""Folder datasets in the data layer: the data config, building on first use, resolving the folder's metadata and
the example processing of the pipeline."""


import json
import os
import shutil

import ml_collections
import numpy as np
import pytest

from cascadeformer_jax.config import configuration
from cascadeformer_jax import data as data_lib
from cascadeformer_jax.data import examples
from cascadeformer_jax.data import pipeline
from cascadeformer_jax.data import sources
from data_builders.skeleton_folder import example
from data_builders.skeleton_folder import folder as folder_lib


def _folder_config(folder, data_dir) -> ml_collections.ConfigDict:
  config = data_lib.default_data_config(data_lib.FOLDER)
  config.folder = str(folder)
  config.data_dir = str(data_dir)
  config.num_frames = 8
  return config


def test_unknown_dataset_names_the_folder_option():
  with pytest.raises(ValueError, match="or 'folder'"):
    data_lib.default_data_config('my_dataset')
  config = data_lib.default_data_config(data_lib.FOLDER)
  with pytest.raises(ValueError, match='needs data.folder'):
    data_lib.validate_data_config(config)


def test_build_on_first_use_resolve_and_build_each_content_once(tmp_path, capsys):
  folder = example.write_example(tmp_path / 'clips', layout='mediapipe33', clips_per_class=2)
  config = _folder_config(folder, tmp_path / 'tfds')
  config.generic.centre_joints = ('left_shoulder', 'right_shoulder')
  sources.ensure_built(config)
  assert 'building skeleton_folder/clips-' in capsys.readouterr().out
  sources.resolve_folder(config)
  fingerprint = folder_lib.content(folder).fingerprint
  assert (config.name, config.tfds_config, config.identity, config.num_classes, config.num_joints,
          config.num_coords, config.max_persons, config.joint_layout) == (
              'clips', f'clips-{fingerprint[:16]}', f'sha256:{fingerprint}', 5, 33, 2, 1, 'mediapipe33')
  assert config.centre_indices == (11, 12) and len(config.parents) == 33
  assert data_lib.stored_layout(config).joints[0] == 'nose'
  assert sources.class_names(config) == sorted(example.CLASS_NAMES)
  data_lib.validate_data_config(config)
  first_build = config.tfds_config
  # Unchanged, touched or copied elsewhere: the same content, nothing to build.
  for clip in (folder / 'clips').iterdir():
    os.utime(clip)
  copy = shutil.copytree(folder, tmp_path / 'copy' / 'clips')
  for source in (folder, copy):
    config.folder = str(source)
    sources.ensure_built(config)
    assert capsys.readouterr().out == '' and config.tfds_config == first_build
  config.folder = str(folder)
  labels = (folder / 'labels.csv').read_text().splitlines()
  (folder / 'labels.csv').write_text('\n'.join(labels[:-1]) + '\n')  # one clip fewer: another content, another build
  sources.ensure_built(config)
  assert 'building skeleton_folder/clips-' in capsys.readouterr().out and config.tfds_config != first_build
  assert len(sources.open_split(config, 'test')) + len(sources.open_split(config, 'train')) == 9
  earlier = _folder_config('', tmp_path / 'tfds')
  earlier.tfds_config = first_build  # the earlier content's build is still there
  sources.resolve_folder(earlier)
  assert earlier.identity == f'sha256:{fingerprint}' and len(sources.open_split(earlier, 'test')) == 5
  config.generic.centre_joints = ('pelvis',)
  with pytest.raises(ValueError, match=r"centre_joints \['pelvis'\] are not joints of layout 'mediapipe33'"):
    sources.resolve_folder(config)


def test_a_build_from_before_content_fingerprints_is_used_while_its_folder_is_unchanged(tmp_path, capsys):
  folder = example.write_example(tmp_path / 'old', layout='coco17', clips_per_class=2)
  config = _folder_config(folder, tmp_path / 'tfds')
  sources.ensure_built(config, announce=False)
  # Made as earlier versions named and described builds: after the dataset alone, with a path/size/mtime
  # fingerprint.
  root = tmp_path / 'tfds' / 'skeleton_folder'
  (root / config.tfds_config).rename(root / 'old')
  metadata_file = root / 'old' / '1.0.0' / 'metadata.json'
  metadata = json.loads(metadata_file.read_text())
  del metadata['content_fingerprint']
  metadata['fingerprint'] = folder_lib.legacy_fingerprint(folder)
  metadata_file.write_text(json.dumps(metadata))
  config = _folder_config(folder, tmp_path / 'tfds')
  capsys.readouterr()
  sources.ensure_built(config)
  sources.resolve_folder(config)
  assert capsys.readouterr().out == '' and config.tfds_config == 'old'
  assert config.identity == 'sha256:' + folder_lib.content(folder).fingerprint
  assert len(sources.open_split(config, 'train')) == 5


def test_experiment_config_takes_joints_and_classes_from_the_folder(tmp_path):
  folder = example.write_example(tmp_path / 'ntu', layout='ntu25', clips_per_class=2)
  config = configuration.load_config_file('configs/custom.py', '1.2')
  config.data.folder = str(folder)
  config.data.data_dir = str(tmp_path / 'tfds')
  config.data.representation = 'joint_bone'
  configuration.resolve_dataset(config, announce=False)
  model = configuration.model_config(config)
  assert (model.variant, model.num_joints, model.coords, model.num_classes) == ('1.2', 25, 6, 5)
  assert config.data.generic.person_selection == 'observed_motion'  # 'auto' in a new work directory
  with pytest.raises(ValueError, match='takes 1.0, 1.1 or 1.2'):
    configuration.load_config_file('configs/custom.py', '2.0')


def test_pipeline_batches_of_a_folder_dataset(tmp_path):
  folder = example.write_example(tmp_path / 'coco', layout='coco17', clips_per_class=2)
  config = _folder_config(folder, tmp_path / 'tfds')
  sources.ensure_built(config, announce=False)
  sources.resolve_folder(config)
  batch = next(pipeline.make_train_iterator(config, 4, process_index=0, process_count=1))
  assert batch['skeleton'].shape == (4, 8, 17, 2) and batch['lengths'].tolist() == [8] * 4
  evaluation = list(pipeline.make_eval_iterator(config, 4, process_index=0, process_count=1))
  assert sum(int(b['valid'].sum()) for b in evaluation) == 5
  config.generic.temporal = 'pad'
  config.num_frames = 80
  padded = next(iter(pipeline.make_eval_iterator(config, 2, process_index=0, process_count=1)))
  assert padded['skeleton'].shape[1] == 80 and 30 <= padded['lengths'][0] <= 60
  assert not padded['skeleton'][0, padded['lengths'][0]:].any()


def test_generic_example_checks_shape_and_bad_values(tmp_path):
  config = data_lib.default_data_config(data_lib.FOLDER)
  config.update(dict(num_classes=2, num_joints=3, num_coords=2, max_persons=1, parents=(0, 0, 1),
                     centre_indices=(0,), num_frames=4))
  settings = config.to_dict()
  clip = np.ones((5, 1, 3, 2), np.float32) * np.arange(3)[None, None, :, None]
  out = examples.process_example({'skeleton': clip, 'label': 1}, settings, np.array([0, 0, 1]), None, False, 'x')
  assert out['skeleton'].shape == (4, 3, 2)
  with pytest.raises(examples.BadExampleError, match=r"shape \(5, 3, 2\), expected \(T, 1, 3, 2\)"):
    examples.process_example({'skeleton': clip[:, 0], 'label': 1}, settings, np.array([0, 0, 1]), None, False, 'x')
  clip[2, 0, 1] = np.nan
  with pytest.raises(examples.BadExampleError, match='NaN/inf'):
    examples.process_example({'skeleton': clip, 'label': 1}, settings, np.array([0, 0, 1]), None, False, 'x')
  settings['bad_values'] = 'zero'
  out = examples.process_example({'skeleton': clip, 'label': 1}, settings, np.array([0, 0, 1]), None, False, 'x')
  assert out['nonfinite_count'] == 2 and np.isfinite(out['skeleton']).all()

