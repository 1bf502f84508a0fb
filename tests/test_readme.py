"""The README's first commands stay true: CI runs exactly its test command, and the demo config exists."""

import pathlib
import re

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
  first_block = re.search(r'```bash\n(.*?)```', (REPO_ROOT / 'README.md').read_text(), re.S).group(1)
  return [line for line in first_block.splitlines() if line and not line.startswith('#')]


def test_ci_runs_the_readme_test_command():
  demo, test = _readme_commands()
  ci_lines = (REPO_ROOT / '.ci' / 'run').read_text().splitlines()
  assert test in ci_lines
  assert 'pytest' in test


def test_demo_command_points_at_an_existing_config():
  demo, _ = _readme_commands()
  config = re.search(r'--config=(\S+)', demo).group(1)
  assert (REPO_ROOT / config).is_file()
  assert 'cascadeformer_jax.main' in demo
