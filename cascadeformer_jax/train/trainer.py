"""The stage loop: initialisation, resumption, jitted steps, periodic evaluation, checkpoints and the final model.

A stage (pretraining or fine-tuning) writes into ``<workdir>/<stage>/`` (cascadeformer_jax/run/workdir.py):
``checkpoints/`` (Orbax, with the data-iterator state), ``best/`` (when model selection is on) and ``final/``.
Rerunning a stage resumes from its latest checkpoint; a finished stage returns its final parameters.
"""

import contextlib
import dataclasses
import functools
import json
import pathlib
import signal
from typing import Any, Callable, Iterator, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import ml_collections

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax import data as data_lib
from cascadeformer_jax.data import preprocessing as preprocessing_lib
from cascadeformer_jax.data import sources
from cascadeformer_jax.run import interrupts
from cascadeformer_jax.run import io_checks
from cascadeformer_jax.config import schema
from cascadeformer_jax import objectives
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.train import prefetch
from cascadeformer_jax.run import recipe as recipe_lib
from cascadeformer_jax.run import runtime
from cascadeformer_jax.run import workdir as workdir_lib
from cascadeformer_jax.evaluate import predictions
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models import T1
from cascadeformer_jax.models.pretraining import pretraining_module
from cascadeformer_jax.train import checkpointing
from cascadeformer_jax.train import optim
from cascadeformer_jax.train import reporting
from cascadeformer_jax.train import steps as steps_lib

PRETRAIN, FINETUNE = workdir_lib.PRETRAIN, workdir_lib.FINETUNE
SELECTIONS = ('last', 'holdout', 'test')


class TrainingError(RuntimeError):
  """Training cannot go on (non-finite loss, missing initialisation, ...)."""


class Evaluator(Protocol):
  """What the stage loop needs of an evaluator (evaluate/evaluators.py)."""

  def run(self, params: Any) -> dict[str, float]:
    ...


@dataclasses.dataclass
class Run:
  """What every stage of a run shares."""

  config: ml_collections.ConfigDict
  model_config: ModelConfig
  workdir: workdir_lib.Workdir
  mesh: jax.sharding.Mesh
  writer: reporting.MetricWriter
  # Steps traced with jax.profiler (config.profile_steps), and the stage they belong to.
  profile: runtime.ProfileRange | None = None


def eval_split(config: ml_collections.ConfigDict, stage: str) -> str | None:
  """The split evaluated during a stage: the hold-out if there is one; the test split only if selected on."""
  selection = config[stage].get('select_best', 'last')
  if selection == 'test':
    return 'test'
  if config.data.holdout_fraction:
    return 'holdout'
  return None


def stage_rng(config: ml_collections.ConfigDict, stage: str) -> jax.Array:
  return jax.random.fold_in(jax.random.key(config.seed), 0 if stage == PRETRAIN else 1)


def profiled_stage(config: ml_collections.ConfigDict) -> str:
  """The stage config.profile_steps refers to: the one it names, else the first stage the mode trains."""
  profile = runtime.parse_profile_steps(config.get('profile_steps', ''))
  if profile is not None and profile.stage:
    return profile.stage
  return schema.MODE_TABLE[config.mode].trains[0]


def stage_data_config(config: ml_collections.ConfigDict, stage: str) -> ml_collections.ConfigDict:
  data_config = config.data
  if stage == PRETRAIN and data_config.get('label_fraction', 1.0) < 1:
    # Self-supervised pretraining reads every training clip; only fine-tuning is limited to the labelled subset.
    data_config = data_config.copy_and_resolve_references()
    data_config.label_fraction = 1.0
  return data_config


def stage_total_steps(config: ml_collections.ConfigDict, stage: str) -> int:
  """Optimiser steps of a whole stage (epochs x global batches per epoch), without reading a batch."""
  iterator = data_lib.make_train_iterator(stage_data_config(config, stage), config[stage].batch_size)
  try:
    return int(config[stage].epochs) * iterator.batches_per_epoch
  finally:
    iterator.close()


def init_params(module, model_config: ModelConfig, rng: jax.Array, mesh: jax.sharding.Mesh) -> Any:
  """Freshly initialised parameters of ``module``, replicated over the mesh."""
  x = jnp.zeros((1, min(model_config.pos_len, 8), model_config.num_joints, model_config.coords), jnp.float32)
  return partitioning.run_once(lambda key: module.init(key, x)['params'], rng,
                               out_shardings=partitioning.replicated(mesh))


