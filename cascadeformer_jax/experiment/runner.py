"""A run of an experiment config: its mode chains the stages and evaluations.

  train      pretrain -> finetune -> final evaluation on the test split (the default)
  pretrain   stage 1 only
  finetune   stage 2 (T1 from this run's pretraining, --config.init_from, or scratch) -> final evaluation
  eval       final evaluation of this run's classifier or of --config.init_from
  probe      linear probe and kNN of a frozen pretrained (or random) T1
  few_shot   few-shot accuracy of frozen embeddings of --config.init_from (or of this run's model), possibly trained
             on another dataset: support clips per class from the training split, queries from the test split

Everything lands in the work directory (cascadeformer_jax/run/workdir.py); rerunning the same command resumes.
"""

import dataclasses
import datetime
import json
import os
import pathlib
import time
from typing import Any

import jax
from jax.experimental import multihost_utils
import ml_collections

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.config import config_checks
from cascadeformer_jax.config import configuration
from cascadeformer_jax import data as data_lib
from cascadeformer_jax.checkpoints import model_sources
from cascadeformer_jax.run import io_checks
from cascadeformer_jax.config import schema
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.run import recipe as recipe_lib
from cascadeformer_jax.run import runtime
from cascadeformer_jax.run import workdir as workdir_lib
from cascadeformer_jax.run import workdir_lock
from cascadeformer_jax.data import preprocessing as preprocessing_lib
from cascadeformer_jax.data import sources
from cascadeformer_jax.evaluate import evaluators
from cascadeformer_jax.evaluate import few_shot as few_shot_lib
from cascadeformer_jax.evaluate import few_shot_evaluation
from cascadeformer_jax.evaluate import probe as probe_lib
from cascadeformer_jax.evaluate import protocols
from cascadeformer_jax.evaluate.final_evaluation import FinalEvaluation
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.train import reporting
from cascadeformer_jax.train import trainer

MODES = configuration.MODES
TrainingError = trainer.TrainingError


class RecipeMismatchError(ValueError):
  """The work directory holds results of a different recipe than the config asks for."""


def check_config(config: ml_collections.ConfigDict, model_config: ModelConfig | None = None) -> ModelConfig:
  """Clear errors for configs that cannot work, before any data is read (config/config_checks.py); returns the
  config's model."""
  return config_checks.check_experiment(config, model_config)


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
  if run.config.mode == 'probe':  # Possibly another dataset, by design: only what T1 itself is fed has to agree.
    check_model_inputs(loaded, run.config, schema.TRANSFER_INPUT_FIELDS)
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


def check_model_inputs(loaded: model_sources.LoadedModel, config: ml_collections.ConfigDict,
                       fields: tuple[str, ...] = schema.DATASET_FIELDS + schema.MODEL_INPUT_FIELDS) -> None:
  """Refuses a config whose data settings (``fields``) or classes contradict what the model was trained with."""
  try:
    preprocessing_lib.check_agrees(loaded.preprocessing, config.data, loaded.location, fields)
    stored_names = (loaded.preprocessing or {}).get('class_names')
    if stored_names and 'data.num_classes' in fields:
      names = sources.class_names(config.data)
      if list(names) != list(stored_names):
        differ = next(i for i, (a, b) in enumerate(zip(stored_names, names)) if a != b) if len(names) == len(
            stored_names) else min(len(names), len(stored_names))
        raise preprocessing_lib.PreprocessingMismatchError(
            f'{loaded.location} was trained on other classes than {config.data.name} has: class {differ} is '
            f'{_class_at(stored_names, differ)} there, {_class_at(names, differ)} here')
  except preprocessing_lib.PreprocessingMismatchError as e:
    raise TrainingError(str(e)) from None


def _class_at(names: list[str], index: int) -> str:
  return repr(names[index]) if index < len(names) else 'absent'


def _evaluation_dir(run: trainer.Run) -> pathlib.Path:
  """The work directory for the run's own evaluation; eval/<name>/ for an evaluation in a work directory that
  already has results, which it never replaces."""
  workdir = run.workdir
  if run.config.mode != 'eval' or not workdir.results_file.is_file():
    return workdir.path
  name = run.config.eval.get('name', '')
  if name:
    directory = workdir.evaluation_dir(name)
    if (directory / workdir_lib.RESULTS_FILE).exists():
      raise TrainingError(f'{directory} already holds an evaluation; choose another --config.eval.name')
    return directory
  stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
  directory, count = workdir.evaluation_dir(stamp), 1
  while directory.exists():
    count += 1
    directory = workdir.evaluation_dir(f'{stamp}-{count}')
  return directory


