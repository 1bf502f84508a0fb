"""Registry, load_data_source and the `python -m data_builders.build` command."""

import os
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

import data_builders
from data_builders import build
from tests.conftest import REPO_ROOT
from tests.data_builders import fixtures


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
                     match=r'synthetic_actions/default/1\.0\.0 is not built .*\n.*python -m data_builders\.build '
                           r'synthetic_actions --data_dir='):
    data_builders.load_data_source('synthetic_actions', 'train', tmp_path)
  with pytest.raises(ValueError, match="unknown dataset 'ntu120'"):
    data_builders.load_data_source('ntu120', 'train', tmp_path)


def test_cli_builds_and_reports(tmp_path, capsys):
  assert build.main(['synthetic_actions', '--config=tiny', f'--data_dir={tmp_path}', '--quiet']) == 0
  output = capsys.readouterr().out
  assert 'synthetic_actions/tiny/1.0.0: test 10, train 30 examples in' in output and 'MiB' in output
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
