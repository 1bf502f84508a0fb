"""Experiment configs: loading config files and building the model part of them."""

import copy
import importlib.util
import json
import logging
import os
import pathlib
from typing import Any
import warnings

import ml_collections

from cascadeformer_jax.config import schema
from cascadeformer_jax.models import presets
from cascadeformer_jax.models.config import ModelConfig
from cascadeformer_jax.models.pretraining import model_config_for_objective


# What a run does (cascadeformer_jax/experiment/runner.py): 'train' (pretrain + finetune + test), 'pretrain', 'finetune',
# 'eval' (test evaluation of a trained classifier), 'probe' (linear probe and kNN of a frozen T1) or 'few_shot'.
MODES = schema.MODES
_STAGE_FIELDS = ('epochs', 'batch_size', 'optimizer', 'lr', 'weight_decay', 'momentum', 'nesterov', 'schedule',
                 'schedule_unit', 'warmup_fraction', 'min_lr', 'grad_clip_norm', 'select_best')


def pretrain_objective_defaults() -> dict[str, Any]:
  """The objective fields of ``config.pretrain`` with their defaults (objectives/losses.py reads them)."""
  pretrain = schema.defaults('pretrain')
  return dict(objective=pretrain['objective'], focal=ml_collections.ConfigDict(pretrain['focal']),
              feature_prediction=ml_collections.ConfigDict(pretrain['feature_prediction']))


def stage_config(**overrides) -> ml_collections.ConfigDict:
  """Defaults of one training stage (the fields ``config.pretrain`` and ``config.finetune`` share, with the
  pretraining defaults); see train/optim.py."""
  pretrain = schema.defaults('pretrain')
  stage = ml_collections.ConfigDict({name: pretrain[name] for name in _STAGE_FIELDS})
  stage.update(overrides)
  return stage


def experiment_config(dataset: str, model: ModelConfig, data_variant: str | None = None
                      ) -> ml_collections.ConfigDict:
  """An experiment config with every field the training entry point reads, set to the defaults of
  config/schema.py (``python -m cascadeformer_jax.main --config_help`` lists them)."""
  from cascadeformer_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict({name: value for name, value in schema.defaults().items() if name != 'data'})
  config.dataset = dataset
  config.model = ml_collections.ConfigDict(model.to_dict())
  config.data = data_lib.default_data_config(dataset, data_variant)
  return config


def published_experiment_config(dataset: str, variant: str) -> ml_collections.ConfigDict:
  """The experiment config of a published model: its dataset, architecture and published accuracy."""
  config = experiment_config(dataset, presets.published_model_config(dataset, variant), data_variant=variant)
  config.variant = variant
  config.published_accuracy = presets.PUBLISHED_ACCURACY[(dataset, variant)]
  return config


def ntu120_experiment_config(recipe: ml_collections.ConfigDict, dataset: str,
                             variant: str) -> ml_collections.ConfigDict:
  """An NTU120 experiment that takes its training recipe (the pretrain, finetune and eval sections) from `recipe`,
  the config of the NTU60 benchmark `presets.NTU120_RECIPE_SOURCES[dataset]`, with the NTU120 data and that
  benchmark's architecture with 120 classes."""
  config = experiment_config(dataset, presets.ntu120_model_config(dataset, variant), data_variant=variant)
  config.variant = variant
  for section in ('pretrain', 'finetune', 'eval'):
    config[section] = copy.deepcopy(recipe[section])
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
  objective = config.get('pretrain', {}).get('objective', 'masked_joints')
  if 'model' in config:
    config = config['model']
  return model_config_for_objective(objective, ModelConfig.from_dict(config))


def resolve_dataset(config: ml_collections.ConfigDict, announce: bool = True) -> None:
  """Prepares a folder dataset (`config.data.folder`): builds its content on first use, fills config.data from its
  metadata (classes, joints, coordinates, layout) and sets the model's num_joints, coords and num_classes to
  match. Records what the data is in `config.data.identity` (part of the stage recipes): a folder's content
  fingerprint, or a built-in dataset's builder version and split sizes when it is built.
  """
  from cascadeformer_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.data import sources  # pylint: disable=g-import-not-at-top

  if config.data.layout != 'generic':
    sources.record_identity(config.data)
    return
  resolve_person_selection(config)
  if not config.data.folder and not config.data.tfds_config:
    raise ValueError('a folder dataset needs --config.data.folder=<folder with dataset.json, labels.csv and the '
                     'clips>')
  sources.ensure_built(config.data, announce=announce)
  sources.resolve_folder(config.data)
  _, joints, channels = data_lib.model_input_shape(config.data)
  config.model.num_joints = joints
  config.model.coords = channels
  config.model.num_classes = config.data.num_classes


def stored_recipe(workdir: str | os.PathLike) -> dict[str, Any] | None:
  """What ``workdir`` was trained with, as {dotted field: value}: a stage's recipe.json (fine-tuning's first), else
  its config.json; None for a new work directory."""
  from cascadeformer_jax.run import recipe as recipe_lib  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.run import workdir as workdir_lib  # pylint: disable=g-import-not-at-top

  paths = workdir_lib.Workdir(workdir)
  for path in [paths.recipe_file(stage) for stage in reversed(workdir_lib.STAGES)] + [paths.config_file]:
    if path.is_file():
      try:
        return recipe_lib.flatten(json.loads(path.read_text()))
      except (OSError, ValueError) as e:
        raise ValueError(f'{path}: not a readable JSON file ({e})') from None
  return None


def resolve_person_selection(config: ml_collections.ConfigDict) -> None:
  """Replaces a folder dataset's person_selection 'auto' with the rule its work directory was trained with, so that
  runs trained before 'observed_motion' became the default keep theirs; a new run (or a restart) gets
  'observed_motion'. A rule the config sets is kept as it is (a different one than trained is a changed recipe)."""
  from cascadeformer_jax.data import generic  # pylint: disable=g-import-not-at-top

  settings = config.data.get('generic')
  if settings is None or settings.get('person_selection') != generic.AUTO_PERSON_SELECTION:
    return
  workdir = config.get('workdir', '')
  stored = stored_recipe(workdir) if workdir and not config.get('restart', False) else None
  settings.person_selection = generic.trained_person_selection(stored)


def quiet_logs() -> None:
  """Silences absl/Orbax chatter and known-harmless warnings for command-line tools.

  Orbax logs the tracebacks of failed background saves, which the run reports itself in one line
  (io_checks.WriteError); they are shown with the debug switch ($CASCADEFORMER_DEBUG=1).
  """
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.run import io_checks  # pylint: disable=g-import-not-at-top

  absl_logging.set_verbosity(absl_logging.WARNING)
  for name in ('absl', 'orbax', 'jax._src.xla_bridge'):
    logging.getLogger(name).setLevel(logging.ERROR)
  io_checks.hide_logged_errors()
  warnings.filterwarnings('ignore', category=UserWarning, module='orbax')
