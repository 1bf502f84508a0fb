r"""Compares the T1 pretraining objectives: speed, frozen-feature quality and label-efficient fine-tuning.

For every objective (and a randomly initialised T1 as the baseline) on the dataset of a config:

  pretrain clips/s    steady-state throughput of the jitted pretraining step (timed in alternating blocks so
                      that all objectives see the same machine conditions; random clips of the config's shape)
  pretrain s          wall time of the whole pretraining stage (config.pretrain.epochs, with compilation)
  linear probe, kNN   --config.mode=probe on the pretrained T1 (train split -> test split)
  N% labels           fine-tuning of the cascade on a class-balanced N % of the training labels (as many
                      optimiser steps as the config's full fine-tuning; the batch shrinks to the labelled
                      subset when that is smaller), test top-1 accuracy

  python -m benchmarks.pretraining_objectives --config=configs/demo.py --output=objectives.json

Prints a markdown table and writes everything to --output. Work directories go to --workdir (one per objective);
rerunning resumes or reuses the finished stages there.
"""

from __future__ import annotations

import argparse
import copy
import pathlib
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from cascadeformer_jax.config import configuration
from cascadeformer_jax import data as data_lib
from cascadeformer_jax.experiment import runner as experiment
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.data import sources
from cascadeformer_jax.models.pretraining import OBJECTIVES
from cascadeformer_jax.models.pretraining import pretraining_module
from cascadeformer_jax.train import optim
from cascadeformer_jax.train import steps as steps_lib

BASELINE = 'none (random T1)'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default='configs/demo.py', help='experiment config file (its dataset and model)')
  parser.add_argument('--objectives', default=','.join(OBJECTIVES))
  parser.add_argument('--label_fractions', default='0.01,0.1', help='comma-separated fractions of the labels')
  parser.add_argument('--workdir', default='workdirs/pretraining_objectives')
  parser.add_argument('--output', default='', help='JSON file for the results')
  parser.add_argument('--override', action='append', default=[],
                      help='config override key=value (repeatable), e.g. pretrain.epochs=5')
  parser.add_argument('--blocks', type=int, default=4, help='timing blocks per objective')
  parser.add_argument('--steps_per_block', type=int, default=5)
  parser.add_argument('--no_baseline', action='store_true', help='skip the random-T1 row')
  return parser.parse_args(argv)


def _set(config, dotted: str, value: Any) -> None:
  *parents, leaf = dotted.split('.')
  node = config
  for name in parents:
    node = node[name]
  if leaf not in node:
    raise KeyError(f'unknown config key {dotted!r}')
  node[leaf] = type(node[leaf])(value) if not isinstance(node[leaf], bool) else value in ('1', 'true', 'True')


def base_config(args: argparse.Namespace):
  config = configuration.load_config_file(args.config)
  for override in args.override:
    key, _, value = override.partition('=')
    _set(config, key, value)
  config.progress = False
  config.tensorboard = False
  return config


def objective_config(base, objective: str, workdir: pathlib.Path):
  config = copy.deepcopy(base)
  config.pretrain.objective = objective
  config.workdir = str(workdir)
  return config