def final_evaluation(run: trainer.Run) -> dict[str, Any]:
  """Evaluates the run's classifier on the test split and writes results.json, report.md, the confusion matrix
  and the per-clip scores into the work directory (an evaluation in a work directory that has results: into
  eval/<name>/, which is printed)."""
  loaded = _classifier_to_report(run)
  check_model_inputs(loaded, run.config)
  directory = _evaluation_dir(run)
  evaluation = FinalEvaluation(run.config, run.model_config, run.mesh)
  results = evaluation.run(partitioning.replicate(loaded.params, run.mesh), loaded.location)
  results['matmul_precision'] = run.config.get('matmul_precision', 'default')
  results['devices'] = {k: v for k, v in runtime.describe_devices().items() if k != 'process_index'}
  if directory == run.workdir.path:
    run.writer.write('test', 0, {k: results[k] for k in ('accuracy', 'top5', 'loss', 'mean_class_accuracy',
                                                         'count')}, split=evaluation.split)
  elif jax.process_index() == 0:
    directory.mkdir(parents=True, exist_ok=True)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(f'evaluation_dir:{directory}')
  evaluation.write(directory, results)
  if directory != run.workdir.path:
    results['written_to'] = str(directory)
    if jax.process_index() == 0:
      print(f'the work directory already has results, which are kept; this evaluation is in {directory}',
            flush=True)
  return results


def probe(run: trainer.Run) -> dict[str, Any]:
  """Linear-probe and kNN accuracy of the frozen pretrained (or random) T1; writes probe.json."""
  started = time.time()
  if run.config.probe.get('t1_init', 'pretrained') == 'scratch':
    t1_params = trainer.random_t1(run)
  else:
    t1_params = _pretrained_t1(run, 'the probe', ', or set --config.probe.t1_init=scratch (a random T1)')
  return probe_lib.evaluate_probe(run.config, run.model_config, run.mesh, t1_params, run.writer, run.workdir,
                                  started)


def few_shot(run: trainer.Run) -> dict[str, Any]:
  """Few-shot accuracy of frozen embeddings of --config.init_from (or of this run's model); writes few_shot.json
  and a report.md section."""
  try:
    return few_shot_evaluation.evaluate_few_shot(run.config, run.mesh, run.config.init_from or str(run.workdir.path),
                                                 run.writer, run.workdir)
  except few_shot_evaluation.FewShotSetupError as e:
    raise TrainingError(str(e)) from None


def prepare_workdir(config: ml_collections.ConfigDict) -> workdir_lib.Workdir:
  """Creates the work directory; config.json describes the run that trains in it (evaluations leave it alone).

  Process 0 writes; the others wait until it exists.
  """
  workdir = workdir_lib.Workdir(config.workdir)
  if jax.process_index() == 0:
    with io_checks.checked_write('run config', workdir.config_file):
      workdir.path.mkdir(parents=True, exist_ok=True)
      if config.mode in schema.TRAINING_MODES or not workdir.config_file.exists():
        workdir.config_file.write_text(config.to_json_best_effort(indent=2, sort_keys=True) + '\n')
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices('prepare_workdir')
  return workdir


