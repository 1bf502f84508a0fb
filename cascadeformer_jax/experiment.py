"""A run of an experiment config: its mode chains the stages and evaluations.

  train      pretrain -> finetune -> final evaluation on the test split (the default)
  pretrain   stage 1 only
  finetune   stage 2 (T1 from this run's pretraining, --config.init_from, or scratch) -> final evaluation
  eval       final evaluation of this run's classifier or of --config.init_from
  probe      linear probe and kNN of a frozen pretrained (or random) T1

Everything lands in the work directory (cascadeformer_jax/workdir.py); rerunning the same command resumes.
"""

import json
import time
from typing import Any

import jax
import ml_collections

from cascadeformer_jax import checkpoint_io
from cascadeformer_jax import configuration
from cascadeformer_jax import data as data_lib
from cascadeformer_jax import model_sources
from cascadeformer_jax import objectives
from cascadeformer_jax import partitioning
from cascadeformer_jax import runtime
from cascadeformer_jax import workdir as workdir_lib
from cascadeformer_jax.data import sources
from cascadeformer_jax.evaluate import evaluators
from cascadeformer_jax.evaluate import protocols
from cascadeformer_jax.evaluate.final_evaluation import FinalEvaluation
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.train import reporting
from cascadeformer_jax.train import trainer

MODES = ('train', 'pretrain', 'finetune', 'eval', 'probe')
TrainingError = trainer.TrainingError


def check_config(config: ml_collections.ConfigDict, model_config: ModelConfig) -> None:
  """Clear errors for configs that cannot work, before any data is read."""
  if config.mode not in MODES:
    raise ValueError(f'config.mode must be one of {MODES}, got {config.mode!r}')
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
  for stage in workdir_lib.STAGES:
    selection = config[stage].get('select_best', 'last')
    if selection not in trainer.SELECTIONS:
      raise ValueError(f'config.{stage}.select_best must be one of {trainer.SELECTIONS}, got {selection!r}')
    if selection == 'holdout' and not config.data.holdout_fraction:
      raise ValueError(f"config.{stage}.select_best='holdout' needs config.data.holdout_fraction > 0")
  feature_prediction = objectives.objective_name(config.pretrain) == 'feature_prediction'
  if feature_prediction and config.pretrain.get('select_best', 'last') != 'last':
    raise ValueError("config.pretrain.select_best must be 'last' with the feature_prediction objective: its "
                     'validation error is measured against a target network that keeps training, so it is not '
                     'comparable between epochs')
  protocols.requested(config)
  runtime.parse_profile_steps(config.get('profile_steps', ''))
  if config.get('matmul_precision', 'default') not in runtime.MATMUL_PRECISIONS:
    raise ValueError(f'config.matmul_precision must be one of {runtime.MATMUL_PRECISIONS}, got '
                     f'{config.matmul_precision!r}')
  if config.get('prng_impl', 'threefry2x32') not in runtime.PRNG_IMPLS:
    raise ValueError(f'config.prng_impl must be one of {runtime.PRNG_IMPLS}, got {config.prng_impl!r}')


def setup_runtime(config: ml_collections.ConfigDict) -> None:
  """Process-wide JAX settings of a run, applied before its first computation."""
  runtime.apply_matmul_precision(config.get('matmul_precision', 'default'))
  runtime.apply_prng_impl(config.get('prng_impl', 'threefry2x32'))
  runtime.setup_compilation_cache(config.get('compilation_cache_dir', ''))


def _stage_evaluator(run: trainer.Run, stage: str):
  """The evaluator a stage asks at the end of its epochs, or None when nothing is evaluated during training."""
  split = trainer.eval_split(run.config, stage)
  if split is None or not run.config.eval.every_epochs:
    return None
  config = run.config
  if stage == trainer.PRETRAIN:
    return evaluators.PretrainEvaluator(run.model_config, config.pretrain, config.data, split,
                                        config.eval.batch_size, run.mesh, config.seed)
  return protocols.make('standard', config, run.model_config, split, run.mesh)


def _pretrained_t1(run: trainer.Run, purpose: str, alternative: str = '') -> Any:
  """T1 parameters of this run's pretraining stage, or of config.init_from (a pretrained or a classifier model)."""
  pretrained_dir = run.workdir.final_dir(trainer.PRETRAIN)
  source = run.config.init_from or (str(pretrained_dir) if checkpoint_io.is_model_dir(pretrained_dir) else '')
  if not source:
    raise TrainingError(f'{purpose} needs a pretrained T1: run --config.mode=train (or pretrain) first, pass '
                        f'--config.init_from=<model dir | work dir | hf:folder>{alternative}')
  loaded = model_sources.load(source, (checkpoint_io.PRETRAINED, checkpoint_io.CLASSIFIER), run.model_config,
                              any_pretraining_head=True)
  return jax.device_get(loaded.params['t1'])


def _classifier_to_report(run: trainer.Run) -> model_sources.LoadedModel:
  """Which classifier a run reports: init_from in eval mode; else best (when selection is on), else final."""
  if run.config.mode == 'eval' and run.config.init_from:
    return model_sources.load(run.config.init_from, (checkpoint_io.CLASSIFIER,), run.model_config)
  for directory in run.workdir.classifier_dirs(run.config.finetune.get('select_best', 'last')):
    if checkpoint_io.is_model_dir(directory):
      return model_sources.load(directory, (checkpoint_io.CLASSIFIER,), run.model_config)
  raise TrainingError(f'no classifier to evaluate: {run.workdir.final_dir(trainer.FINETUNE)} does not exist; train '
                      'first or pass --config.init_from=<model dir | work dir | hf:folder>')


