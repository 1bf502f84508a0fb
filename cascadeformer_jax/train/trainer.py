"""The two training stages and the run that chains them: pretrain -> finetune -> test evaluation.

Everything a run produces lives in its work directory::

    config.json        the resolved config            metrics.jsonl   one JSON line per log/eval event
    tensorboard/       TensorBoard event files        curves.png      loss / accuracy curves
    pretrain/          checkpoints/, final/ (model directory of the pretrained T1 + decoder)
    finetune/          checkpoints/, final/, best/ (model directories of the classifier)
    results.json       test metrics of the final classifier

Rerunning the same command resumes from the latest checkpoint of the unfinished stage.
"""

import dataclasses
import json
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cascadeformer_jax import checkpoint_io
from cascadeformer_jax import configuration
from cascadeformer_jax import data as data_lib
from cascadeformer_jax.evaluate import metrics as metrics_lib
from cascadeformer_jax.evaluate import predictions
from cascadeformer_jax.evaluate import report
from cascadeformer_jax.evaluate import representation
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models import pool_frames
from cascadeformer_jax.models import T1
from cascadeformer_jax.models.pretraining import pretraining_module
from cascadeformer_jax.train import checkpointing
from cascadeformer_jax.train import objectives
from cascadeformer_jax.train import optim
from cascadeformer_jax.train import partitioning
from cascadeformer_jax.train import reporting
from cascadeformer_jax.train import steps as steps_lib

PRETRAIN = 'pretrain'
FINETUNE = 'finetune'
MODES = ('train', 'pretrain', 'finetune', 'eval', 'probe')
SELECTIONS = ('last', 'holdout', 'test')


class TrainingError(RuntimeError):
  """Training cannot go on (non-finite loss, missing initialisation, ...)."""


@dataclasses.dataclass
class Run:
  """What every stage of a run shares."""

  config: ml_collections.ConfigDict
  model_config: ModelConfig
  workdir: pathlib.Path
  mesh: jax.sharding.Mesh
  writer: reporting.MetricWriter
  # Jitted evaluation functions by purpose: built once per run, so periodic evaluation does not recompile.
  eval_functions: dict[Any, Any] = dataclasses.field(default_factory=dict)

  @property
  def padding_aware(self) -> bool:
    return self.model_config.pooling == 'masked_mean' or self.model_config.attention_padding_mask

  def eval_function(self, key: Any, build, with_index: bool = False):
    """The jitted evaluation function ``build()`` for ``key`` (hashable), built on first use."""
    if key not in self.eval_functions:
      self.eval_functions[key] = _jit_eval(build(), self.mesh, with_index)
    return self.eval_functions[key]


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
  for stage in (PRETRAIN, FINETUNE):
    selection = config[stage].get('select_best', 'last')
    if selection not in SELECTIONS:
      raise ValueError(f'config.{stage}.select_best must be one of {SELECTIONS}, got {selection!r}')
    if selection == 'holdout' and not config.data.holdout_fraction:
      raise ValueError(f"config.{stage}.select_best='holdout' needs config.data.holdout_fraction > 0")
  feature_prediction = objectives.objective_name(config.pretrain) == 'feature_prediction'
  if feature_prediction and config.pretrain.get('select_best', 'last') != 'last':
    raise ValueError("config.pretrain.select_best must be 'last' with the feature_prediction objective: its "
                     'validation error is measured against a target network that keeps training, so it is not '
                     'comparable between epochs')
  _protocols(config)


def _protocols(config: ml_collections.ConfigDict) -> list[str]:
  protocols = [name for name in config.eval.get('protocols', '').split(',') if name]
  unknown = sorted(set(protocols) - set(PROTOCOLS))
  if unknown:
    raise ValueError(f'unknown evaluation protocols {unknown} in config.eval.protocols; known: {sorted(PROTOCOLS)}')
  if 'multi_clip' in protocols and config.data.layout != 'ntu':
    raise ValueError(f'the multi_clip protocol needs an NTU-style dataset, not {config.data.name}')
  return protocols


def _rng(config: ml_collections.ConfigDict, stage: str) -> jax.Array:
  return jax.random.fold_in(jax.random.key(config.seed), 0 if stage == PRETRAIN else 1)


def _init_params(module, model_config: ModelConfig, rng: jax.Array, mesh) -> Any:
  x = jnp.zeros((1, min(model_config.pos_len, 8), model_config.num_joints, model_config.coords), jnp.float32)
  return partitioning.run_once(lambda key: module.init(key, x)['params'], rng,
                               out_shardings=partitioning.replicated(mesh))