def stages_used(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The stages whose results this run trains or builds on (evaluation and probe modes train nothing)."""
  trains = schema.MODE_TABLE[config.mode].trains
  builds_on_pretraining = (workdir_lib.FINETUNE in trains and workdir_lib.PRETRAIN not in trains
                           and config.finetune.t1_init == 'pretrained' and not config.init_from)
  return ((workdir_lib.PRETRAIN,) if builds_on_pretraining else ()) + trains


def _stage_started(workdir: workdir_lib.Workdir, stage: str) -> bool:
  checkpoints = workdir.checkpoints_dir(stage)
  has_checkpoints = checkpoints.is_dir() and any(name.isdigit() for name in os.listdir(checkpoints))
  return (has_checkpoints or workdir.recipe_file(stage).is_file()
          or any(checkpoint_io.is_model_dir(d) for d in (workdir.final_dir(stage), workdir.best_dir(stage))))


def _stored_recipe(workdir: workdir_lib.Workdir, stage: str) -> dict[str, Any] | None:
  stored = trainer.stored_stage_recipe(workdir, stage)
  if stored is None and workdir.config_file.is_file():  # A work directory without recipe files: its config's recipe.
    stored = recipe_lib.stage_recipe(ml_collections.ConfigDict(json.loads(workdir.config_file.read_text())), stage)
  return stored


def _explained(config: ml_collections.ConfigDict, change: recipe_lib.Change) -> recipe_lib.Change:
  """A changed data identity in words: the dataset and, for a folder, the rows that changed."""
  if change.field != 'data.identity':
    return change
  return dataclasses.replace(change, explanation=sources.describe_identity_change(config.data, change.old,
                                                                                  change.new))


def check_recipes(config: ml_collections.ConfigDict, workdir: workdir_lib.Workdir) -> None:
  """Refuses, before any work, to train on top of or next to results of a different recipe."""
  lines = []
  for stage in stages_used(config):
    if not _stage_started(workdir, stage):
      continue
    stored = _stored_recipe(workdir, stage)
    if stored is None:
      continue
    found = [_explained(config, change)
             for change in recipe_lib.changes(stored, recipe_lib.stage_recipe(config, stage))]
    if found:
      lines.append(recipe_lib.mismatch_message(str(workdir.stage_dir(stage)), found))
  if lines:
    raise RecipeMismatchError('\n'.join(lines))


def restart(workdir: workdir_lib.Workdir) -> None:
  """Moves the work directory's contents (not its lock) aside into <workdir>.before-restart-<time>/."""
  if not workdir.path.is_dir():
    return
  entries = [entry for entry in workdir.path.iterdir() if entry.name != workdir_lock.LOCK_FILE]
  if not entries:
    return
  stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
  aside = workdir.path.with_name(f'{workdir.path.name}.before-restart-{stamp}')
  aside.mkdir()
  for entry in entries:
    entry.rename(aside / entry.name)
  print(f'moved the earlier results of {workdir.path} to {aside}', flush=True)


def completed_summary(config: ml_collections.ConfigDict, workdir: workdir_lib.Workdir) -> dict[str, Any] | None:
  """The stored summary if this training run is already complete in ``workdir`` (same recipe), else None."""
  mode = schema.MODE_TABLE[config.mode]
  if not mode.trains or not checkpoint_io.is_model_dir(workdir.final_dir(mode.trains[-1])):
    return None
  summary: dict[str, Any] = {'workdir': str(workdir.path), 'complete': True, 'seconds': 0.0}
  if mode.evaluation is None:
    return summary
  if not workdir.results_file.is_file():
    return None
  results = json.loads(workdir.results_file.read_text())
  # Compared below the work directory, which may have been moved since.
  reported = {d.relative_to(workdir.path).parts for d in workdir.classifier_dirs(config.finetune.get('select_best',
                                                                                                     'last'))}
  if tuple(pathlib.Path(results.get('model', '')).parts[-2:]) not in reported:  # an evaluation of another model
    return None
  summary['test'] = results
  return summary


def run(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Runs ``config.mode`` and returns a summary ({'workdir', 'seconds'} plus 'test', 'probe' or 'few_shot').

  Checks the config against its schema (config/schema.py) and the work directory against the recipe it was trained with
  before any work, and holds the work directory's lock for the whole run.
  """
  configuration.resolve_dataset(config)  # folder datasets: build on first use, read joints and classes
  model_config = check_config(config)
  workdir = workdir_lib.Workdir(config.workdir)
  io_checks.check_writable(workdir.path, 'work directory')
  primary = jax.process_index() == 0
  with workdir_lock.WorkdirLock(workdir.path, primary=primary) as lock:
    if lock.taken_over and primary:
      print(f'taking over the work directory from a run that ended without releasing it (process '
            f'{lock.taken_over.get("pid")} on host {lock.taken_over.get("host")})', flush=True)
    if config.get('restart', False):
      if primary:
        restart(workdir)
      multihost_utils.sync_global_devices(f'restart:{workdir.path}')
    check_recipes(config, workdir)
    completed = completed_summary(config, workdir)
    if completed is not None:
      return completed
    return _run_modes(config, model_config)


def _run_modes(config: ml_collections.ConfigDict, model_config: ModelConfig) -> dict[str, Any]:
  setup_runtime(config)
  mesh = partitioning.make_mesh(config.get('mesh', {}).get('num_devices', 0))
  runtime.print_banner({'mesh': f'{mesh.devices.size} devices',
                        'matmul_precision': config.get('matmul_precision', 'default'),
                        'prng': config.get('prng_impl', 'threefry2x32')})
  mode = schema.MODE_TABLE[config.mode]
  for stage in mode.trains:
    partitioning.check_batch_size(config[stage].batch_size, mesh, f'config.{stage}.batch_size')
  partitioning.check_batch_size(config.eval.batch_size, mesh, 'config.eval.batch_size')
  sources.ensure_built(config.data)
  workdir = prepare_workdir(config)
  profile = runtime.parse_profile_steps(config.get('profile_steps', ''))
  if profile is not None and mode.trains:
    stage = trainer.profiled_stage(config)
    if stage not in mode.trains:
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
    if trainer.PRETRAIN in mode.trains:
      pretrained = trainer.run_pretrain(context, _stage_evaluator(context, trainer.PRETRAIN))
    if trainer.FINETUNE in mode.trains:
      t1_params = None
      if config.finetune.t1_init != 'scratch' and not checkpoint_io.is_model_dir(
          workdir.final_dir(trainer.FINETUNE)):
        t1_params = (pretrained['t1'] if pretrained is not None else _pretrained_t1(
            context, 'fine-tuning', ', or set --config.finetune.t1_init=scratch'))
      trainer.run_finetune(context, t1_params, _stage_evaluator(context, trainer.FINETUNE))
    evaluations = {schema.TEST: final_evaluation, schema.PROBE: probe, schema.FEW_SHOT: few_shot}
    if mode.evaluation is not None:
      summary[mode.evaluation] = evaluations[mode.evaluation](context)
  finally:
    writer.close()
  if jax.process_index() == 0:
    reporting.plot_curves(workdir.path)
  summary['seconds'] = round(time.time() - started, 1)
  return summary