@dataclasses.dataclass(frozen=True)
class Cadence:
  """When the stage loop logs, evaluates and saves; each question is asked about the step just completed."""

  steps_per_epoch: int
  total_steps: int
  log_every_steps: int
  eval_every_epochs: int
  checkpoint_every_steps: int
  checkpoint_every_epochs: int

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, epochs: int, steps_per_epoch: int) -> 'Cadence':
    return cls(steps_per_epoch=steps_per_epoch, total_steps=epochs * steps_per_epoch,
               log_every_steps=max(int(config.log_every_steps), 1),
               eval_every_epochs=int(config.eval.every_epochs),
               checkpoint_every_steps=int(config.checkpoint.every_steps),
               checkpoint_every_epochs=int(config.checkpoint.get('every_epochs', 1)))

  def epoch(self, step: int) -> int:
    """The epochs completed at the end of ``step``."""
    return step // self.steps_per_epoch

  def ends_epoch(self, step: int) -> bool:
    return step % self.steps_per_epoch == 0

  def is_last(self, step: int) -> bool:
    return step == self.total_steps

  def time_to_log(self, step: int, unlogged: int, stopping: bool) -> bool:
    """``unlogged``: steps whose metrics are still on the device, this one included."""
    return unlogged >= self.log_every_steps or self.ends_epoch(step) or self.is_last(step) or stopping

  def time_to_evaluate(self, step: int) -> bool:
    """At the end of every ``eval_every_epochs``-th epoch and of the stage (never when it is 0)."""
    return (self.ends_epoch(step) and self.eval_every_epochs > 0
            and (itstime(self.epoch(step), self.eval_every_epochs) or self.is_last(step)))

  def time_to_checkpoint(self, step: int) -> bool:
    """Every ``checkpoint_every_steps`` steps, at the end of every ``checkpoint_every_epochs``-th epoch and at the
    end of the stage."""
    return (itstime(step, self.checkpoint_every_steps)
            or (self.ends_epoch(step) and itstime(self.epoch(step), self.checkpoint_every_epochs))
            or self.is_last(step))


def itstime(count: int, every: int) -> bool:
  """Whether a periodic event falls on ``count`` (steps or epochs): on every multiple of ``every``; 0 means never."""
  return every > 0 and count % every == 0


class StepHooks(NamedTuple):
  """What the stage loop calls with its step counter and the train state around every step."""

  before_step: Callable[[int, Any], None]
  after_step: Callable[[int, Any], None]


@contextlib.contextmanager
def profiled_steps(profile: runtime.ProfileRange | None, directory: pathlib.Path,
                   report: Callable[[str], None], stage: str) -> Iterator[StepHooks]:
  """Traces the steps of ``profile`` with jax.profiler into ``directory`` (None: traces nothing).

  Tracing starts before the first step of the range and stops after its last; leaving the block early (an error,
  an interrupt) stops a trace still running.
  """
  tracing = False

  def before_step(step: int, state: Any) -> None:
    nonlocal tracing
    if profile is not None and profile.start <= step < profile.stop and not tracing:
      jax.block_until_ready(state)
      jax.profiler.start_trace(str(directory))
      tracing = True

  def after_step(step: int, state: Any) -> None:
    nonlocal tracing
    if tracing and step >= profile.stop:
      jax.block_until_ready(state)
      jax.profiler.stop_trace()
      tracing = False
      report(f'[{stage}] profile of steps {profile.start}:{profile.stop} written to {directory}')

  try:
    yield StepHooks(before_step, after_step)
  finally:
    if tracing:
      jax.profiler.stop_trace()


