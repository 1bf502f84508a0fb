"""The stage loop: initialisation, resumption, jitted steps, periodic evaluation, checkpoints and the final model.

A stage (pretraining or fine-tuning) writes into ``<workdir>/<stage>/`` (cascadeformer_jax/workdir.py):
``checkpoints/`` (Orbax, with the data-iterator state), ``best/`` (when model selection is on) and ``final/``.
Rerunning a stage resumes from its latest checkpoint; a finished stage returns its final parameters.
"""

import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections

from cascadeformer_jax import checkpoint_io
from cascadeformer_jax import data as data_lib
from cascadeformer_jax import objectives
from cascadeformer_jax import partitioning
from cascadeformer_jax import workdir as workdir_lib
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


def init_params(module, model_config: ModelConfig, rng: jax.Array, mesh: jax.sharding.Mesh) -> Any:
  """Freshly initialised parameters of ``module``, replicated over the mesh."""
  x = jnp.zeros((1, min(model_config.pos_len, 8), model_config.num_joints, model_config.coords), jnp.float32)
  return partitioning.run_once(lambda key: module.init(key, x)['params'], rng,
                               out_shardings=partitioning.replicated(mesh))


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

  def execute(self, params: Any) -> Any:
    run, stage_config = self.run, self.stage_config
    data_config = run.config.data
    if self.stage == PRETRAIN and data_config.get('label_fraction', 1.0) < 1:
      # Self-supervised pretraining reads every training clip; only fine-tuning is limited to the labelled subset.
      data_config = data_config.copy_and_resolve_references()
      data_config.label_fraction = 1.0
    partitioning.check_batch_size(stage_config.batch_size, run.mesh)
    train_iterator = data_lib.make_train_iterator(data_config, stage_config.batch_size)
    steps_per_epoch = train_iterator.batches_per_epoch
    total_steps = stage_config.epochs * steps_per_epoch
    optimizer, schedule = optim.make_optimizer(stage_config, steps_per_epoch, params)
    replicated = partitioning.replicated(run.mesh)
    state = partitioning.run_once(lambda p: steps_lib.init_state(p, optimizer), params, out_shardings=replicated)
    del params

    checkpointer = checkpointing.StageCheckpointer(run.workdir.checkpoints_dir(self.stage), run.config.checkpoint.keep)
    best = {'metric': None, 'step': None}
    if checkpointer.latest_step() is not None:
      state, data_state, meta = checkpointer.restore(checkpointing.abstract_like(state), run.model_config,
                                                     self.stage)
      train_iterator.set_state(dict(data_state, process_index=jax.process_index()))
      best = meta.get('best', best)
      if jax.process_index() == 0:
        print(f'[{self.stage}] resuming from step {int(state["step"])} ({checkpointer.directory})', flush=True)

    step_fn = jax.jit(self.step_fn(optimizer, schedule),
                      in_shardings=(replicated, partitioning.batch_sharded(run.mesh), replicated),
                      out_shardings=(replicated, replicated), donate_argnums=(0,))
    rng = jax.device_put(stage_rng(run.config, self.stage), replicated)
    step = int(state['step'])
    progress = reporting.Progress(self.stage, total_steps, stage_config.batch_size, start_step=step,
                                  enabled=run.config.progress)
    log_every = max(int(run.config.log_every_steps), 1)
    pending: list[tuple[int, Any]] = []
    checkpoint_every = int(run.config.checkpoint.every_steps)
    checkpoint_every_epochs = int(run.config.checkpoint.get('every_epochs', 1))
    eval_every = int(run.config.eval.every_epochs)
    try:
      while step < total_steps:
        batch = partitioning.global_batch(predictions.model_inputs(next(train_iterator)), run.mesh)
        state, step_metrics = step_fn(state, batch, rng)
        step += 1
        pending.append((step, step_metrics))
        epoch_end = step % steps_per_epoch == 0
        if len(pending) >= log_every or epoch_end or step == total_steps:
          self._flush_metrics(pending, progress, steps_per_epoch)
          pending = []
        if epoch_end and eval_every and ((step // steps_per_epoch) % eval_every == 0 or step == total_steps):
          best = self._evaluate(state, step, steps_per_epoch, best, progress)
        epoch_checkpoint = (epoch_end and checkpoint_every_epochs > 0
                            and (step // steps_per_epoch) % checkpoint_every_epochs == 0)
        if (checkpoint_every and step % checkpoint_every == 0) or epoch_checkpoint or step == total_steps:
          checkpointer.save(step, state, train_iterator.get_state(),
                            {'stage': self.stage, 'model': run.model_config.to_dict(), 'step': step,
                             'epoch': step // steps_per_epoch, 'best': best})
      checkpointer.wait()
    finally:
      progress.close()
      checkpointer.close()
      train_iterator.close()
    params = jax.device_get(state['params'])
    checkpoint_io.replace_model_dir(self.final_dir(), run.model_config, {self.kind: params},
                                    {'stage': self.stage, 'workdir': str(run.workdir.path), 'steps': total_steps})
    return params

  def _flush_metrics(self, pending, progress, steps_per_epoch) -> None:
    host = jax.device_get([m for _, m in pending])
    for (step, _), values in zip(pending, host):
      if values['nonfinite']:
        raise TrainingError(
            f'[{self.stage}] the loss or gradients became non-finite at step {step} (loss {values["loss"]}); '
            'that update was not applied and training stopped. The last checkpoint in '
            f'{self.run.workdir.checkpoints_dir(self.stage)} is intact; lower the learning rate or enable '
            'grad_clip_norm.')
    step, values = pending[-1][0], host[-1]
    shown = {k: float(values[k]) for k in ('loss', 'accuracy', 'lr') if k in values}
    progress.update(step, (step - 1) // steps_per_epoch, self.stage_config.epochs, shown)
    for (step, _), values in zip(pending, host):
      record = {k: float(v) for k, v in values.items() if k != 'nonfinite'}
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
                                      {self.kind: jax.device_get(state['params'])},
                                      {'stage': self.stage, 'step': int(step), 'split': self.split,
                                       'metric': float(metric)})
    return best


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
  params = jax.device_get(init_params(model, run.model_config, stage_rng(run.config, FINETUNE), run.mesh))
  if t1_params is not None:
    params['t1'] = jax.device_get(t1_params)
  runner = StageRunner(run, FINETUNE, checkpoint_io.CLASSIFIER,
                       lambda optimizer, schedule: steps_lib.make_finetune_step(
                           model, optimizer, schedule, run.config.finetune, run.model_config.padding_aware),
                       evaluator)
  return runner.execute(partitioning.replicate(params, run.mesh))


def random_t1(run: Run) -> Any:
  """A freshly initialised T1 (host arrays): the baseline of the probe."""
  return jax.device_get(init_params(T1(run.model_config), run.model_config, stage_rng(run.config, PRETRAIN),
                                    run.mesh))
