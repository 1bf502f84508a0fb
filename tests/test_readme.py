"""The README's first commands stay true: CI runs exactly its test command, the demo config and the install extras
exist, and the pinned test versions satisfy the declared ranges."""

import pathlib
import re
import tomllib

from packaging import requirements
from packaging import utils

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
  first_block = re.search(r'```bash\n(.*?)```', (REPO_ROOT / 'README.md').read_text(), re.S).group(1)
  return [line for line in first_block.splitlines() if line and not line.startswith('#')]


def _command(word: str) -> str:
  matches = [line for line in _readme_commands() if word in line]
  assert len(matches) == 1, f'expected one command with {word!r} in the README block: {matches}'
  return matches[0]


def _pyproject() -> dict:
  return tomllib.loads((REPO_ROOT / 'pyproject.toml').read_text())


def _constraints() -> dict[str, str]:
  pins = {}
  for line in (REPO_ROOT / 'constraints.txt').read_text().splitlines():
    line = line.split('#')[0].strip()
    if line:
      name, version = line.split('==')
      pins[utils.canonicalize_name(name)] = version
  return pins


def test_ci_runs_the_readme_test_command():
  test = _command('pytest')
  ci_lines = (REPO_ROOT / '.ci' / 'run').read_text().splitlines()
  assert test in ci_lines
  assert '-c constraints.txt' in test


def test_demo_command_points_at_an_existing_config():
  demos = [line for line in _readme_commands() if 'cascadeformer_jax.main' in line]
  assert demos
  for demo in demos:
    config = re.search(r'--config=(\S+)', demo).group(1)
    assert (REPO_ROOT / config).is_file()
  assert 'pip install -e . ' in demos[0]


def test_gpu_command_installs_a_cuda_extra_of_jax():
  gpu = _command("'.[cuda")
  extra = re.search(r"'\.\[(cuda\d+)\]'", gpu).group(1)
  extras = _pyproject()['project']['optional-dependencies']
  declared = [requirements.Requirement(r) for r in extras[extra]]
  assert [(r.name, sorted(r.extras)) for r in declared] == [('jax', [extra])]
  jax_range = next(requirements.Requirement(r) for r in _pyproject()['project']['dependencies']
                   if r.startswith('jax'))
  assert declared[0].specifier == jax_range.specifier  # the plugin follows the same jax versions
  assert set(extras) >= {'cuda12', 'cuda13', 'test', 'torch'}


def test_constraints_pin_every_dependency_within_its_range():
  pins = _constraints()
  project = _pyproject()['project']
  declared = project['dependencies'] + project['optional-dependencies']['test'] + \
      project['optional-dependencies']['torch']
  for text in declared:
    requirement = requirements.Requirement(text)
    name = utils.canonicalize_name(requirement.name)
    assert name in pins, f'constraints.txt does not pin {name}'
    assert requirement.specifier.contains(pins[name], prereleases=True), \
        f'constraints.txt pins {name}=={pins[name]}, outside pyproject.toml range {requirement.specifier}'
  assert pins['torch'] == '2.13.0' and 'jaxlib' in pins
  # Ranges, not pins, in the package metadata (beside the optional torch, pinned on purpose).
  assert not [r for r in project['dependencies'] if '==' in r]
