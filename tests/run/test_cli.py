"""Entry points explain expected mistakes in one line; interrupts exit with the conventional codes."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import warnings

from absl import flags
from ml_collections import config_flags
import pytest

from cascadeformer_jax.run import cli
from tests import failure_injection

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = {key: value for key, value in os.environ.items() if key != 'CASCADEFORMER_DEBUG'}
ENV.update(PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS='cpu')


def _convert(*args, env=None, **kwargs):
  return subprocess.run([sys.executable, '-m', 'cascadeformer_jax.convert', *args], capture_output=True, text=True,
                        cwd=REPO_ROOT, env=env or ENV, timeout=120, **kwargs)


# A config file that imports nothing heavy, so that each case costs only a Python start.
LIGHT_CONFIG = '''
import ml_collections
def get_config():
  return ml_collections.ConfigDict({'finetune': {'lr': 1e-3, 'epochs': 1}})
'''
# One that takes an argument, as configs/smoke.py:<dataset>,<variant> does.
ARGUMENT_CONFIG = '''
def get_config(arg):
  dataset, variant = arg.split(',')
'''


@pytest.mark.parametrize('args,expected', [
    (['--config=configs/no_such_config.py'], 'error: --config: config file configs/no_such_config.py does not exist'),
    (['--config={light}', '--config.finetune.lrr=1'],
     "error: --config.finetune.lrr: the config has no field 'lrr'; did you mean 'lr'?"),
    (['--config={light}', '--config.finetune.epochs=1.5'],
     "error: --config.finetune.epochs=1.5: invalid literal for int() with base 10: '1.5'"),
    (['--bogus_flag=1'], "error: Unknown command line flag 'bogus_flag'"),
    (['--config={argument}:n_ucla'], 'error: --config: config file {argument} line 3 raised ValueError: not enough '
                                     'values to unpack (expected 2, got 1)'),
])
def test_command_line_mistakes_give_one_line(args, expected, tmp_path):
  files = {'light': LIGHT_CONFIG, 'argument': ARGUMENT_CONFIG}
  for name, text in files.items():
    (tmp_path / f'{name}.py').write_text(text)
  paths = {name: tmp_path / f'{name}.py' for name in files}
  args, expected = [arg.format(**paths) for arg in args], expected.format(**paths)
  result = _convert(f'--checkpoint_dir={tmp_path}', f'--output_dir={tmp_path / "out"}', *args)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[0].startswith(expected), result.stderr
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_config_file_without_get_config_is_named(tmp_path):
  config = tmp_path / 'no_get_config.py'
  config.write_text('x = 1\n')
  argv = ['convert', f'--config={config}']
  flag_values = flags.FlagValues()  # the error the command's own flags raise, without a process of its own
  config_flags.DEFINE_config_file('config', None, 'config', flag_values=flag_values)
  with pytest.raises(Exception) as raised, warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)  # ml_collections loads config files with load_module()
    flag_values(argv)
  assert cli._failing_config_file(raised.value, argv) == (  # pylint: disable=protected-access
      f'--config: config file {config} defines no get_config() (a config file returns its config from it)')


def test_broken_config_file_and_the_debug_switch(tmp_path):
  config = tmp_path / 'broken.py'
  config.write_text('def get_config():\n  return undefined_name\n')
  args = (f'--checkpoint_dir={tmp_path}', f'--output_dir={tmp_path / "out"}', f'--config={config}')
  result = _convert(*args)
  assert result.returncode == 2
  assert result.stderr.strip() == (f"error: --config: config file {config} line 2 raised NameError: name "
                                   "'undefined_name' is not defined")
  result = _convert(*args, env=dict(ENV, CASCADEFORMER_DEBUG='1'))
  assert result.returncode != 0 and 'Traceback (most recent call last)' in result.stderr


def test_convert_into_a_read_only_folder_ends_at_once(tmp_path):
  started = time.monotonic()
  result = failure_injection.run_with_read_only_folder(
      [sys.executable, '-m', 'cascadeformer_jax.convert', f'--checkpoint_dir={tmp_path}',
       f'--output_dir={tmp_path / "ro" / "converted"}'], tmp_path / 'ro', capture_output=True, text=True,
      cwd=REPO_ROOT, env=ENV, timeout=120)
  assert time.monotonic() - started < 60
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f'error: cannot write the output folder {tmp_path / "ro"}'), lines
  assert any(reason in lines[0] for reason in failure_injection.READ_ONLY_REASONS)


def test_call_maps_errors_and_signals_to_exit_codes(capsys):
  def interrupted():
    raise KeyboardInterrupt

  def terminated():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)

  def failing():
    raise ValueError('config.seed=-1: must be an integer in [0, 4.29497e+09]')

  def crashing():
    raise ZeroDivisionError('division by zero')

  previous = signal.getsignal(signal.SIGTERM)
  try:
    assert cli.call(interrupted, debug=False) == 130
    assert cli.call(terminated, debug=False) == 143
  finally:
    signal.signal(signal.SIGTERM, previous)
  assert cli.call(failing, debug=False) == 1
  assert cli.call(crashing, debug=False) == 1
  assert cli.call(lambda: 0, debug=False) == 0
  assert capsys.readouterr().err.splitlines() == [
      'interrupted', 'terminated', 'error: config.seed=-1: must be an integer in [0, 4.29497e+09]',
      'error: ZeroDivisionError: division by zero (set CASCADEFORMER_DEBUG=1 for the traceback)']


def test_build_cli_errors_are_one_line(tmp_path):
  from data_builders import build  # pylint: disable=g-import-not-at-top
  (tmp_path / 'file').write_text('x')
  result = subprocess.run([sys.executable, '-m', 'data_builders.build', 'synthetic_actions', '--config=tiny',
                           f'--data_dir={tmp_path / "file" / "data"}', '--quiet'], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=ENV, timeout=120)
  assert result.returncode == 1
  assert result.stderr.strip() == (f'error: cannot write the data dir {tmp_path / "file" / "data"}: '
                                   f'{tmp_path / "file"} is not a folder')
  assert build  # imported without side effects


def test_config_help_prints_the_schema_without_a_config():
  from cascadeformer_jax.config import schema  # pylint: disable=g-import-not-at-top
  result = subprocess.run([sys.executable, '-m', 'cascadeformer_jax.main', '--config_help'], capture_output=True,
                          text=True, cwd=REPO_ROOT, env=ENV, timeout=120)
  assert result.returncode == 0, result.stderr
  listed = [match.groups() for match in re.finditer(r'^(\S+)  \[(\w+)\]  default: ', result.stdout,
                                                     re.MULTILINE)]
  assert listed == [(field.path, field.scope) for field in schema.FIELDS]
  epochs = ('pretrain.epochs  [pretrain]  default: 1\n    training epochs of the stage\n'
            '    allowed: an integer >= 1 (in modes train, pretrain)')
  assert epochs in result.stdout
