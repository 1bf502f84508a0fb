"""The training entry point's command line: clear errors for bad configs and missing data."""

import os
import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _main(*args, devices: int = 1):
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}', JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', 'cascadeformer_jax.main', *args], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def test_unknown_config_key():
  result = _main('--config=configs/smoke.py:n_ucla,1.0', '--config.finetune.learning_rate=1e-4')
  assert result.returncode != 0
  assert 'learning_rate' in result.stderr


def test_missing_dataset_names_the_build_command(tmp_path):
  result = _main('--config=configs/smoke.py:n_ucla,1.0', f'--config.data.data_dir={tmp_path / "empty"}',
                 f'--config.workdir={tmp_path / "run"}')
  assert result.returncode == 1
  assert 'error: dataset n_ucla' in result.stderr and 'is not built' in result.stderr
  assert 'python -m data_builders.build n_ucla --manual_dir=' in result.stderr


def test_batch_size_must_divide_over_devices(tmp_path):
  from tests.data_builders import helpers  # pylint: disable=g-import-not-at-top

  helpers.build('synthetic_actions', tmp_path / 'tfds', config='tiny')
  result = _main('--config=configs/smoke.py:synthetic_actions,1.0', '--config.data.tfds_config=tiny',
                 f'--config.data.data_dir={tmp_path / "tfds"}', f'--config.workdir={tmp_path / "run"}',
                 '--config.pretrain.batch_size=4', devices=8)
  assert result.returncode == 1
  # The N-UCLA / Penn recipes' batch of 4 on 8 GPUs: the error says what to do.
  assert ('error: config.pretrain.batch_size: the global batch size 4 does not divide over 8 devices '
          '(1 process(es)); set a multiple of 8 (e.g. config.pretrain.batch_size=8, 1 per device') in result.stderr
  assert 'or use 4 devices with --config.mesh.num_devices=4' in result.stderr


def test_device_count_and_profile_range_errors(tmp_path):
  from tests.data_builders import helpers  # pylint: disable=g-import-not-at-top

  helpers.build('synthetic_actions', tmp_path / 'tfds', config='tiny')
  common = ('--config=configs/smoke.py:synthetic_actions,1.0', '--config.data.tfds_config=tiny',
            f'--config.data.data_dir={tmp_path / "tfds"}', f'--config.workdir={tmp_path / "run"}')
  result = _main(*common, '--config.mesh.num_devices=8', devices=4)
  assert result.returncode == 1
  assert 'error: config.mesh.num_devices=8 but this job has 4 devices' in result.stderr
  result = _main(*common, '--config.profile_steps=10:99')
  assert result.returncode == 1
  assert ('error: config.profile_steps=10:99 is outside the pretrain stage, which has 15 steps (0:15)'
          in result.stderr)
  assert not (tmp_path / 'run' / 'pretrain' / 'checkpoints').exists()  # Nothing trained.
