"""Every command and code block of the README is checked: Python blocks run as written (against generated weights
of the published sizes), and every `python -m` command names an existing module, config file, flags that the
module defines and `--config.` fields that the config has."""

import functools
import json
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from cascadeformer_jax.config import config_checks
from cascadeformer_jax.config import schema
from cascadeformer_jax.config import configuration
from cascadeformer_jax.models import presets
from tests.checkpoints import original_layout
from tests.checkpoints import pt_files

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (REPO_ROOT / 'README.md').read_text()


def _blocks(language: str) -> list[str]:
  return re.findall(rf'```{language}\n(.*?)```', README, re.S)


def _commands() -> list[str]:
  commands = []
  for block in _blocks('bash'):
    text = re.sub(r'\\\n\s*', ' ', block)  # continuation lines
    for line in text.splitlines():
      line = line.split('  #')[0].strip()
      for part in re.split(r'&&|;', line):
        part = part.strip()
        if part.startswith('python -m ') and not part.startswith(('python -m pytest', 'python -m pip')):
          commands.append(part)
  return commands


COMMANDS = _commands()


# One interpreter lists the flags of every module (each import of jax, torch or tfds is paid once, not per module).
# Each module is imported (absl CLIs of the package) or run with `--help` (other scripts) as if it were the first: the
# flags its package defined and the package modules it imported are dropped before the next one, so none sees
# another's flags. The package's CLIs go first, convert (which imports orbax, grain) last of them, so that no CLI
# sees the flags of a library (absl.app, absl.logging excepted) that only a later one imports.
# (data_builders stays imported: TFDS registers each dataset once per process; its scripts define argparse options.)
_LIST_FLAGS = '''
import contextlib, importlib, io, json, re, runpy, sys
from absl import flags
PACKAGES = ('cascadeformer_jax', 'benchmarks', 'configs')
flags_of = {}
for module in sys.argv[1:]:
  flags_before, modules_before = set(flags.FLAGS), set(sys.modules)
  if module.startswith('cascadeformer_jax'):
    importlib.import_module(module)
    flags_of[module] = sorted(flags.FLAGS)
  else:
    sys.argv = [module, '--help']
    help_text = io.StringIO()
    with contextlib.redirect_stdout(help_text):
      try:
        runpy.run_module(module, run_name='__main__', alter_sys=True)
      except SystemExit as exit_status:
        assert exit_status.code in (0, None), (module, exit_status.code)
    flags_of[module] = sorted(set(re.findall(r'--(\\w+)', help_text.getvalue())))
  for name in set(flags.FLAGS) - flags_before:
    if flags.FLAGS.find_module_defining_flag(name, '__main__').split('.')[0] in PACKAGES + ('__main__',):
      delattr(flags.FLAGS, name)  # a library's flags (absl.app, absl.logging) stay, as its module stays imported
  for name in set(sys.modules) - modules_before:
    if name.split('.')[0] in PACKAGES:
      del sys.modules[name]
print(json.dumps(flags_of))
'''


@functools.lru_cache(maxsize=None)
def _flags_of_all_modules() -> dict[str, frozenset[str]]:
  """The flags each command's module accepts: absl flags of the package's CLIs, `--help` of other scripts."""
  modules = []
  for command in COMMANDS:
    module = command.split()[2]
    if module.startswith('cascadeformer_jax') and (REPO_ROOT / module.replace('.', '/') / '__main__.py').is_file():
      module += '.__main__'
    if module not in modules:
      modules.append(module)
  modules.sort(key=lambda module: (not module.startswith('cascadeformer_jax'), module == 'cascadeformer_jax.convert'))
  result = subprocess.run([sys.executable, '-c', _LIST_FLAGS, *modules], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300,
                          env={'PYTHONPATH': str(REPO_ROOT), 'JAX_PLATFORMS': 'cpu', 'PATH': '/usr/bin:/bin'})
  assert result.returncode == 0, result.stderr[-2000:]
  flags_of = json.loads(result.stdout.splitlines()[-1])
  return {module: frozenset(names) for module, names in flags_of.items()}


def _flags_of(module: str) -> frozenset[str]:
  if module.startswith('cascadeformer_jax') and (REPO_ROOT / module.replace('.', '/') / '__main__.py').is_file():
    module += '.__main__'
  return _flags_of_all_modules()[module]


def test_the_readme_has_commands_and_code():
  assert len(COMMANDS) >= 10 and len(_blocks('python')) >= 1


@pytest.mark.parametrize('command', COMMANDS)
def test_every_command_names_what_exists(command):
  words = shlex.split(command.replace('<', '"<').replace('>', '>"'))
  module = words[2]
  module_path = REPO_ROOT / (module.replace('.', '/') + '.py')
  assert module_path.is_file() or (REPO_ROOT / module.replace('.', '/') / '__main__.py').is_file(), module
  options = [w for w in words[3:] if w.startswith('--') and not w.startswith('--config.')]
  config_file = next((w.split('=', 1)[1] for w in options if w.startswith('--config=')), None)
  known = _flags_of(module)
  for option in options:
    name = option[2:].split('=', 1)[0].strip('[]')
    assert name in known, f'{command}: {module} has no flag --{name}'
  if config_file and '<' not in config_file and config_file.partition(':')[0].endswith('.py'):
    path, _, arg = config_file.partition(':')
    assert (REPO_ROOT / path).is_file(), f'{command}: no config file {path}'
    if '<' in arg:
      return
    config = configuration.load_config_file(REPO_ROOT / path, arg or None)
    for word in words[3:]:
      if word.startswith('--config.'):
        field = word[len('--config.'):].split('=', 1)[0]
        assert schema.get_field(config, field) is not schema.ABSENT, f'{command}: no field {field}'


def test_python_blocks_run_as_written(tmp_path):
  """The published-weights example, with random weights of the published N-UCLA 1.0 sizes in BEST_N_UCLA_1_0/."""
  folder = tmp_path / 'BEST_N_UCLA_1_0'
  folder.mkdir()
  for role, tensors in original_layout.random_state_dicts(presets.published_model_config('n_ucla', '1.0')).items():
    pt_files.write_state_dict(folder / f'NUCLA_{role}.pt', tensors)
  for block in _blocks('python'):
    result = subprocess.run([sys.executable, '-c', block + '\nprint("block ran")'], capture_output=True, text=True,
                            cwd=tmp_path, timeout=600,
                            env={'PYTHONPATH': str(REPO_ROOT), 'JAX_PLATFORMS': 'cpu', 'PATH': '/usr/bin:/bin'})
    assert result.returncode == 0 and result.stdout.strip().endswith('block ran'), result.stderr[-3000:]
