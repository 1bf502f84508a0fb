"""Checks of an experiment config before any work: every field against its declaration, then the relations.

`validate(config)` checks every field against the allowed values declared in `config/schema.py` and raises
`ConfigError` with one line per violation, e.g.::

    config.pretrain.epochs=-1: must be an integer >= 1 (the stage trains in mode 'train')

Fields that a config does not have (the sub-config of another dataset) are skipped. `check_relations` then checks
what no single field can: the data fits the model, clips fit the positional table, a hold-out exists for holdout
selection, and the data config's run-time facts (`data.config.validate_data_config`). `check_experiment` runs both.
"""

from typing import Any

import ml_collections

from cascadeformer_jax import data as data_lib
from cascadeformer_jax import objectives
from cascadeformer_jax.config import configuration
from cascadeformer_jax.config import schema
from cascadeformer_jax.evaluate import few_shot
from cascadeformer_jax.evaluate import protocols
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.run import runtime

ConfigError = schema.ConfigError

# (field below `config.`, allowed values, condition or None = always) of every field with a fixed set of values.
CONSTRAINTS: tuple[tuple[str, Any, schema.Condition | None], ...] = tuple(
    (field.path, field.allowed, field.when) for field in schema.FIELDS
    if not isinstance(field.allowed, schema.FreeText))

# Fields with no fixed set of values (paths, names, addresses; what a dataset folder describes, checked when it is
# read or used).
FREE_TEXT = frozenset(field.path for field in schema.FIELDS if isinstance(field.allowed, schema.FreeText))


def violations(config: ml_collections.ConfigDict) -> list[str]:
  """One line per field of `config` whose value breaks its declaration (empty list = valid)."""
  return schema.violations(config)


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError listing every field of ``config`` outside its declared values."""
  schema.check(config)


def check_relations(config: ml_collections.ConfigDict, model_config: ModelConfig) -> None:
  """Raises ValueError for settings that cannot work together, or that the data cannot satisfy (after `validate`)."""
  data_lib.validate_data_config(config.data)
  frames, joints, coords = data_lib.model_input_shape(config.data)
  if (joints, coords) != (model_config.num_joints, model_config.coords):
    raise ValueError(f'the data gives {joints} joints x {coords} channels per frame (dataset '
                     f'{config.data.name}, representation {config.data.representation!r}) but the model expects '
                     f'{model_config.num_joints} x {model_config.coords}')
  if config.data.num_classes != model_config.num_classes:
    raise ValueError(f'the dataset has {config.data.num_classes} classes but model.num_classes = '
                     f'{model_config.num_classes}')
  if frames > model_config.pos_len:
    raise ValueError(f'clips of up to {frames} frames exceed model.pos_len = {model_config.pos_len}')
  for stage in (schema.PRETRAIN, schema.FINETUNE):
    if config[stage].get('select_best', 'last') == 'holdout' and not config.data.holdout_fraction:
      raise ValueError(f"config.{stage}.select_best='holdout' needs config.data.holdout_fraction > 0")
  feature_prediction = objectives.objective_name(config.pretrain) == 'feature_prediction'
  if feature_prediction and config.pretrain.get('select_best', 'last') != 'last':
    raise ValueError("config.pretrain.select_best must be 'last' with the feature_prediction objective: its "
                     'validation error is measured against a target network that keeps training, so it is not '
                     'comparable between epochs')
  protocols.requested(config)  # the multi_clip protocol needs an NTU-style dataset
  if config.mode == 'few_shot':
    few_shot.parse_shots(config.few_shot.shots)
  runtime.parse_profile_steps(config.get('profile_steps', ''))


def check_experiment(config: ml_collections.ConfigDict, model_config: ModelConfig | None = None) -> ModelConfig:
  """`validate`, then `check_relations` with the config's model (built from it unless given); returns the model."""
  validate(config)
  if model_config is None:
    model_config = configuration.model_config(config)
  check_relations(config, model_config)
  return model_config
