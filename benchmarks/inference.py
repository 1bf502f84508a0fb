"""Inference benchmark: eval-mode classifier forward passes in JAX, ONNX Runtime and PyTorch, side by side.

At batch 1 it reports the latency (median and 99th percentile ms per call); at a large batch the throughput
(clips/s). JAX runs the jitted ``CascadeClassifier.apply`` in deterministic mode; ONNX Runtime the same model with
the same parameters exported by ``python -m cascadeformer_jax.export``'s ONNX route (``cascadeformer_jax.deploy``;
CPU provider, worker threads sleep between calls instead of spinning); PyTorch the reference ``Classifier``
(``benchmarks/torch_reference.py``) in ``eval()`` mode under ``torch.inference_mode()``, eager, with
``torch.set_num_threads(os.cpu_count())`` (``--threads`` sets PyTorch's and ONNX Runtime's thread count). All run
in alternating blocks in one process. The ONNX export's conversion time and size are reported per config, and the
batch-1 ONNX Runtime / PyTorch latency ratio is checked against the 1.5x target; where it is missed the output says
where ONNX Runtime's time goes (its operator profile).

Streaming (``--streaming``, N-UCLA by default): the update latency of ``cfx.StreamingClassifier`` with stride 1 (one
frame in, the model's stored test transform on the window, one batch-1 forward, probabilities out), timed in
alternating blocks against a bare batch-1 forward of the same compiled function on an input already on the device,
and the number of compilations after warm-up. Targets: median within 15 % of the bare forward, p99 at most twice
its median, no compilation.

  python -m benchmarks.inference --output=/tmp/inference.json
  python -m benchmarks.inference --configs=n_ucla --large_batch=128
  python -m benchmarks.inference --streaming=only --stream_blocks=10 --stream_calls_per_block=20
  python -m benchmarks.inference --runtimes=jax,onnxruntime   # without PyTorch
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import statistics
import sys
import tempfile
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
RUNTIMES = ('jax', 'onnxruntime', 'torch')
RUNTIME_NAMES = {'jax': 'JAX (jit)', 'onnxruntime': 'ONNX Runtime', 'torch': 'PyTorch eager'}
# ONNX Runtime's batch-1 latency should be at least this much lower than PyTorch eager's.
ONNX_LATENCY_TARGET = 1.5

TABLE_COLUMNS = (
    ('config', 'config'), ('batch', 'B'), ('runtime', 'runtime'), ('median_ms', 'p50 ms'), ('p99_ms', 'p99 ms'),
    ('clips_per_s', 'clips/s'), ('vs_torch', 'vs PyTorch'), ('call_rss_mib', 'call RSS MiB'))

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
  parser.add_argument('--runtimes', default=','.join(RUNTIMES), help=f'comma-separated subset of {list(RUNTIMES)}')
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
                      'xla_cpu_experimental_ynn_fusion_type= to turn off YNNPACK fusions, as the package\'s '
                      'evaluation does on CPU)')
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--blocks', type=int, default=5)
  parser.add_argument('--calls_per_block', type=int, default=4, help='timed calls per block at batch sizes > 1')
  parser.add_argument('--latency_calls_per_block', type=int, default=20,
                      help='timed calls per block at batch 1 (the 99th percentile needs ~100 calls)')
  parser.add_argument('--no_torch', action='store_true', help='same as leaving torch out of --runtimes')
  parser.add_argument('--torch_device', default='cpu')
  parser.add_argument('--threads', type=int, default=0,
                      help='intra-op threads of PyTorch and ONNX Runtime (0: one per core); JAX keeps its own pool')
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
  if args.blocks * min(args.calls_per_block, args.latency_calls_per_block) < 1 or args.warmup < 1:
    parser.error('need at least one warm-up call and one timed call')
  if args.stream_stride < 1 or args.stream_blocks * args.stream_calls_per_block < 2:
    parser.error('--stream_stride must be at least 1 and the streaming timing needs at least two calls')
  args.runtime_list = [r for r in common.parse_list(args.runtimes, RUNTIMES, 'runtimes')
                       if not (args.no_torch and r == 'torch')]
  if 'jax' not in args.runtime_list:
    parser.error('--runtimes: jax is the reference the others are built from; keep it')
  return args


def _overrides(args: argparse.Namespace) -> dict[str, int]:
  return {name: getattr(args, name) for name in ('d_model', 'num_heads', 'num_layers', 'ffn_dim')
          if getattr(args, name)}


def _clips(batch_size: int, frames: int, config, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).standard_normal(
      (batch_size, frames, config.num_joints, config.coords)).astype(np.float32)


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
  clips = jnp.asarray(_clips(batch_size, frames, config, seed))
  forward = jax.jit(lambda p, x: model.apply({'params': p}, x))
  start = time.perf_counter()
  compiled = forward.lower(params, clips).compile(compiler_options=compiler_options or None)
  return JaxForward(compiled, params, clips, time.perf_counter() - start)


@dataclasses.dataclass
class OnnxModel:
  """The JAX model exported to ONNX (dynamic batch), as `python -m cascadeformer_jax.export` writes it."""

  model: bytes
  convert_s: float

  @classmethod
  def export(cls, config, params, frames: int) -> 'OnnxModel':
    from cascadeformer_jax.deploy import onnx_format  # pylint: disable=g-import-not-at-top
    from cascadeformer_jax.deploy import serving  # pylint: disable=g-import-not-at-top

    signature = serving.Signature(frames, frames, config.num_joints, config.coords, config.num_classes, False)
    start = time.perf_counter()
    model = onnx_format.convert(serving.serving_function(config, params), signature)
    return cls(model, time.perf_counter() - start)

  def session(self, threads: int = 0):
    from cascadeformer_jax.deploy import onnx_format  # pylint: disable=g-import-not-at-top

    return onnx_format.session(self.model, threads)


def build_onnx_forward(onnx_model: OnnxModel, config, batch_size: int, frames: int, seed: int, threads: int = 0):
  session = onnx_model.session(threads)
  feed = {'skeleton': _clips(batch_size, frames, config, seed)}

  def forward():
    session.run(['logits'], feed)

  return forward


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


def onnx_operator_profile(onnx_model: OnnxModel, config, frames: int, seed: int, calls: int = 20) -> dict[str, float]:
  """Share of ONNX Runtime's kernel time per operator type at batch 1 (its own profiler), largest first."""
  import onnxruntime  # pylint: disable=g-import-not-at-top

  with tempfile.TemporaryDirectory() as folder:
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(folder, 'profile')
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(onnx_model.model, options, providers=['CPUExecutionProvider'])
    feed = {'skeleton': _clips(1, frames, config, seed)}
    for _ in range(calls):
      session.run(['logits'], feed)
    with open(session.end_profiling()) as f:
      events = json.load(f)
  by_type = collections.Counter()
  for event in events:
    if event.get('cat') == 'Node' and event.get('name', '').endswith('_kernel_time'):
      by_type[event.get('args', {}).get('op_name', '?')] += event.get('dur', 0)
  total = sum(by_type.values()) or 1
  return {op: duration / total for op, duration in by_type.most_common()}