class StageRunner:
  """Runs one stage with periodic evaluation, checkpointing, resumption and a final export."""

  def __init__(self, run: Run, stage: str, kind: str, step_fn, evaluator: Evaluator | None):
    self.run, self.stage, self.kind = run, stage, kind
    self.stage_config = run.config[stage]
    self.step_fn = step_fn
    self.evaluator = evaluator
    self.split = eval_split(run.config, stage) if evaluator is not None else None

  def final_dir(self):
    return self.run.workdir.final_dir(self.stage)

  @functools.cached_property
  def preprocessing(self) -> dict[str, Any]:
    """What the stage's model directories store about their inputs (data/preprocessing.py)."""
    data_config = self.run.config.data
    described = preprocessing_lib.describe(data_config, sources.class_names(data_config))
    described['largest_training_input'] = preprocessing_lib.largest_training_input(data_config)
    return described

  def execute(self, params: Any) -> Any:
    """Trains the stage from ``params``, or on from its latest checkpoint; writes the final model directory and
    returns its parameters (host arrays)."""
    run, stage_config = self.run, self.stage_config
    data_config = stage_data_config(run.config, self.stage)
    partitioning.check_batch_size(stage_config.batch_size, run.mesh, f'config.{self.stage}.batch_size')
    train_iterator = data_lib.make_train_iterator(data_config, stage_config.batch_size)
    cadence = Cadence.from_config(run.config, stage_config.epochs, train_iterator.batches_per_epoch)
    profile = run.profile if run.profile is not None and profiled_stage(run.config) == self.stage else None
    if profile is not None:
      profile.check_within(cadence.total_steps, self.stage)
    optimizer, schedule = optim.make_optimizer(stage_config, cadence.steps_per_epoch, params)
    replicated = partitioning.replicated(run.mesh)
    state = partitioning.run_once(lambda p: steps_lib.init_state(p, optimizer), params, out_shardings=replicated)
    del params

    recipe = recipe_lib.stage_recipe(run.config, self.stage)
    if jax.process_index() == 0:
      write_stage_recipe(run.workdir, self.stage, recipe)
    checkpointer = checkpointing.StageCheckpointer(run.workdir.checkpoints_dir(self.stage), run.config.checkpoint.keep)
    state, best = self._restore(checkpointer, state, train_iterator)

    step_fn = jax.jit(self.step_fn(optimizer, schedule),
                      in_shardings=(replicated, partitioning.batch_sharded(run.mesh), replicated),
                      out_shardings=(replicated, replicated), donate_argnums=(0,))
    rng = partitioning.replicate(stage_rng(run.config, self.stage), run.mesh)
    start_step = int(partitioning.host_copy(state['step']))
    batches = prefetch.DevicePrefetcher(
        train_iterator, lambda batch: partitioning.global_batch(predictions.model_inputs(batch), run.mesh),
        size=int(data_config.get('device_prefetch', 2)))
    progress = reporting.Progress(self.stage, cadence.total_steps, stage_config.batch_size, start_step=start_step,
                                  enabled=run.config.progress)
    completed = False
    try:
      with (profiled_steps(profile, run.workdir.path / 'profile', progress.message, self.stage) as hooks,
            interrupts.stop_requests() as stop):
        state = self._train_steps(state, start_step, best, step_fn=step_fn, rng=rng, batches=batches,
                                  checkpointer=checkpointer, cadence=cadence, recipe=recipe, progress=progress,
                                  hooks=hooks, stop=stop)
      completed = True
    finally:
      progress.close()
      batches.close()
      checkpointer.close(report_errors=completed)
      train_iterator.close()
    params = partitioning.host_copy(state['params'])
    checkpoint_io.replace_model_dir(self.final_dir(), run.model_config, {self.kind: params},
                                    {'stage': self.stage, 'workdir': str(run.workdir.path),
                                     'steps': cadence.total_steps, 'recipe': recipe}, self.preprocessing)
    if stop.signal is not None:  # Asked to stop during the last step: the stage is complete, stop before the next.
      raise interrupts.Interrupted(f'{signal.Signals(stop.signal).name}: stopped after completing {self.stage} '
                                   f'({self.final_dir()}). Rerun the same command to continue.', stop.signal)
    return params

  def _restore(self, checkpointer: checkpointing.StageCheckpointer, state: Any,
               train_iterator: data_lib.DataIterator) -> tuple[Any, dict[str, Any]]:
    """The train state and best-model record to go on from: the latest checkpoint's if the stage has one (the
    input iterator is moved to where it was), else ``state`` and no best model yet."""
    best = {'metric': None, 'step': None}
    if checkpointer.latest_step() is None:
      return state, best
    # Restored onto this run's mesh, whatever devices wrote the checkpoint.
    restored, set_aside = checkpointer.restore_latest_intact(checkpointing.abstract_like(state),
                                                             self.run.model_config, self.stage)
    if jax.process_index() == 0:
      for checkpoint in set_aside:
        print(f'[{self.stage}] {checkpoint.message()}', flush=True)
    if restored is None:
      self.run.writer.forget_after((self.stage, f'{self.stage}_eval'), 0)
      if jax.process_index() == 0:
        print(f'[{self.stage}] no intact checkpoint is left in {checkpointer.directory}; the stage starts over',
              flush=True)
      return state, best
    state, data_state, meta = restored
    train_iterator.set_state(dict(data_state, process_index=jax.process_index()))
    # The steps after the checkpoint are done again: their earlier records would appear twice.
    resumed_step = int(partitioning.host_copy(state['step']))
    self.run.writer.forget_after((self.stage, f'{self.stage}_eval'), resumed_step)
    if jax.process_index() == 0:
      fallback = ' instead, the newest intact checkpoint' if set_aside else ''
      print(f'[{self.stage}] resuming from step {resumed_step}{fallback} ({checkpointer.directory})', flush=True)
    return state, meta.get('best', best)

  def _train_steps(self, state: Any, step: int, best: dict[str, Any], *, step_fn, rng: jax.Array,
                   batches: prefetch.DevicePrefetcher, checkpointer: checkpointing.StageCheckpointer,
                   cadence: Cadence, recipe: dict[str, Any], progress: reporting.Progress, hooks: StepHooks,
                   stop: interrupts.StopRequests) -> Any:
    """Runs the steps from ``step`` to the end of the stage and returns the last train state.

    A stop request ends the loop after the current step: its checkpoint is saved and Interrupted raised.
    """
    saved_step = step if checkpointer.latest_step() is not None else None
    unlogged: list[tuple[int, Any]] = []
    while step < cadence.total_steps:
      hooks.before_step(step, state)
      batch = next(batches)
      state, step_metrics = step_fn(state, batch, rng)
      step += 1
      hooks.after_step(step, state)
      unlogged.append((step, step_metrics))
      if cadence.time_to_log(step, len(unlogged), stopping=stop.signal is not None):
        self._flush_metrics(unlogged, progress, cadence.steps_per_epoch, checkpointer, batches.meter)
        unlogged = []
      paused = False
      if cadence.time_to_evaluate(step):
        best = self._evaluate(state, step, cadence.steps_per_epoch, best, progress)
        paused = True
      if cadence.time_to_checkpoint(step):
        self._save(checkpointer, step, state, batches, best, recipe, cadence.steps_per_epoch)
        saved_step = step
        paused = True
      if paused:  # Evaluation and checkpoints are not input waits: the next interval starts after them.
        batches.meter.restart()
      checkpointer.poll()
      if stop.signal is not None and step < cadence.total_steps:
        if saved_step != step:
          self._save(checkpointer, step, state, batches, best, recipe, cadence.steps_per_epoch)
        checkpointer.wait()
        raise interrupts.Interrupted(
            f'{signal.Signals(stop.signal).name}: stopped at step {step} of {cadence.total_steps} ({self.stage}); '
            f'checkpoint saved in {checkpointer.directory}. Rerun the same command to resume.', stop.signal)
    checkpointer.wait()
    return state

  def _save(self, checkpointer: checkpointing.StageCheckpointer, step: int, state: Any,
            batches: prefetch.DevicePrefetcher, best: dict[str, Any], recipe: dict[str, Any],
            steps_per_epoch: int) -> None:
    # The input state after the last batch the steps consumed (not after the prefetched ones).
    checkpointer.save(step, state, batches.get_state(),
                      {'stage': self.stage, 'model': self.run.model_config.to_dict(), 'step': step,
                       'epoch': step // steps_per_epoch, 'best': best, 'recipe': recipe})

  def _flush_metrics(self, pending, progress, steps_per_epoch, checkpointer: checkpointing.StageCheckpointer,
                     wait_meter: prefetch.InputWaitMeter) -> None:
    host = partitioning.host_copy([m for _, m in pending])
    # Fraction of the wall time since the previous report that the loop waited for input (prefetch included).
    input_wait = wait_meter.interval_fraction()
    for (step, _), values in zip(pending, host):
      if values['nonfinite']:
        latest = checkpointer.latest_step()
        if latest is None:
          saved = 'No checkpoint of this stage exists yet, so a rerun starts the stage over'
        else:
          saved = (f'The checkpoint of step {latest} in {self.run.workdir.checkpoints_dir(self.stage)} is intact '
                   'and a rerun resumes from it')
        raise TrainingError(
            f'[{self.stage}] the loss or gradients became non-finite at step {step} (loss {values["loss"]}); '
            f'that update was not applied and training stopped. {saved}; lower the learning rate or enable '
            'grad_clip_norm.')
    step, values = pending[-1][0], host[-1]
    shown = {k: float(values[k]) for k in ('loss', 'accuracy', 'lr') if k in values}
    shown['input_wait'] = round(input_wait, 3)
    progress.update(step, (step - 1) // steps_per_epoch, self.stage_config.epochs, shown)
    for (step, _), values in zip(pending, host):
      record = {k: float(v) for k, v in values.items() if k != 'nonfinite'}
      record['input_wait_fraction'] = round(input_wait, 4)
      self.run.writer.write(self.stage, step, record, epoch=(step - 1) // steps_per_epoch)

  def _evaluate(self, state, step, steps_per_epoch, best, progress) -> dict:
    if self.split is None:
      return best
    results = self.evaluator.run(state['params'])
    epoch = step // steps_per_epoch
    self.run.writer.write(f'{self.stage}_eval', step, {f'val_{k}': v for k, v in results.items()},
                          epoch=epoch, split=self.split)
    progress.message(f'[{self.stage}] epoch {epoch} {self.split}: ' +
                     '  '.join(f'{k} {v:.4g}' for k, v in results.items() if k != 'count'))
    if self.stage_config.get('select_best', 'last') == 'last':
      return best
    metric = results['accuracy'] if 'accuracy' in results else -results[_error_metric(results)]
    if best['metric'] is None or metric > best['metric']:
      best = {'metric': float(metric), 'step': int(step)}
      checkpoint_io.replace_model_dir(self.run.workdir.best_dir(self.stage), self.run.model_config,
                                      {self.kind: partitioning.host_copy(state['params'])},
                                      {'stage': self.stage, 'step': int(step), 'split': self.split,
                                       'metric': float(metric),
                                       'recipe': recipe_lib.stage_recipe(self.run.config, self.stage)},
                                      self.preprocessing)
    return best


def write_stage_recipe(workdir: workdir_lib.Workdir, stage: str, recipe: dict[str, Any]) -> None:
  """Records what the stage is trained with (process 0), before its first checkpoint."""
  path = workdir.recipe_file(stage)
  staging = path.with_name(path.name + '.tmp')
  with io_checks.checked_write('stage recipe', path):
    path.parent.mkdir(parents=True, exist_ok=True)
    staging.write_text(json.dumps(recipe, indent=1, sort_keys=True) + '\n')
    staging.replace(path)


def stored_stage_recipe(workdir: workdir_lib.Workdir, stage: str) -> dict[str, Any] | None:
  """The recipe a stage of ``workdir`` was trained with, or None if the stage never started."""
  path = workdir.recipe_file(stage)
  if path.is_file():
    return json.loads(path.read_text())
  return None


def _error_metric(results: dict[str, Any]) -> str:
  return next(name for name in objectives.ERROR_METRICS if name in results)


def _finished(run: Run, stage: str, kind: str) -> Any | None:
  final = run.workdir.final_dir(stage)
  if checkpoint_io.is_model_dir(final):
    return checkpoint_io.load_model_dir(final, kind, run.model_config)[1]
  return None


def run_pretrain(run: Run, evaluator: Evaluator | None = None) -> Any:
  """Stage 1: trains T1 with the pretraining head; returns its parameters (host arrays)."""
  finished = _finished(run, PRETRAIN, checkpoint_io.PRETRAINED)
  if finished is not None:
    return finished
  model = pretraining_module(run.model_config)
  runner = StageRunner(run, PRETRAIN, checkpoint_io.PRETRAINED,
                       lambda optimizer, schedule: steps_lib.make_pretrain_step(
                           model, optimizer, schedule, run.config.pretrain, run.model_config.padding_aware),
                       evaluator)
  return runner.execute(init_params(model, run.model_config, stage_rng(run.config, PRETRAIN), run.mesh))


def run_finetune(run: Run, t1_params: Any | None, evaluator: Evaluator | None = None) -> Any:
  """Stage 2: cascading fine-tuning with T1 initialised from ``t1_params`` (None: from scratch)."""
  finished = _finished(run, FINETUNE, checkpoint_io.CLASSIFIER)
  if finished is not None:
    return finished
  model = CascadeClassifier(run.model_config)
  params = partitioning.host_copy(init_params(model, run.model_config, stage_rng(run.config, FINETUNE), run.mesh))
  if t1_params is not None:
    params['t1'] = partitioning.host_copy(t1_params)
  runner = StageRunner(run, FINETUNE, checkpoint_io.CLASSIFIER,
                       lambda optimizer, schedule: steps_lib.make_finetune_step(
                           model, optimizer, schedule, run.config.finetune, run.model_config.padding_aware),
                       evaluator)
  return runner.execute(partitioning.replicate(params, run.mesh))


def random_t1(run: Run) -> Any:
  """A freshly initialised T1 (host arrays): the baseline of the probe."""
  return partitioning.host_copy(init_params(T1(run.model_config), run.model_config,
                                           stage_rng(run.config, PRETRAIN), run.mesh))
