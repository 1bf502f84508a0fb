"""Experiment configs: loading config files and building the model part of them."""

import copy
import importlib.util
import logging
import os
import pathlib
from typing import Any
import warnings

import ml_collections

from cascadeformer_jax.models import presets
from cascadeformer_jax.models.config import ModelConfig
from cascadeformer_jax.models.pretraining import model_config_for_objective
from cascadeformer_jax.run import modes


# What a run does (cascadeformer_jax/experiment/runner.py): 'train' (pretrain + finetune + test), 'pretrain', 'finetune',
# 'eval' (test evaluation of a trained classifier), 'probe' (linear probe and kNN of a frozen T1) or 'few_shot'.
# Each mode's stages and evaluation: cascadeformer_jax/run/modes.py.
MODES = modes.MODES


def pretrain_objective_defaults() -> dict[str, Any]:
  """The objective fields of ``config.pretrain`` with their defaults (objectives/losses.py reads them)."""
  return dict(
      objective='masked_joints',
      focal=ml_collections.ConfigDict(dict(windows=(4, 8, 12), k=1.0, eps=1e-6)),
      feature_prediction=ml_collections.ConfigDict(dict(
          prediction_weight=5.0, variance_weight=5.0, covariance_weight=1.0, gamma=1.0)))


def stage_config(**overrides) -> ml_collections.ConfigDict:
  """Defaults of one training stage (``config.pretrain`` / ``config.finetune``); see train/optim.py."""
  stage = ml_collections.ConfigDict(dict(
      epochs=1, batch_size=4, optimizer='adam', lr=1e-4, weight_decay=0.0, momentum=0.9, nesterov=False,
      schedule='constant', schedule_unit='step', warmup_fraction=0.0, min_lr=0.0, grad_clip_norm=0.0,
      # 'last' keeps the last epoch; 'holdout' selects on data.holdout_fraction of the training split; 'test'
      # selects on the test split, as the original did for some runs (leaks the test set: reproduction only).
      select_best='last'))
  stage.update(overrides)
  return stage


