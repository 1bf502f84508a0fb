"""Registry, load_data_source and the `python -m data_builders.build` command."""

import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from cascadeformer_jax.data import layouts
import data_builders
from data_builders import build
from tests.conftest import REPO_ROOT
from tests.data_builders import fixtures
from tests.data_builders import helpers


def test_registry_names_and_imports():
  # pylint: disable-next=g-import-not-at-top
  from data_builders import n_ucla, ntu_rgbd60, ntu_rgbd120, penn_action, skeleton_folder, synthetic_actions
  assert data_builders.BUILDERS == {
      'penn_action': penn_action.PennAction, 'n_ucla': n_ucla.NUcla, 'ntu_rgbd60': ntu_rgbd60.NtuRgbd60,
      'ntu_rgbd120': ntu_rgbd120.NtuRgbd120, 'synthetic_actions': synthetic_actions.SyntheticActions,
      'skeleton_folder': skeleton_folder.SkeletonFolder}
  for name, builder_class in data_builders.BUILDERS.items():
    assert builder_class.name == name
  assert [c.name for c in ntu_rgbd60.NtuRgbd60.BUILDER_CONFIGS] == ['xsub', 'xview']
  assert [c.name for c in ntu_rgbd120.NtuRgbd120.BUILDER_CONFIGS] == ['xsub', 'xset']
  assert [c.name for c in synthetic_actions.SyntheticActions.BUILDER_CONFIGS] == ['default', 'tiny']
  for name in ('penn_action', 'n_ucla', 'ntu_rgbd60', 'ntu_rgbd120'):
    assert 'MANUAL_DIR' in data_builders.BUILDERS[name].MANUAL_DOWNLOAD_INSTRUCTIONS


def test_build_command():
  assert data_builders.build_command('ntu_rgbd60', '/data', 'xsub') == (
      'python -m data_builders.build ntu_rgbd60 --config=xsub --manual_dir=<folder with the raw files> '
      '--data_dir=/data')
  assert data_builders.build_command('synthetic_actions', '/data') == (
      'python -m data_builders.build synthetic_actions --data_dir=/data')


def test_load_data_source_errors(tmp_path):
  with pytest.raises(data_builders.DatasetNotBuiltError,
                     match=r'synthetic_actions/default/1\.0\.1 is not built .*\n.*python -m data_builders\.build '
                           r'synthetic_actions --data_dir='):
    data_builders.load_data_source('synthetic_actions', 'train', tmp_path)
  with pytest.raises(ValueError, match="unknown dataset 'ntu120'"):
    data_builders.load_data_source('ntu120', 'train', tmp_path)


def test_cli_builds_and_reports(tmp_path, capsys):
  assert build.main(['synthetic_actions', '--config=tiny', f'--data_dir={tmp_path}', '--quiet']) == 0
  output = capsys.readouterr().out
  assert 'synthetic_actions/tiny/1.0.1: test 10, train 30 examples in' in output and 'MiB' in output
  source = data_builders.load_data_source('synthetic_actions', 'train', tmp_path, config='tiny')
  assert len(source) == 30
  with pytest.raises(ValueError, match="no split 'validation'"):
    data_builders.load_data_source('synthetic_actions', 'validation', tmp_path, config='tiny')


def test_cli_reports_bad_input(tmp_path, capsys):
  (tmp_path / 'manual' / 'all_sqe').mkdir(parents=True)
  code = build.main(['n_ucla', f'--manual_dir={tmp_path / "manual"}', f'--data_dir={tmp_path / "data"}', '--quiet'])
  assert code == 1
  assert 'error: building n_ucla failed: ' in capsys.readouterr().err


def test_cli_rejects_unknown_config_and_misplaced_source(tmp_path):
  with pytest.raises(SystemExit):
    build.main(['ntu_rgbd60', '--config=xset', f'--data_dir={tmp_path}'])
  with pytest.raises(SystemExit):
    build.main(['penn_action', '--source=raw', f'--data_dir={tmp_path}', f'--manual_dir={tmp_path}'])


def test_manual_dir_required(tmp_path):
  with pytest.raises(ValueError, match='penn_action needs manual_dir'):
    data_builders.build_dataset('penn_action', tmp_path)
  with pytest.raises(data_builders.DatasetFormatError, match='does not exist'):
    data_builders.build_dataset('penn_action', tmp_path, manual_dir=tmp_path / 'nowhere', verbose=False)


