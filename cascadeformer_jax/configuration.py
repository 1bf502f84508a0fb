"""Experiment configs: loading config files and building the model part of them."""

import importlib.util
import logging
import os
import pathlib
from typing import Any
import warnings

import ml_collections

from cascadeformer_jax.models import presets
from cascadeformer_jax.models.config import ModelConfig


def published_experiment_config(dataset: str, variant: str) -> ml_collections.ConfigDict:
  """The experiment config of a published model: its dataset, variant and architecture."""
  config = ml_collections.ConfigDict()
  config.dataset = dataset
  config.variant = variant
  config.model = ml_collections.ConfigDict(presets.published_model_config(dataset, variant).to_dict())
  config.published_accuracy = presets.PUBLISHED_ACCURACY[(dataset, variant)]
  return config


def load_config_file(path: str | os.PathLike, arg: str | None = None) -> ml_collections.ConfigDict:
  """Imports a config file and returns its ``get_config()`` (or ``get_config(arg)``)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'config file {path} does not exist')
  spec = importlib.util.spec_from_file_location(f'_cascadeformer_config_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise ValueError(f'config file {path} defines no get_config()')
  return module.get_config() if arg is None else module.get_config(arg)


def model_config(config: Any) -> ModelConfig:
  """A ModelConfig from a ModelConfig, a dict, an experiment ConfigDict (its ``model``) or a config file path."""
  if isinstance(config, ModelConfig):
    return config
  if isinstance(config, (str, os.PathLike)):
    config = load_config_file(config)
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  if not isinstance(config, dict):
    raise TypeError(f'cannot build a model config from {type(config).__name__}')
  if 'model' in config:
    config = config['model']
  return ModelConfig.from_dict(config)


def quiet_logs() -> None:
  """Silences absl/Orbax INFO chatter and known-harmless warnings for command-line tools."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top

  absl_logging.set_verbosity(absl_logging.WARNING)
  for name in ('absl', 'orbax', 'jax._src.xla_bridge'):
    logging.getLogger(name).setLevel(logging.ERROR)
  warnings.filterwarnings('ignore', category=UserWarning, module='orbax')