def time_pretraining_steps(base, names: list[str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
  """Steady-state clips/s of each objective's jitted pretraining step on random clips of the config's shape."""
  frames, joints, coords = data_lib.model_input_shape(base.data)
  batch_size = base.pretrain.batch_size
  rng = np.random.default_rng(0)
  clips = jnp.asarray(0.3 * rng.standard_normal((batch_size, frames, joints, coords)), jnp.float32)
  runners = {}
  for name in names:
    config = objective_config(base, name, pathlib.Path(args.workdir))
    model = pretraining_module(configuration.model_config(config))
    params = partitioning.run_once(lambda key, x, model=model: model.init(key, x)['params'], jax.random.key(0),
                                   clips)
    optimizer, schedule = optim.make_optimizer(config.pretrain, steps_per_epoch=100, params=params)
    state = partitioning.run_once(lambda p, optimizer=optimizer: steps_lib.init_state(p, optimizer), params)
    step = jax.jit(steps_lib.make_pretrain_step(model, optimizer, schedule, config.pretrain), donate_argnums=(0,))
    holder = {'state': state, 'key': jax.random.key(1)}

    def run(step=step, holder=holder):
      holder['state'], metrics = step(holder['state'], {'skeleton': clips}, holder['key'])
      jax.block_until_ready(metrics)

    run()  # compile + warm-up
    run()
    runners[name] = run
  times = common.interleaved_times(runners, args.blocks, args.steps_per_block)
  results = {}
  for name, values in times.items():
    summary = common.summarize(values)
    results[name] = {'step_ms': summary['median_ms'], 'clips_per_s': batch_size / (summary['median_ms'] / 1e3)}
  return results


def semi_supervised(base, name: str, fraction: float, root: pathlib.Path, init_from: str) -> float:
  """Test accuracy after fine-tuning on a class-balanced ``fraction`` of the labels, same number of steps."""
  config = copy.deepcopy(base)
  config.mode = 'finetune'
  config.workdir = str(root / f'{_slug(name)}_labels_{fraction:g}')
  config.data.label_fraction = fraction
  config.init_from = init_from
  if not init_from:
    config.finetune.t1_init = 'scratch'
  full_epoch = data_lib.make_train_iterator(base.data, base.finetune.batch_size).batches_per_epoch
  full_steps = base.finetune.epochs * full_epoch
  devices = jax.device_count()
  labelled = data_lib.num_examples(config.data, config.data.train_split)
  config.finetune.batch_size = min(base.finetune.batch_size, max(devices, labelled - labelled % devices))
  steps_per_epoch = data_lib.make_train_iterator(config.data, config.finetune.batch_size).batches_per_epoch
  epochs = max(1, -(-full_steps // steps_per_epoch))
  config.finetune.epochs = epochs
  config.eval.every_epochs = max(1, epochs // 10)
  config.checkpoint.every_epochs = max(1, epochs // 4)
  return experiment.run(config)['test']['accuracy']


def _slug(name: str) -> str:
  return 'random_t1' if name == BASELINE else name


def main(argv: list[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  configuration.quiet_logs()
  base = base_config(args)
  names = common.parse_list(args.objectives, OBJECTIVES, '--objectives')
  fractions = [float(value) for value in args.label_fractions.split(',') if value]
  root = pathlib.Path(args.workdir).absolute()
  sources.ensure_built(base.data)

  print(f'timing the pretraining steps of {names} ...', file=sys.stderr, flush=True)
  throughput = time_pretraining_steps(base, names, args)
  rows = []
  for name in ([] if args.no_baseline else [BASELINE]) + names:
    print(f'[{name}]', file=sys.stderr, flush=True)
    row: dict[str, Any] = {'objective': name}
    workdir = root / _slug(name)
    if name == BASELINE:
      config = copy.deepcopy(base)
      config.mode = 'probe'
      config.workdir = str(workdir)
      config.probe.t1_init = 'scratch'
      init_from = ''
    else:
      row.update(throughput[name])
      config = objective_config(base, name, workdir)
      config.mode = 'pretrain'
      started = time.time()
      experiment.run(config)
      row['pretrain_s'] = round(time.time() - started, 1)
      config.mode = 'probe'
      init_from = str(workdir)
    probe = experiment.run(config)['probe']
    row['linear_probe'] = 100 * probe['linear_probe_accuracy']
    row['knn'] = 100 * probe['knn_accuracy']
    for fraction in fractions:
      row[f'labels_{fraction:g}'] = 100 * semi_supervised(base, name, fraction, root, init_from)
    rows.append(row)

  columns = [('objective', 'objective'), ('clips_per_s', 'pretrain clips/s'), ('pretrain_s', 'pretrain s'),
             ('linear_probe', 'linear probe %'), ('knn', 'kNN (k=1) %')]
  columns += [(f'labels_{f:g}', f'{100 * f:g}% labels fine-tune %') for f in fractions]
  print(common.markdown_table(rows, columns))
  payload = {'machine': common.machine_info(), 'command': ' '.join(['python -m benchmarks.pretraining_objectives']
                                                                   + (argv if argv is not None else sys.argv[1:])),
             'config': args.config, 'dataset': base.data.name, 'pretrain_epochs': base.pretrain.epochs,
             'finetune_epochs': base.finetune.epochs, 'results': rows}
  if args.output:
    common.write_json(args.output, payload)
  return payload


if __name__ == '__main__':
  main()
