"""Inference benchmark: eval-mode classifier forward passes, this package's JAX against the PyTorch reference.

At batch 1 it reports the latency (median ms per clip); at a large batch the throughput (clips/s). JAX runs
the jitted ``CascadeClassifier.apply`` in deterministic mode; PyTorch the reference ``Classifier`` in
``eval()`` mode under ``torch.inference_mode()``, eager, with ``torch.set_num_threads(os.cpu_count())``.
Both run in alternating blocks in one process.

Streaming (``--streaming``, N-UCLA by default): the update latency of ``cfx.StreamingClassifier`` with stride 1 (one
frame in, the model's stored test transform on the window, one batch-1 forward, probabilities out), timed in
alternating blocks against a bare batch-1 forward of the same compiled function on an input already on the device,
and the number of compilations after warm-up. Targets: median within 15 % of the bare forward, p99 at most twice
its median, no compilation.

  python -m benchmarks.inference --output=/tmp/inference.json
  python -m benchmarks.inference --configs=n_ucla --large_batch=128
  python -m benchmarks.inference --streaming=only --stream_blocks=10 --stream_calls_per_block=20
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from cascadeformer_jax import api
from cascadeformer_jax.data import config as data_config_lib
from cascadeformer_jax.data import preprocessing as preprocessing_lib
from cascadeformer_jax.evaluate import streaming
from cascadeformer_jax.evaluate.forward import ClassifierForward
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.run import runtime
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models.presets import published_model_config

CONFIGS = ('n_ucla', 'ntu60_xview', 'ntu60_xsub')

TABLE_COLUMNS = (
    ('config', 'config'), ('batch', 'B'), ('jax_compile_s', 'JAX compile s'),
    ('jax_median_ms', 'JAX ms/batch'), ('torch_median_ms', 'PyTorch ms/batch'),
    ('jax_clips_per_s', 'JAX clips/s'), ('torch_clips_per_s', 'PyTorch clips/s'),
    ('speedup', 'JAX/PyTorch'), ('jax_call_rss_mib', 'JAX call RSS MiB'),
    ('torch_call_rss_mib', 'PyTorch call RSS MiB'), ('jax_tflops', 'JAX TFLOP/s'))

STREAM_COLUMNS = (
    ('config', 'config'), ('window', 'window'), ('stride', 'stride'), ('bare_median_ms', 'bare forward p50 ms'),
    ('bare_p99_ms', 'bare p99 ms'), ('stream_median_ms', 'stream update p50 ms'), ('stream_p99_ms', 'update p99 ms'),
    ('median_vs_bare', 'p50 / bare p50'), ('p99_vs_median', 'p99 / p50'), ('bare_p99_vs_median', 'bare p99 / p50'),
    ('transform_median_ms', 'transform ms'),
    ('compilations_after_warm_up', 'compilations after warm-up'), ('targets_met', 'targets met'))
# Targets of the streaming update (see the module docstring).
STREAM_MAX_MEDIAN_VS_BARE = 1.15
STREAM_MAX_P99_VS_MEDIAN = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--configs', default=None,
                      help=f'comma-separated subset of {list(CONFIGS)} (default: n_ucla,ntu60_xview; on a GPU '
                      'all three)')
  parser.add_argument('--variant', default='1.0', choices=('1.0', '1.1', '1.2'))
  parser.add_argument('--batch_sizes', default='1,64', help='comma-separated batch sizes (1 = latency)')
  parser.add_argument('--frames', type=int, default=64)
  parser.add_argument('--d_model', type=int, default=0, help='override (tiny smoke runs)')
  parser.add_argument('--num_heads', type=int, default=0, help='override')
  parser.add_argument('--num_layers', type=int, default=0, help='override')
  parser.add_argument('--ffn_dim', type=int, default=0, help='override')
  parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'), help='JAX compute dtype')
  parser.add_argument('--xla_options', default='',
                      help='XLA compiler options for the JAX forward, comma-separated key=value (e.g. '
                      'xla_cpu_experimental_ynn_fusion_type= to turn off YNNPACK fusions)')
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--blocks', type=int, default=5)
  parser.add_argument('--calls_per_block', type=int, default=4)
  parser.add_argument('--no_torch', action='store_true')
  parser.add_argument('--torch_device', default='cpu')
  parser.add_argument('--max_load', type=float, default=None,
                      help='wait until the 1-minute load average is at most this before timing')
  parser.add_argument('--max_wait_s', type=float, default=900.0)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--streaming', default='on', choices=('on', 'off', 'only'),
                      help='time the streaming update (only: nothing else)')
  parser.add_argument('--streaming_configs', default='n_ucla', help=f'comma-separated subset of {list(CONFIGS)}')
  parser.add_argument('--stream_stride', type=int, default=1, help='frames per emission (1: every update emits)')
  parser.add_argument('--stream_blocks', type=int, default=10)
  parser.add_argument('--stream_calls_per_block', type=int, default=20)
  parser.add_argument('--output', default='')
  args = parser.parse_args(argv)
  try:
    args.compiler_options = common.parse_options(args.xla_options)
  except ValueError as error:
    parser.error(f'--xla_options: {error}')
  try:
    args.batch_list = [int(b) for b in args.batch_sizes.split(',') if b.strip()]
  except ValueError:
    parser.error(f'--batch_sizes: expected comma-separated integers, got {args.batch_sizes!r}')
  if not args.batch_list or min(args.batch_list) < 1:
    parser.error(f'--batch_sizes: expected positive integers, got {args.batch_sizes!r}')
  if args.blocks * args.calls_per_block < 1 or args.warmup < 1:
    parser.error('need at least one warm-up call and one timed call')
  if args.stream_stride < 1 or args.stream_blocks * args.stream_calls_per_block < 2:
    parser.error('--stream_stride must be at least 1 and the streaming timing needs at least two calls')
  return args


def _overrides(args: argparse.Namespace) -> dict[str, int]:
  return {name: getattr(args, name) for name in ('d_model', 'num_heads', 'num_layers', 'ffn_dim')
          if getattr(args, name)}


@dataclasses.dataclass
class JaxForward:
  compiled: Any
  params: Any
  clips: jax.Array
  compile_s: float

  def __call__(self) -> None:
    jax.block_until_ready(self.compiled(self.params, self.clips))


def build_jax_forward(config, params, batch_size: int, frames: int, seed: int,
                      compiler_options: dict[str, Any] | None = None) -> JaxForward:
  model = CascadeClassifier(config)
  clips = jnp.asarray(np.random.default_rng(seed).standard_normal(
      (batch_size, frames, config.num_joints, config.coords)).astype(np.float32))
  forward = jax.jit(lambda p, x: model.apply({'params': p}, x))
  start = time.perf_counter()
  compiled = forward.lower(params, clips).compile(compiler_options=compiler_options or None)
  return JaxForward(compiled, params, clips, time.perf_counter() - start)


def build_torch_forward(model, config, batch_size: int, frames: int, seed: int, device: str):
  import torch  # pylint: disable=g-import-not-at-top

  generator = torch.Generator().manual_seed(seed)
  clips = torch.randn(batch_size, frames, config.num_joints, config.coords, generator=generator).to(device)
  sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)

  def forward():
    with torch.inference_mode():
      model(clips)
    sync()

  return forward


def run_config(dataset: str, args: argparse.Namespace) -> list[dict[str, Any]]:
  head_overrides = {'cross_attn_heads': args.num_heads, 'spatial_heads': args.num_heads} if args.num_heads else {}
  jax_config = published_model_config(dataset, args.variant).replace(dtype=args.dtype, **_overrides(args),
                                                                     **head_overrides)
  model = CascadeClassifier(jax_config)
  sample = jnp.zeros((1, args.frames, jax_config.num_joints, jax_config.coords), jnp.float32)
  params = partitioning.run_once(lambda key, x: model.init(key, x)['params'], jax.random.key(args.seed), sample)
  torch_model = torch_config = None
  if not args.no_torch:
    import torch  # pylint: disable=g-import-not-at-top

    from benchmarks import torch_reference as tr  # pylint: disable=g-import-not-at-top

    tr.use_all_cores()
    torch_config = dataclasses.replace(tr.published_config(dataset, args.variant), **_overrides(args))
    torch.manual_seed(args.seed)
    torch_model = tr.Classifier(torch_config).to(args.torch_device).eval()
  rows = []
  for batch_size in args.batch_list:
    row: dict[str, Any] = {'config': dataset, 'batch': batch_size, 'frames': args.frames, 'variant': args.variant,
                           'd_model': jax_config.d_model, 'num_layers': jax_config.num_layers, 'dtype': args.dtype}
    jax_forward = build_jax_forward(jax_config, params, batch_size, args.frames, args.seed,
                                    args.compiler_options)
    row['jax_compile_s'] = jax_forward.compile_s
    runners = {'jax': jax_forward}
    if torch_model is not None:
      runners['torch'] = build_torch_forward(torch_model, torch_config, batch_size, args.frames, args.seed,
                                             args.torch_device)
    for runner in runners.values():
      for _ in range(args.warmup):
        runner()
    for name, runner in runners.items():
      with common.PeakRss() as rss:
        runner()
      row[f'{name}_call_rss_mib'] = rss.delta_mib
    row['load_before_timing'] = common.load_average()
    times = common.interleaved_times(runners, args.blocks, args.calls_per_block)
    row['load_after_timing'] = common.load_average()
    for name, samples in times.items():
      summary = common.summarize(samples)
      row.update({f'{name}_{key}': value for key, value in summary.items()})
      row[f'{name}_clips_per_s'] = batch_size / (summary['median_ms'] / 1e3)
    if 'torch' in times:
      row['speedup'] = row['torch_median_ms'] / row['jax_median_ms']
    flops = common.compiled_flops(jax_forward.compiled)
    if flops:
      row['xla_gflop_per_call'] = flops / 1e9
      row['jax_tflops'] = flops / (row['jax_median_ms'] / 1e3) / 1e12
    rows.append(row)
    print(f'done {dataset} batch {batch_size}: JAX {row["jax_median_ms"]:.2f} ms'
          + (f', PyTorch {row["torch_median_ms"]:.2f} ms' if 'torch_median_ms' in row else ''),
          file=sys.stderr, flush=True)
  return rows


def _p99(seconds: list[float]) -> float:
  return 1e3 * statistics.quantiles(seconds, n=100, method='inclusive')[98]


def _random_params(model: CascadeClassifier, sample: jax.Array, seed: int) -> Any:
  """Parameters of ``model.init``'s shapes drawn with NumPy (kernels scaled by 1/sqrt(fan in), LayerNorm scales
  near 1): a latency measurement needs realistic magnitudes, not the initialisers, which take long to compile."""
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = jax.tree_util.keystr(path[-1:])
    if 'scale' in name:
      return jnp.asarray(1 + rng.normal(0, 0.1, leaf.shape), leaf.dtype)
    scale = 1 / np.sqrt(leaf.shape[0]) if 'kernel' in name else 0.02
    return jnp.asarray(rng.normal(0, scale, leaf.shape), leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, jax.eval_shape(model.init, jax.random.key(seed), sample)['params'])


def _moving_skeleton(frames: int, frame_shape: tuple[int, ...], seed: int) -> np.ndarray:
  """(frames,) + frame_shape coordinates moving smoothly (every coordinate a small random walk)."""
  rng = np.random.default_rng(seed)
  rest = rng.normal(0, 0.3, (1,) + frame_shape)
  return (rest + np.cumsum(rng.normal(0, 0.02, (frames,) + frame_shape), axis=0)).astype(np.float32)


def run_streaming(dataset: str, args: argparse.Namespace) -> dict[str, Any]:
  """Streaming update latency against a bare batch-1 forward of the same model (module docstring)."""
  head_overrides = {'cross_attn_heads': args.num_heads, 'spatial_heads': args.num_heads} if args.num_heads else {}
  config = published_model_config(dataset, args.variant).replace(dtype=args.dtype, **_overrides(args),
                                                                 **head_overrides)
  data = data_config_lib.default_data_config(dataset, args.variant)
  data.num_frames = args.frames
  class_names = [f'class {i}' for i in range(config.num_classes)]
  sample = jnp.zeros((1, args.frames, config.num_joints, config.coords), jnp.float32)
  params = _random_params(CascadeClassifier(config), sample, args.seed)
  classifier = api.Classifier(config, params, preprocessing_lib.describe(data, class_names))
  stream = streaming.StreamingClassifier(classifier, stride=args.stream_stride)
  updates = args.stream_blocks * args.stream_calls_per_block
  frames = _moving_skeleton(stream.window + (args.warmup + updates) * args.stream_stride + args.stream_stride,
                            stream.frame_shape, args.seed)
  start = time.perf_counter()
  stream.warm_up()
  compile_s = time.perf_counter() - start
  skeleton, length = preprocessing_lib.prepare_clip(frames[:stream.window], stream.preprocessing)
  batch = jax.device_put({'skeleton': skeleton[None], 'lengths': np.array([length], np.int32)})
  forward = ClassifierForward(config)

  def bare() -> None:
    jax.block_until_ready(forward.batch(params, batch))

  for _ in range(args.warmup):
    bare()
  position = 0

  def update() -> None:  # `stride` frames in, one emission out
    nonlocal position
    for _ in range(args.stream_stride):
      prediction = stream.push(frames[position])
      position += 1
    assert prediction is not None

  # From here on nothing may compile: the stream's first frames, its first emissions and the timed updates.
  with runtime.count_compilations() as compilations:
    for _ in range(stream.window - args.stream_stride):  # fill the window up to the first emission
      stream.push(frames[position])
      position += 1
    for _ in range(args.warmup):
      update()
    window = stream.window_frames()
    transform = [time.perf_counter()]
    for _ in range(20):
      preprocessing_lib.prepare_clip(window, stream.preprocessing)
      transform.append(time.perf_counter())
    row: dict[str, Any] = {'config': dataset, 'window': stream.window, 'stride': args.stream_stride,
                           'variant': args.variant, 'd_model': config.d_model, 'num_layers': config.num_layers,
                           'dtype': args.dtype, 'warm_up_compile_s': compile_s,
                           'transform_median_ms': 1e3 * statistics.median(np.diff(transform)),
                           'load_before_timing': common.load_average()}
    times = common.interleaved_times({'bare': bare, 'stream': update}, args.stream_blocks,
                                     args.stream_calls_per_block)
  row['load_after_timing'] = common.load_average()
  for name, samples in times.items():
    row.update({f'{name}_{key}': value for key, value in common.summarize(samples).items()})
    row[f'{name}_p99_ms'] = _p99(samples)
  row['median_vs_bare'] = row['stream_median_ms'] / row['bare_median_ms']
  row['p99_vs_median'] = row['stream_p99_ms'] / row['stream_median_ms']
  row['bare_p99_vs_median'] = row['bare_p99_ms'] / row['bare_median_ms']  # the machine's own jitter
  row['compilations_after_warm_up'] = compilations.total
  met = {'median': row['median_vs_bare'] <= STREAM_MAX_MEDIAN_VS_BARE,
         'p99': row['p99_vs_median'] <= STREAM_MAX_P99_VS_MEDIAN, 'no compilation': compilations.total == 0}
  row['targets'] = met
  row['targets_met'] = 'yes' if all(met.values()) else 'no: ' + ', '.join(name for name, ok in met.items() if not ok)
  print(f'done {dataset} streaming: update {row["stream_median_ms"]:.2f} ms (p99 {row["stream_p99_ms"]:.2f}), bare '
        f'forward {row["bare_median_ms"]:.2f} ms', file=sys.stderr, flush=True)
  return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  default_configs = ','.join(CONFIGS) if jax.default_backend() == 'gpu' else 'n_ucla,ntu60_xview'
  datasets = common.parse_list(args.configs or default_configs, CONFIGS, 'configs')
  stream_datasets = common.parse_list(args.streaming_configs, CONFIGS, 'streaming_configs')
  wait = common.wait_for_quiet(args.max_load, args.max_wait_s)
  rows = [] if args.streaming == 'only' else [row for dataset in datasets for row in run_config(dataset, args)]
  stream_rows = [] if args.streaming == 'off' else [run_streaming(dataset, args) for dataset in stream_datasets]
  settings = {key: value for key, value in vars(args).items() if key != 'batch_list'}
  payload = {'benchmark': 'inference', 'command': ' '.join(['python -m benchmarks.inference'] + (
      sys.argv[1:] if argv is None else list(argv))), 'machine': common.machine_info(), 'wait': wait,
             'settings': settings, 'results': rows, 'streaming': stream_rows}
  if rows:
    print(common.markdown_table(rows, TABLE_COLUMNS))
  if stream_rows:
    print(common.markdown_table(stream_rows, STREAM_COLUMNS))
  if args.output:
    common.write_json(args.output, payload)
  return payload


if __name__ == '__main__':
  main()
