"""Input-pipeline throughput: training clips/s per dataset on this machine's CPU.

Prints a markdown table with, per dataset and worker count, the clips/s the training pipeline delivers
(start-up, the first batch and `--warmup_clips` more excluded), the fastest training step it can feed
(batch / throughput), and — when `--step_time_ms` gives the step time of the model it feeds — the clips/s
that step needs. CPU time per clip is given for the main process and for it and its worker processes together.

Without `--data_dir` the clips come from a lazy in-memory source with the datasets' shapes and
realistic length distributions (NTU ≈ 80 frames, N-UCLA ≈ 43, Penn ≈ 70); each clip is generated on
access, standing in for reading and decoding a stored example. With `--data_dir` the built TFDS data
sources are read (`data_builders.load_data_source`).

Worker and thread counts default to the data config's (automatic, `data.input_parallelism`); `-1` in
`--workers` / `--threads` stands for that default.

  python -m benchmarks.input_pipeline
  python -m benchmarks.input_pipeline --workers=-1,0,1,2 --step_time_ms=ntu60_xsub=250,n_ucla=120
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks import common
from cascadeformer_jax import data
from cascadeformer_jax.data import config as data_config_lib

# Batch sizes of the original training runs (docs/original_code.md, training recipes); synthetic_actions follows NTU.
ORIGINAL_BATCH = {'penn_action': 4, 'n_ucla': 4, 'ntu60_xsub': 64, 'ntu60_xview': 64,
                  'synthetic_actions': 64}
# (mean, min, max) clip lengths used by the in-memory source.
_LENGTHS = {'penn_action': (70, 18, 663), 'n_ucla': (43, 1, 201), 'ntu': (80, 32, 300)}


class SyntheticClips:
  """Lazy map-style source: example i is generated from (seed, i) with the stored feature layout."""

  def __init__(self, dataset: str, num_examples: int = 2048, seed: int = 0):
    self.dataset = dataset
    self.num_examples = num_examples
    self.seed = seed
    self.layout = data.default_data_config(dataset).layout
    self.num_classes = data.default_data_config(dataset).num_classes

  def __len__(self) -> int:
    return self.num_examples

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([self.seed, int(index)])
    mean, low, high = _LENGTHS['ntu' if self.layout == 'ntu' else self.dataset]
    length = int(np.clip(rng.gamma(4.0, mean / 4.0), low, high))
    label = int(index) % self.num_classes
    if self.layout == 'penn':
      return {'skeleton': rng.uniform(0, 480, (length, 13, 2)).astype(np.float32),
              'visibility': rng.random((length, 13)) > 0.1,
              'image_size': np.array([480, 640], np.int32), 'label': label,
              'video_id': f'{index:04d}'.encode()}
    if self.layout == 'nucla':
      return {'skeleton': (0.3 * rng.standard_normal((length, 20, 3)) + (0, 0, 3)).astype(np.float32),
              'label': label, 'sample_name': f'a01_s01_e{index:05d}_v01'.encode()}
    skeleton = np.zeros((length, 2, 25, 3), np.float32)
    skeleton[:, 0] = 0.3 * rng.standard_normal((length, 25, 3))
    if index % 5 == 0:
      skeleton[:, 1] = 0.3 * rng.standard_normal((length, 25, 3)) + 0.8
    return {'skeleton': skeleton, 'label': label, 'sample_name': f'S{index:019d}'.encode()}


def _process_tree_cpu() -> float | None:
  """CPU seconds (user + system) of this process and its descendants alive now, from /proc (None elsewhere)."""
  try:
    ticks = os.sysconf('SC_CLK_TCK')
    parents, times = {}, {}
    for entry in os.listdir('/proc'):
      if not entry.isdigit():
        continue
      try:
        with open(f'/proc/{entry}/stat') as stat:
          fields = stat.read().rsplit(')', 1)[1].split()
      except OSError:
        continue
      parents[int(entry)] = int(fields[1])
      times[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
  except (OSError, ValueError, IndexError):
    return None
  tree, frontier = {os.getpid()}, [os.getpid()]
  while frontier:
    parent = frontier.pop()
    children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
    tree.update(children)
    frontier.extend(children)
  return sum(times.get(pid, 0.0) for pid in tree)


def measure(dataset: str, batch_size: int, num_workers: int, num_threads: int, num_batches: int,
            data_dir: str | None, warmup_batches: int = 0) -> tuple[float, float, float, float | None]:
  """Returns (start-up seconds incl. the first batch, clips/s over `num_batches` read after the first batch and
  `warmup_batches` more, main-process CPU µs per clip over them (all its threads), and the CPU µs per clip of
  the main process and its worker processes together (None where /proc is missing))."""
  cfg = data.default_data_config(dataset)
  cfg.num_workers = num_workers
  cfg.num_threads = num_threads
  source = None
  if data_dir:
    cfg.data_dir = data_dir
  else:
    source = SyntheticClips(dataset)
  start = time.perf_counter()
  iterator = data.make_train_iterator(cfg, batch_size, source=source, process_index=0,
                                      process_count=1)
  try:
    next(iterator)
    startup = time.perf_counter() - start
    for _ in range(warmup_batches):  # worker processes that started later than the first one
      next(iterator)
    start, cpu_start, tree_start = time.perf_counter(), time.process_time(), _process_tree_cpu()
    for _ in range(num_batches):
      next(iterator)
    elapsed, cpu, tree_end = time.perf_counter() - start, time.process_time() - cpu_start, _process_tree_cpu()
  finally:
    iterator.close()
  clips = num_batches * batch_size
  tree = None if tree_start is None or tree_end is None else 1e6 * (tree_end - tree_start) / clips
  return startup, clips / elapsed, 1e6 * cpu / clips, tree


def _with(cfg, **fields):
  for key, value in fields.items():
    cfg[key] = value
  return cfg


def _parse_mapping(text: str) -> dict[str, float]:
  pairs = [item.split('=') for item in text.split(',') if item]
  return {name: float(value) for name, value in pairs}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--datasets', default='penn_action,n_ucla,ntu60_xsub,synthetic_actions')
  parser.add_argument('--workers', default='-1',
                      help='comma-separated grain worker process counts (-1: the automatic default)')
  parser.add_argument('--threads', type=int, default=-1,
                      help='background threads per process (-1: the automatic default)')
  parser.add_argument('--batch_size', type=int, default=0, help='0 = the original batch size')
  parser.add_argument('--clips', type=int, default=2048, help='clips timed per configuration')
  parser.add_argument('--warmup_clips', type=int, default=2048,
                      help='clips read after the first batch and before the timing')
  parser.add_argument('--step_time_ms', default='',
                      help='training step time per dataset, e.g. ntu60_xsub=250,n_ucla=120')
  parser.add_argument('--data_dir', default='', help='read built TFDS data sources from here')
  args = parser.parse_args()

  step_times = _parse_mapping(args.step_time_ms)
  date = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
  print(f'CPU: {common.cpu_model()} ({os.cpu_count()} cores); date: {date}; '
        f"source: {'TFDS ' + args.data_dir if args.data_dir else 'in-memory synthetic clips'}\n")
  print('| dataset | batch | workers | threads | start-up s | clips/s | main-process CPU µs/clip | '
        'all-process CPU µs/clip | fastest step fed (ms) | step time (ms) | clips/s needed | keeps up |')
  print('|---|---|---|---|---|---|---|---|---|---|---|---|')
  for dataset in args.datasets.split(','):
    batch = args.batch_size or ORIGINAL_BATCH[dataset]
    num_batches = max(1, args.clips // batch)
    for workers in (int(w) for w in args.workers.split(',')):
      startup, clips_per_s, cpu_us, tree_us = measure(dataset, batch, workers, args.threads, num_batches,
                                                      args.data_dir or None, args.warmup_clips // batch)
      tree = '–' if tree_us is None else f'{tree_us:.0f}'
      fastest_step = 1000 * batch / clips_per_s
      if dataset in step_times:
        needed = 1000 * batch / step_times[dataset]
        extra = f'{step_times[dataset]:.0f} | {needed:.0f} | {"yes" if clips_per_s >= needed else "NO"}'
      else:
        extra = '– | – | –'
      resolved_workers, resolved_threads, _ = data_config_lib.input_parallelism(
          _with(data.default_data_config(dataset), num_workers=workers, num_threads=args.threads),
          batch_size=batch)
      print(f'| {dataset} | {batch} | {resolved_workers} | {resolved_threads} | {startup:.1f} | '
            f'{clips_per_s:.0f} | {cpu_us:.0f} | {tree} | {fastest_step:.1f} | {extra} |', flush=True)


if __name__ == '__main__':
  main()
