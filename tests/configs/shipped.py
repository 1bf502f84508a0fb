"""Every shipped config file, loaded with each argument it takes (the smoke config: every dataset and variant)."""

import pathlib
from typing import Iterator

import ml_collections

from cascadeformer_jax.config import configuration

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / 'configs'
SMOKE_DATASETS = ('penn_action', 'n_ucla', 'ntu60_xsub', 'ntu60_xview', 'ntu120_xsub', 'ntu120_xset',
                  'synthetic_actions')
VARIANTS = ('1.0', '1.1', '1.2')


def config_arguments(file_name: str) -> tuple[str | None, ...]:
  """The arguments a config file is loaded with (None: the file takes none)."""
  if file_name == 'smoke.py':
    return tuple(f'{dataset},{variant}' for dataset in SMOKE_DATASETS for variant in VARIANTS)
  if file_name == 'custom.py':
    return VARIANTS
  return (None,)


def shipped_configs() -> Iterator[tuple[str, ml_collections.ConfigDict]]:
  """(name as on the command line, e.g. 'smoke.py:n_ucla,1.1', config) of every shipped config."""
  for path in sorted(CONFIG_DIR.glob('*.py')):
    for arg in config_arguments(path.name):
      name = path.name if arg is None else f'{path.name}:{arg}'
      yield name, configuration.load_config_file(path, arg)