def latency_verdict(row: dict[str, Any], profile: dict[str, float] | None) -> str:
  """One line on the ONNX Runtime / PyTorch batch-1 latency target."""
  ratio = row['torch_median_ms'] / row['onnxruntime_median_ms']
  line = (f'{row["config"]}: ONNX Runtime batch-1 latency {row["onnxruntime_median_ms"]:.2f} ms vs PyTorch eager '
          f'{row["torch_median_ms"]:.2f} ms = {ratio:.2f}x (target >= {ONNX_LATENCY_TARGET}x): ')
  if ratio >= ONNX_LATENCY_TARGET:
    return line + 'met'
  line += 'not met'
  if profile:
    # Einsum: the attention's batched products, which jax2onnx emits as Einsum rather than MatMul.
    gemm = sum(share for op, share in profile.items() if op in ('MatMul', 'Gemm', 'FusedMatMul', 'FusedGemm', 'Einsum'))
    top = ', '.join(f'{op} {100 * share:.0f}%' for op, share in list(profile.items())[:4])
    line += (f'; {100 * gemm:.0f}% of ONNX Runtime\'s kernel time is in matrix products (Gemm, MatMul, Einsum; top '
             f'operators: {top}), float32 products of the same shapes as PyTorch\'s')
  return line


def run_config(dataset: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
  head_overrides = {'cross_attn_heads': args.num_heads, 'spatial_heads': args.num_heads} if args.num_heads else {}
  jax_config = published_model_config(dataset, args.variant).replace(dtype=args.dtype, **_overrides(args),
                                                                     **head_overrides)
  model = CascadeClassifier(jax_config)
  sample = jnp.zeros((1, args.frames, jax_config.num_joints, jax_config.coords), jnp.float32)
  params = partitioning.run_once(lambda key, x: model.init(key, x)['params'], jax.random.key(args.seed), sample)
  export_stats: dict[str, Any] = {'config': dataset}
  onnx_model = None
  if 'onnxruntime' in args.runtime_list:
    onnx_model = OnnxModel.export(jax_config.replace(dtype='float32'), params, args.frames)
    export_stats.update(onnx_convert_s=onnx_model.convert_s, onnx_mib=len(onnx_model.model) / 2**20)
  torch_model = torch_config = None
  if 'torch' in args.runtime_list:
    import torch  # pylint: disable=g-import-not-at-top

    from benchmarks import torch_reference as tr  # pylint: disable=g-import-not-at-top

    if args.threads:
      torch.set_num_threads(args.threads)
    else:
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
    if onnx_model is not None:
      runners['onnxruntime'] = build_onnx_forward(onnx_model, jax_config, batch_size, args.frames, args.seed,
                                                  args.threads)
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
    calls = args.latency_calls_per_block if batch_size == 1 else args.calls_per_block
    times = common.interleaved_times(runners, args.blocks, calls)
    row['load_after_timing'] = common.load_average()
    for name, samples in times.items():
      summary = common.summarize(samples)
      row.update({f'{name}_{key}': value for key, value in summary.items()})
      row[f'{name}_clips_per_s'] = batch_size / (summary['median_ms'] / 1e3)
    if 'torch' in times:
      row['speedup'] = row['torch_median_ms'] / row['jax_median_ms']
      if 'onnxruntime' in times:
        row['onnxruntime_speedup'] = row['torch_median_ms'] / row['onnxruntime_median_ms']
    flops = common.compiled_flops(jax_forward.compiled)
    if flops:
      row['xla_gflop_per_call'] = flops / 1e9
      row['jax_tflops'] = flops / (row['jax_median_ms'] / 1e3) / 1e12
    rows.append(row)
    print(f'done {dataset} batch {batch_size}: ' + ', '.join(
        f'{RUNTIME_NAMES[name]} {row[f"{name}_median_ms"]:.2f} ms' for name in runners), file=sys.stderr, flush=True)
  latency = next((row for row in rows if row['batch'] == 1), None)
  if latency is not None and 'onnxruntime_speedup' in latency:
    profile = None
    if latency['onnxruntime_speedup'] < ONNX_LATENCY_TARGET:
      profile = onnx_operator_profile(onnx_model, jax_config, args.frames, args.seed)
      export_stats['onnxruntime_operator_shares'] = profile
    export_stats['onnxruntime_latency_verdict'] = latency_verdict(latency, profile)
  return rows, export_stats


def long_rows(rows: list[dict[str, Any]], runtimes: list[str]) -> list[dict[str, Any]]:
  """One table line per (config, batch, runtime)."""
  lines = []
  for row in rows:
    for name in runtimes:
      if f'{name}_median_ms' not in row:
        continue
      speedup = row.get('torch_median_ms', 0.0) / row[f'{name}_median_ms'] if 'torch_median_ms' in row else None
      lines.append({'config': row['config'], 'batch': row['batch'], 'runtime': RUNTIME_NAMES[name],
                    'median_ms': row[f'{name}_median_ms'], 'p99_ms': row[f'{name}_p99_ms'],
                    'clips_per_s': row[f'{name}_clips_per_s'], 'vs_torch': speedup,
                    'call_rss_mib': row[f'{name}_call_rss_mib']})
  return lines


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
  rows, exports = [], []
  if args.streaming != 'only':
    for dataset in datasets:
      config_rows, export_stats = run_config(dataset, args)
      rows += config_rows
      exports.append(export_stats)
  stream_rows = [] if args.streaming == 'off' else [run_streaming(dataset, args) for dataset in stream_datasets]
  settings = {key: value for key, value in vars(args).items() if key not in ('batch_list', 'runtime_list')}
  payload = {'benchmark': 'inference', 'command': ' '.join(['python -m benchmarks.inference'] + (
      sys.argv[1:] if argv is None else list(argv))), 'machine': common.machine_info(), 'wait': wait,
             'settings': settings, 'results': rows, 'exports': exports, 'streaming': stream_rows}
  if rows:
    print(common.markdown_table(long_rows(rows, args.runtime_list), TABLE_COLUMNS))
  for export_stats in exports:
    if 'onnx_convert_s' in export_stats:
      print(f'{export_stats["config"]}: ONNX export {export_stats["onnx_mib"]:.1f} MiB, converted in '
            f'{export_stats["onnx_convert_s"]:.1f} s')
    if 'onnxruntime_latency_verdict' in export_stats:
      print(export_stats['onnxruntime_latency_verdict'])
  if stream_rows:
    print(common.markdown_table(stream_rows, STREAM_COLUMNS))
  if args.output:
    common.write_json(args.output, payload)
  return payload


if __name__ == '__main__':
  main()