def test_module_entry_point_with_progress_output(tmp_path):
  fixtures.write_n_ucla(tmp_path / 'manual')
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  result = subprocess.run(
      [sys.executable, '-m', 'data_builders.build', 'n_ucla', f'--manual_dir={tmp_path / "manual"}',
       f'--data_dir={tmp_path / "data"}'], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
      check=False)
  assert result.returncode == 0, result.stderr
  assert 'n_ucla: reading all_sqe/*.json: 4/4 done' in result.stderr
  assert 'n_ucla: writing train: 2/2 done' in result.stderr
  assert 'n_ucla/1.0.0: test 2, train 2 examples' in result.stdout
  reloaded = tfds.builder_from_directory(str(tmp_path / 'data' / 'n_ucla' / '1.0.0'))
  assert reloaded.info.metadata['class_names'][0] == 'pick_up_with_one_hand'
  assert len(reloaded.as_data_source(split='test')) == 2


@pytest.mark.parametrize('name, config, layout', [
    ('penn_action', None, 'penn13'), ('n_ucla', None, 'nucla20'), ('ntu_rgbd60', 'xsub', 'ntu25'),
    ('ntu_rgbd120', 'xset', 'ntu25'), ('synthetic_actions', 'tiny', 'ntu25')])
def test_metadata_joints_come_from_the_layout_table(tmp_path, name, config, layout):
  metadata = data_builders.get_builder(name, tmp_path, config).info.metadata
  table = layouts.get_layout(layout)
  assert metadata['joint_names'] == list(table.joints) and metadata['num_joints'] == table.num_joints
  assert metadata['edges'] == [[child, parent] for child, parent in enumerate(table.parents) if child != parent]


def test_ntu_metadata_edges_are_the_bone_feature_tree(tmp_path):
  edges = data_builders.get_builder('ntu_rgbd60', tmp_path, 'xsub').info.metadata['edges']
  joints = layouts.NTU25_JOINTS
  named = {(joints[child], joints[parent]) for child, parent in edges}
  assert {('hand_tip_left', 'thumb_left'), ('thumb_left', 'hand_left'), ('spine_base', 'spine_mid'),
          ('spine_mid', 'spine_shoulder'), ('neck', 'spine_shoulder')} <= named
  assert len(edges) == 24 and 'spine_shoulder' not in {child for child, _ in named}  # the root


def _as_version(built: pathlib.Path, version: str, edges: list[list[int]]) -> pathlib.Path:
  """A copy of the built dataset folder `built` as the builder's `version` wrote it, with these metadata edges."""
  folder = built.parent / version
  shutil.copytree(built, folder)
  info = json.loads((folder / 'dataset_info.json').read_text())
  info['version'] = version
  (folder / 'dataset_info.json').write_text(json.dumps(info))
  metadata = json.loads((folder / 'metadata.json').read_text())
  metadata['edges'] = edges
  (folder / 'metadata.json').write_text(json.dumps(metadata))
  return folder


def test_datasets_of_a_supported_older_version_are_read_with_a_warning(tmp_path, caplog):
  builder_class = data_builders.BUILDERS['synthetic_actions']
  assert str(builder_class.VERSION) == '1.0.1' and builder_class.SUPPORTED_VERSIONS == ['1.0.0']
  assert set(builder_class.RELEASE_NOTES) == {'1.0.0', '1.0.1'}
  current = pathlib.Path(helpers.build('synthetic_actions', tmp_path / 'data', config='tiny').data_path)
  older_edges = [[1, 0], [2, 20]]
  _as_version(current, '1.0.0', older_edges)
  _as_version(current, '0.9.0', [])  # not a supported version
  shutil.rmtree(current)
  caplog.set_level(logging.WARNING, logger='data_builders')
  for _ in range(2):
    source = data_builders.load_data_source('synthetic_actions', 'train', tmp_path / 'data', config='tiny')
    assert len(source) == 30
  warnings = [record.getMessage() for record in caplog.records if record.name == 'data_builders']
  assert len(warnings) == 1, warnings  # once per folder
  assert 'synthetic_actions/tiny/1.0.0' in warnings[0] and 'current version is 1.0.1' in warnings[0]
  assert 'python -m data_builders.build synthetic_actions --config=tiny' in warnings[0]
  older = data_builders.get_builder('synthetic_actions', tmp_path / 'data', 'tiny', version='1.0.0')
  assert older.info.metadata['edges'] == older_edges  # read as that version stored it
  shutil.rmtree(current.parent / '1.0.0')
  with pytest.raises(data_builders.DatasetNotBuiltError, match=r'synthetic_actions/tiny/1\.0\.1 is not built'):
    data_builders.load_data_source('synthetic_actions', 'train', tmp_path / 'data', config='tiny')