def _eval_split(run: Run, stage: str) -> str | None:
  """The split evaluated during training: the hold-out if there is one; the test split only if selected."""
  selection = run.config[stage].get('select_best', 'last')
  if selection == 'test':
    return 'test'
  if run.config.data.holdout_fraction:
    return 'holdout'
  return None


class StageRunner:
  """Runs one stage with periodic evaluation, checkpointing, resumption and a final export."""

  def __init__(self, run: Run, stage: str, module, kind: str, params: Any, step_fn, evaluate_fn):
    self.run, self.stage, self.module, self.kind = run, stage, module, kind
    self.stage_config = run.config[stage]
    self.stage_dir = run.workdir / stage
    self.params = params
    self.step_fn = step_fn
    self.evaluate_fn = evaluate_fn

  def final_dir(self) -> pathlib.Path:
    return self.stage_dir / 'final'

  def execute(self) -> Any:
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
    optimizer, schedule = optim.make_optimizer(stage_config, steps_per_epoch, self.params)
    replicated = partitioning.replicated(run.mesh)
    state = partitioning.run_once(lambda p: steps_lib.init_state(p, optimizer), self.params,
                                  out_shardings=replicated)
    del self.params

    checkpointer = checkpointing.StageCheckpointer(self.stage_dir / 'checkpoints', run.config.checkpoint.keep)
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
    rng = jax.device_put(_rng(run.config, self.stage), replicated)
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
                                    {'stage': self.stage, 'workdir': str(run.workdir), 'steps': total_steps})
    return params

  def _flush_metrics(self, pending, progress, steps_per_epoch) -> None:
    host = jax.device_get([m for _, m in pending])
    for (step, _), values in zip(pending, host):
      if values['nonfinite']:
        raise TrainingError(
            f'[{self.stage}] the loss or gradients became non-finite at step {step} (loss {values["loss"]}); '
            'that update was not applied and training stopped. The last checkpoint in '
            f'{self.stage_dir / "checkpoints"} is intact; lower the learning rate or enable grad_clip_norm.')
    step, values = pending[-1][0], host[-1]
    shown = {k: float(values[k]) for k in ('loss', 'accuracy', 'lr') if k in values}
    progress.update(step, (step - 1) // steps_per_epoch, self.stage_config.epochs, shown)
    for (step, _), values in zip(pending, host):
      record = {k: float(v) for k, v in values.items() if k != 'nonfinite'}
      self.run.writer.write(self.stage, step, record, epoch=(step - 1) // steps_per_epoch)

  def _evaluate(self, state, step, steps_per_epoch, best, progress) -> dict:
    split = _eval_split(self.run, self.stage)
    if split is None:
      return best
    results = self.evaluate_fn(state['params'], split)
    epoch = step // steps_per_epoch
    self.run.writer.write(f'{self.stage}_eval', step, {f'val_{k}': v for k, v in results.items()},
                          epoch=epoch, split=split)
    progress.message(f'[{self.stage}] epoch {epoch} {split}: ' +
                     '  '.join(f'{k} {v:.4g}' for k, v in results.items() if k != 'count'))
    if self.stage_config.get('select_best', 'last') == 'last':
      return best
    metric = results['accuracy'] if 'accuracy' in results else -results[_error_metric(results)]
    if best['metric'] is None or metric > best['metric']:
      best = {'metric': float(metric), 'step': int(step)}
      checkpoint_io.replace_model_dir(self.stage_dir / 'best', self.run.model_config,
                                      {self.kind: jax.device_get(state['params'])},
                                      {'stage': self.stage, 'step': int(step), 'split': split,
                                       'metric': float(metric)})
    return best


def _error_metric(results: dict[str, Any]) -> str:
  return next(name for name in objectives.ERROR_METRICS if name in results)


def evaluate_classifier(run: Run, params: Any, split: str, batch_size: int | None = None,
                        model_config: ModelConfig | None = None,
                        data_config: ml_collections.ConfigDict | None = None) -> dict[str, Any]:
  """Top-1/top-5 accuracy, loss and mean class accuracy of a classifier on a split (plus raw predictions)."""
  batch_size = batch_size or run.config.eval.batch_size
  model_config = model_config or run.model_config
  partitioning.check_batch_size(batch_size, run.mesh)
  iterator = data_lib.make_eval_iterator(data_config or run.config.data, batch_size, split=split)
  padding_aware = model_config.pooling == 'masked_mean' or model_config.attention_padding_mask
  step = run.eval_function(('classifier', model_config, padding_aware), lambda: steps_lib.make_classifier_eval_step(
      CascadeClassifier(model_config), padding_aware))
  gathered = predictions.gather_predictions(lambda batch, index: step(params, batch), iterator, run.mesh)
  logits = gathered['outputs'][0]
  return {'metrics': metrics_lib.classification_metrics(logits, gathered['label']), 'logits': logits,
          'label': gathered['label'], 'index': gathered['index']}


def _multi_clip_metrics(run: Run, params: Any, split: str) -> dict[str, float]:
  """Averages the class probabilities of three windows (start, centre, end) of each NTU-style clip."""
  if run.config.data.layout != 'ntu':
    raise ValueError('the multi_clip protocol needs an NTU-style dataset (fixed windows of longer clips)')
  probabilities, labels = [], None
  for position in (0.0, 0.5, 1.0):
    data_config = run.config.data.copy_and_resolve_references()
    data_config.ntu.test_crop_fraction = run.config.eval.multi_clip_fraction
    data_config.ntu.test_window_position = position
    evaluation = evaluate_classifier(run, params, split, data_config=data_config)
    probabilities.append(jax.nn.softmax(evaluation['logits'].astype(np.float64), axis=-1))
    labels = evaluation['label']
  return metrics_lib.classification_metrics(np.log(np.mean(probabilities, axis=0)), labels)


# Alternative evaluation protocols, reported next to the main one with --config.eval.protocols=a,b:
# name -> (run, params, split) -> metrics.
PROTOCOLS = {
    # The original evaluated Penn Action and N-UCLA with a 4-head cross-attention (quirk Q1, docs/original_code.md).
    'cross_attn_4_heads': lambda run, params, split: evaluate_classifier(
        run, params, split, model_config=run.model_config.replace(cross_attn_heads=4))['metrics'],
    # Padded frames masked out of attention and pooling (changes the outputs of the published weights).
    'padding_aware': lambda run, params, split: evaluate_classifier(
        run, params, split, model_config=run.model_config.replace(
            pooling='masked_mean', attention_padding_mask=True))['metrics'],
    # One clip per batch: no padding at all, so predictions do not depend on the batch composition (Penn).
    'per_clip': lambda run, params, split: evaluate_classifier(
        run, params, split, batch_size=len(run.mesh.devices.flat))['metrics'],
    # Three windows per clip (start, centre, end; eval.multi_clip_fraction of the clip each), probabilities averaged.
    'multi_clip': _multi_clip_metrics,
}


def evaluate_pretrainer(run: Run, params: Any, split: str) -> dict[str, float]:
  """The objective's validation error (masked MSE, or feature MSE) with a fixed mask per evaluation batch."""
  batch_size = run.config.eval.batch_size
  partitioning.check_batch_size(batch_size, run.mesh)
  iterator = data_lib.make_eval_iterator(run.config.data, batch_size, split=split)
  model = pretraining_module(run.model_config)
  metric = objectives.make_objective(model, run.config.pretrain).metric
  step = run.eval_function('pretrain', lambda: steps_lib.make_pretrain_eval_step(
      model, run.config.pretrain, run.config.seed, run.padding_aware), with_index=True)
  gathered = predictions.gather_predictions(lambda batch, index: step(params, batch, index), iterator, run.mesh)
  squared, count = gathered['outputs']
  return {metric: float(np.sum(squared) / max(np.sum(count), 1.0)), 'count': int(len(squared))}


def _jit_eval(fn, mesh, with_index: bool = False):
  replicated, sharded = partitioning.replicated(mesh), partitioning.batch_sharded(mesh)
  in_shardings = (replicated, sharded, replicated) if with_index else (replicated, sharded)
  return jax.jit(fn, in_shardings=in_shardings, out_shardings=sharded,
                 compiler_options=partitioning.inference_compiler_options())


def run_pretrain(run: Run) -> Any:
  model = pretraining_module(run.model_config)
  runner = StageRunner(
      run, PRETRAIN, model, checkpoint_io.PRETRAINED,
      params=None,
      step_fn=lambda optimizer, schedule: steps_lib.make_pretrain_step(
          model, optimizer, schedule, run.config.pretrain, run.padding_aware),
      evaluate_fn=lambda params, split: evaluate_pretrainer(run, params, split))
  if checkpoint_io.is_model_dir(runner.final_dir()):
    return checkpoint_io.load_model_dir(runner.final_dir(), checkpoint_io.PRETRAINED, run.model_config)[1]
  runner.params = _init_params(model, run.model_config, _rng(run.config, PRETRAIN), run.mesh)
  return runner.execute()


def _pretrained_t1(run: Run, purpose: str, alternative: str = '') -> Any:
  """T1 parameters of this run's pretraining stage, or of config.init_from (a pretrained or a classifier model)."""
  pretrained_dir = run.workdir / PRETRAIN / 'final'
  source = run.config.init_from or (str(pretrained_dir) if checkpoint_io.is_model_dir(pretrained_dir) else '')
  if not source:
    raise TrainingError(f'{purpose} needs a pretrained T1: run --config.mode=train (or pretrain) first, pass '
                        f'--config.init_from=<model dir | work dir | hf:folder>{alternative}')
  _, params = checkpoint_io.load_params(source, (checkpoint_io.PRETRAINED, checkpoint_io.CLASSIFIER),
                                        run.model_config, any_pretraining_head=True)
  return jax.device_get(params['t1'])


def _finetune_init_params(run: Run, model: CascadeClassifier, pretrained: Any | None) -> Any:
  params = jax.device_get(_init_params(model, run.model_config, _rng(run.config, FINETUNE), run.mesh))
  if run.config.finetune.t1_init == 'scratch':
    return params
  if pretrained is None:
    params['t1'] = _pretrained_t1(run, 'fine-tuning', ', or set --config.finetune.t1_init=scratch')
  else:
    params['t1'] = jax.device_get(pretrained['t1'])
  return params


def run_finetune(run: Run, pretrained: Any | None = None) -> Any:
  model = CascadeClassifier(run.model_config)
  runner = StageRunner(
      run, FINETUNE, model, checkpoint_io.CLASSIFIER,
      params=None,
      step_fn=lambda optimizer, schedule: steps_lib.make_finetune_step(
          model, optimizer, schedule, run.config.finetune, run.padding_aware),
      evaluate_fn=lambda params, split: evaluate_classifier(run, params, split)['metrics'])
  if checkpoint_io.is_model_dir(runner.final_dir()):
    return checkpoint_io.load_model_dir(runner.final_dir(), checkpoint_io.CLASSIFIER, run.model_config)[1]
  runner.params = partitioning.replicate(_finetune_init_params(run, model, pretrained), run.mesh)
  return runner.execute()


def _classifier_for_evaluation(run: Run) -> tuple[str, Any]:
  """Which classifier a finished run reports: best (when selection is on) or final; or init_from in eval mode."""
  if run.config.mode == 'eval' and run.config.init_from:
    _, params = checkpoint_io.load_params(run.config.init_from, (checkpoint_io.CLASSIFIER,), run.model_config)
    return run.config.init_from, params
  for name in ('best', 'final'):
    directory = run.workdir / FINETUNE / name
    if name == 'best' and run.config.finetune.get('select_best', 'last') == 'last':
      continue
    if checkpoint_io.is_model_dir(directory):
      return str(directory), checkpoint_io.load_model_dir(directory, checkpoint_io.CLASSIFIER, run.model_config)[1]
  raise TrainingError(f'no classifier to evaluate: {run.workdir / FINETUNE / "final"} does not exist; train first '
                      'or pass --config.init_from=<model dir | work dir | hf:folder>')


def dataset_class_names(data_config: ml_collections.ConfigDict) -> list[str]:
  """Class names from the dataset builder's metadata (available without the data being built)."""
  import data_builders  # pylint: disable=g-import-not-at-top

  builder = data_builders.get_builder(data_config.tfds_name, data_lib.resolve_data_dir(data_config),
                                      data_config.tfds_config or None)
  names = list(builder.info.features['label'].names)
  if len(names) != data_config.num_classes:
    raise ValueError(f'{data_config.tfds_name} has {len(names)} classes, the data config says '
                     f'{data_config.num_classes}')
  return names


def run_test_evaluation(run: Run) -> dict[str, Any]:
  """Evaluates the run's classifier on the test split and writes results.json, report.md and the confusion
  matrix into the work directory."""
  source, params = _classifier_for_evaluation(run)
  params = partitioning.replicate(params, run.mesh)
  started = time.time()
  split = run.config.data.eval_split
  evaluation = evaluate_classifier(run, params, split)
  class_names = dataset_class_names(run.config.data)
  results = report.detailed_metrics(evaluation['logits'], evaluation['label'], class_names,
                                    ntu_breakdown=run.config.data.tfds_name == 'ntu_rgbd60')
  results = {'split': split, 'model': source, **results, 'seconds': round(time.time() - started, 2)}
  if run.config.get('published_accuracy'):
    results['published_accuracy'] = run.config.published_accuracy / 100.0
  protocols = _protocols(run.config)
  if protocols:
    results['protocols'] = {}
    for name in protocols:
      results['protocols'][name] = PROTOCOLS[name](run, params, split)
  run.writer.write('test', 0, evaluation['metrics'], split=split)
  if jax.process_index() == 0:
    title = f'{run.config.data.name}: CascadeFormer {run.model_config.variant} ({split} split)'
    report.write_report(run.workdir, results, class_names, title)
  return results


def extract_features(run: Run, t1_params: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
  """Frame-pooled T1 features (N, d) and labels (N,) of a split, with the evaluation preprocessing."""
  batch_size = run.config.eval.batch_size
  partitioning.check_batch_size(batch_size, run.mesh)
  model = T1(run.model_config)
  pooling = run.model_config.pooling

  def features(params, batch):
    frame_mask = steps_lib.frame_mask(batch, run.padding_aware)
    return pool_frames(model.apply({'params': params}, batch['skeleton'], frame_mask=frame_mask), frame_mask,
                       pooling).astype(jnp.float32)

  step = run.eval_function('features', lambda: features)
  iterator = data_lib.make_eval_iterator(run.config.data, batch_size, split=split)
  gathered = predictions.gather_predictions(lambda batch, index: step(t1_params, batch), iterator, run.mesh)
  return gathered['outputs'][0], gathered['label']


def run_probe(run: Run, t1_params: Any | None = None) -> dict[str, Any]:
  """Linear-probe and kNN accuracy of the frozen pretrained T1 (train split -> test split); writes probe.json."""
  started = time.time()
  if t1_params is None and run.config.probe.get('t1_init', 'pretrained') == 'scratch':
    t1_params = jax.device_get(_init_params(T1(run.model_config), run.model_config, _rng(run.config, PRETRAIN),
                                            run.mesh))
  elif t1_params is None:
    t1_params = _pretrained_t1(run, 'the probe', ', or set --config.probe.t1_init=scratch (a random T1)')
  t1_params = partitioning.replicate(t1_params, run.mesh)
  data = run.config.data
  train = extract_features(run, t1_params, data.train_split)
  test = extract_features(run, t1_params, data.eval_split)
  results = representation.evaluate_representation(train, test, data.num_classes, run.config.probe)
  results = {'split': data.eval_split, 'label_fraction': data.get('label_fraction', 1.0), **results,
             'seconds': round(time.time() - started, 2)}
  run.writer.write('probe', 0, {k: v for k, v in results.items() if isinstance(v, float)}, split=data.eval_split)
  if jax.process_index() == 0:
    (run.workdir / 'probe.json').write_text(json.dumps(results, indent=2) + '\n')
  return results


def prepare_workdir(config: ml_collections.ConfigDict) -> pathlib.Path:
  workdir = pathlib.Path(config.workdir).absolute()
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / 'config.json').write_text(config.to_json_best_effort(indent=2, sort_keys=True) + '\n')
  return workdir


def run(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Runs ``config.mode`` ('train', 'pretrain', 'finetune', 'eval' or 'probe') and returns a summary."""
  model_config = configuration.model_config(config)
  check_config(config, model_config)
  mesh = partitioning.make_mesh()
  workdir = prepare_workdir(config)
  writer = reporting.MetricWriter(workdir, tensorboard=config.tensorboard)
  context = Run(config, model_config, workdir, mesh, writer)
  summary: dict[str, Any] = {'workdir': str(workdir)}
  started = time.time()
  try:
    pretrained = None
    if config.mode in ('train', 'pretrain'):
      pretrained = run_pretrain(context)
    if config.mode in ('train', 'finetune'):
      run_finetune(context, pretrained)
    if config.mode in ('train', 'finetune', 'eval'):
      summary['test'] = run_test_evaluation(context)
    if config.mode == 'probe':
      summary['probe'] = run_probe(context)
  finally:
    writer.close()
  if jax.process_index() == 0:
    reporting.plot_curves(workdir)
  summary['seconds'] = round(time.time() - started, 1)
  return summary