def final_evaluation(run: trainer.Run) -> dict[str, Any]:
  """Evaluates the run's classifier on the test split and writes results.json, report.md and the confusion
  matrix into the work directory."""
  loaded = _classifier_to_report(run)
  evaluation = FinalEvaluation(run.config, run.model_config, run.mesh)
  results = evaluation.run(partitioning.replicate(loaded.params, run.mesh), loaded.location)
  results['matmul_precision'] = run.config.get('matmul_precision', 'default')
  results['devices'] = {k: v for k, v in runtime.describe_devices().items() if k != 'process_index'}
  run.writer.write('test', 0, {k: results[k] for k in ('accuracy', 'top5', 'loss', 'mean_class_accuracy', 'count')},
                   split=evaluation.split)
  evaluation.write(run.workdir.path, results)
  return results


def probe(run: trainer.Run) -> dict[str, Any]:
  """Linear-probe and kNN accuracy of the frozen pretrained (or random) T1; writes probe.json."""
  started = time.time()
  config = run.config
  if config.probe.get('t1_init', 'pretrained') == 'scratch':
    t1_params = trainer.random_t1(run)
  else:
    t1_params = _pretrained_t1(run, 'the probe', ', or set --config.probe.t1_init=scratch (a random T1)')
  evaluator = evaluators.ProbeEvaluator(run.model_config, config.data, config.probe, config.eval.batch_size,
                                        run.mesh)
  results = evaluator.run(partitioning.replicate(t1_params, run.mesh))
  results = {'split': config.data.eval_split, 'label_fraction': config.data.get('label_fraction', 1.0), **results,
             'seconds': round(time.time() - started, 2)}
  run.writer.write('probe', 0, {k: v for k, v in results.items() if isinstance(v, float)},
                   split=config.data.eval_split)
  if jax.process_index() == 0:
    run.workdir.probe_file.write_text(json.dumps(results, indent=2) + '\n')
  return results


def prepare_workdir(config: ml_collections.ConfigDict) -> workdir_lib.Workdir:
  """Creates the work directory and writes config.json (process 0; the others wait until it exists)."""
  workdir = workdir_lib.Workdir(config.workdir)
  if jax.process_index() == 0:
    workdir.path.mkdir(parents=True, exist_ok=True)
    workdir.config_file.write_text(config.to_json_best_effort(indent=2, sort_keys=True) + '\n')
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices('prepare_workdir')
  return workdir


def run(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Runs ``config.mode`` and returns a summary ({'workdir', 'seconds'} plus 'test' or 'probe' results)."""
  configuration.resolve_dataset(config)  # folder datasets: build on first use, read joints and classes
  model_config = configuration.model_config(config)
  check_config(config, model_config)
  setup_runtime(config)
  mesh = partitioning.make_mesh(config.get('mesh', {}).get('num_devices', 0))
  runtime.print_banner({'mesh': f'{mesh.devices.size} devices',
                        'matmul_precision': config.get('matmul_precision', 'default'),
                        'prng': config.get('prng_impl', 'threefry2x32')})
  trained = {'train': workdir_lib.STAGES, 'pretrain': (trainer.PRETRAIN,), 'finetune': (trainer.FINETUNE,)}
  for stage in trained.get(config.mode, ()):
    partitioning.check_batch_size(config[stage].batch_size, mesh, f'config.{stage}.batch_size')
  partitioning.check_batch_size(config.eval.batch_size, mesh, 'config.eval.batch_size')
  sources.ensure_built(config.data)
  workdir = prepare_workdir(config)
  profile = runtime.parse_profile_steps(config.get('profile_steps', ''))
  if profile is not None and config.mode in ('train', 'pretrain', 'finetune'):
    stage = trainer.profiled_stage(config)
    if config.mode != 'train' and stage != config.mode:
      raise ValueError(f'config.profile_steps={config.profile_steps!r} names the {stage} stage, which '
                       f'--config.mode={config.mode} does not train')
    # A range outside the stage is an error now, not after hours of training.
    profile.check_within(trainer.stage_total_steps(config, stage), stage)
  writer = reporting.MetricWriter(workdir.path, tensorboard=config.tensorboard)
  context = trainer.Run(config, model_config, workdir, mesh, writer, profile)
  summary: dict[str, Any] = {'workdir': str(workdir.path)}
  started = time.time()
  try:
    pretrained = None
    if config.mode in ('train', 'pretrain'):
      pretrained = trainer.run_pretrain(context, _stage_evaluator(context, trainer.PRETRAIN))
    if config.mode in ('train', 'finetune'):
      t1_params = None
      if config.finetune.t1_init != 'scratch' and not checkpoint_io.is_model_dir(
          workdir.final_dir(trainer.FINETUNE)):
        t1_params = (pretrained['t1'] if pretrained is not None else _pretrained_t1(
            context, 'fine-tuning', ', or set --config.finetune.t1_init=scratch'))
      trainer.run_finetune(context, t1_params, _stage_evaluator(context, trainer.FINETUNE))
    if config.mode in ('train', 'finetune', 'eval'):
      summary['test'] = final_evaluation(context)
    if config.mode == 'probe':
      summary['probe'] = probe(context)
  finally:
    writer.close()
  if jax.process_index() == 0:
    reporting.plot_curves(workdir.path)
  summary['seconds'] = round(time.time() - started, 1)
  return summary