def experiment_config(dataset: str, model: ModelConfig, data_variant: str | None = None
                      ) -> ml_collections.ConfigDict:
  """An experiment config with every field the training entry point reads, set to neutral defaults."""
  from cascadeformer_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict()
  config.dataset = dataset
  # 'train' (pretrain + finetune + test), 'pretrain', 'finetune', 'eval', 'probe' or 'few_shot'.
  config.mode = 'train'
  config.workdir = ''  # Default: workdirs/<config file name>.
  config.seed = 42
  config.init_from = ''  # Model directory, training work directory or 'hf:<published folder>'.
  config.published_accuracy = 0.0
  config.model = ml_collections.ConfigDict(model.to_dict())
  config.data = data_lib.default_data_config(dataset, data_variant)
  # objective: 'masked_joints' (the paper's), 'focal', 'query_decoder' or 'feature_prediction'
  # (objectives/losses.py); focal / feature_prediction hold that objective's settings.
  config.pretrain = stage_config(mask_ratio=0.3, mask_mode='joints', **pretrain_objective_defaults())
  # t1_init: 'pretrained' (this run's stage 1 or init_from) or 'scratch'. freeze: 'none', 't1', 't1_except_last'.
  config.finetune = stage_config(optimizer='adamw', label_smoothing=0.0, freeze='none', t1_init='pretrained')
  # protocols: comma-separated extra test protocols reported side by side (evaluate/protocols.py), e.g.
  # 'cross_attn_4_heads,per_clip'. multi_clip_fraction: window length of the 'multi_clip' protocol.
  config.eval = ml_collections.ConfigDict(dict(batch_size=4, every_epochs=1, protocols='', multi_clip_fraction=0.8))
  # mode 'probe': linear probe (SGD + cosine decay on standardised frozen features) and kNN (cosine) of T1;
  # t1_init 'pretrained' (this run's stage 1 or init_from) or 'scratch' (a random T1, the baseline).
  config.probe = ml_collections.ConfigDict(dict(epochs=100, batch_size=256, lr=0.1, momentum=0.9,
                                                weight_decay=0.0, knn_k=1, seed=0, t1_init='pretrained'))
  # mode 'few_shot': frozen embeddings of init_from (or this work dir's model), support clips drawn per class from
  # the training split, queries from the evaluation split (evaluate/few_shot.py). shots: comma-separated shot
  # counts; runs: draws per shot count; embedding: 'pooled' (the classifier's pooled feature; T1's for a pretrained
  # model) or an intermediate 't1_features', 't2_features', 'fused', 'logits' (frame-pooled); replace: sample with
  # replacement when a class has fewer training clips than shots; procedure: 'prototype' (cosine nearest
  # prototype) or 'original_transfer_ucla' (the original code's NTU -> N-UCLA procedure); protocol: '' or
  # 'ntu120_one_shot' (the official NTU120 one-shot protocol: 20 classes, their exemplars as the support set);
  # mapping: how clips reach a model of another joint layout (data/layouts.py): '' = anatomical,
  # 'original_partition_order' = the original code's N-UCLA -> NTU map.
  config.few_shot = ml_collections.ConfigDict(dict(shots='1,5', runs=10, seed=0, embedding='pooled', replace=False,
                                                   procedure='prototype', protocol='', mapping=''))
  # Checkpoints at the end of every `every_epochs`-th epoch, every `every_steps` steps (0 = off) and at the end.
  config.checkpoint = ml_collections.ConfigDict(dict(keep=2, every_steps=0, every_epochs=1))
  config.log_every_steps = 10
  config.progress = True
  config.tensorboard = True
  # Multi-process jobs: explicit coordinator (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID), else
  # with auto_detect a SLURM step or an Open MPI launch of several tasks (partitioning.maybe_initialize_distributed).
  config.distributed = ml_collections.ConfigDict(dict(coordinator_address='', num_processes=0, process_id=-1,
                                                      auto_detect=True))
  # num_devices: the devices the batch is split over (0 = every device of every process).
  config.mesh = ml_collections.ConfigDict(dict(num_devices=0))
  # Float32 matmuls: 'default' (TF32 on Ampere/Hopper GPUs, bfloat16 passes on TPUs, full float32 on CPUs),
  # 'tensorfloat32' or 'highest' (full float32 everywhere). bfloat16 compute is model.dtype. See runtime.py.
  config.matmul_precision = 'default'
  # PRNG of parameter init, dropout and masks: 'threefry2x32' (JAX's default), or 'rbg' / 'unsafe_rbg' (faster on
  # accelerators; other random streams).
  config.prng_impl = 'threefry2x32'
  # Persistent XLA compilation cache: '' = ~/.cache/cascadeformer_jax/xla (or under $XDG_CACHE_HOME), 'off' = none.
  config.compilation_cache_dir = ''
  # 'a:b' (or '<stage>:a:b') writes a jax.profiler trace of steps a to b-1 of the first trained stage (or of that
  # stage) into <workdir>/profile, for TensorBoard or Perfetto.
  config.profile_steps = ''
  # restart: move the work directory's earlier results aside (into <workdir>.before-restart-<time>) and start over.
  config.restart = False
  # debug: show library tracebacks (also $CASCADEFORMER_DEBUG=1).
  config.debug = False
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
  """Prepares a folder dataset (`config.data.folder`): builds it on first use (or when the folder changed), fills
  config.data from its metadata (classes, joints, coordinates, layout) and sets the model's num_joints, coords and
  num_classes to match. A no-op for the built-in datasets.
  """
  from cascadeformer_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.data import sources  # pylint: disable=g-import-not-at-top

  if config.data.layout != 'generic':
    return
  if not config.data.folder and not config.data.tfds_config:
    raise ValueError('a folder dataset needs --config.data.folder=<folder with dataset.json, labels.csv and the '
                     'clips>')
  sources.ensure_built(config.data, announce=announce)
  sources.resolve_folder(config.data)
  _, joints, channels = data_lib.model_input_shape(config.data)
  config.model.num_joints = joints
  config.model.coords = channels
  config.model.num_classes = config.data.num_classes


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
