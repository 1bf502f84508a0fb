"""Training-step benchmark: this package's JAX steps against the PyTorch reference, in one process.

For each chosen config and step (masked pretraining, cascade fine-tuning) it reports the JAX compile time,
the median step time over the timed steps (after warm-up), clips/s, peak memory and the JAX / PyTorch speed
ratio. JAX and PyTorch steps run in alternating blocks (A B, B A, ...) so that both see the same machine
conditions. PyTorch runs eager with ``torch.set_num_threads(os.cpu_count())``, as the original code ran.

Timing: each timed call runs ``--steps_per_sync`` steps back to back and waits once (default 1 on CPU, where a
step takes far longer than a dispatch, and 10 on a GPU, where waiting after every step would time the host's
latency instead of the device's throughput); ms/step is the call's time divided by that count.

Precision: ``--dtype=float32`` runs at ``--matmul_precision`` (default ``highest``, true float32). On Ampere and
Hopper GPUs JAX's ``default`` precision multiplies float32 matrices as TF32, so such a row is labelled TF32, not
fp32. PyTorch runs on the GPU when a CUDA build is present (``--torch_device=auto``), with TF32 off unless
``--torch_tf32``.

Memory: on CPU the peak resident-set growth during one (post-warm-up) step of each framework, i.e. its
working memory beyond parameters and optimiser state, plus XLA's planned temporary buffers; on a GPU the JAX
device's peak bytes in use. FLOP/s come from XLA's cost analysis of the compiled step; on a GPU also as a
fraction of the device's dense peak (bf16 / fp32).

  python -m benchmarks.train_step --output=/tmp/train_step.json
  python -m benchmarks.train_step --configs=n_ucla --steps=finetune --blocks=6 --steps_per_block=3
  python -m benchmarks.train_step --configs=ntu60_xsub --dtype=bfloat16 --no_torch     # on a GPU
  python -m benchmarks.train_step --configs=n_ucla --matmul_precision=tensorfloat32 --torch_tf32  # TF32 both
  python -m benchmarks.train_step --jax=default,flax_dropout,unsafe_rbg     # compare JAX implementations

JAX implementations (``--jax``; each gets a row and its ratio to PyTorch):
  default       this package as it is, threefry PRNG keys.
  flax_dropout  the package with ``flax.linen.Dropout`` instead of its own dropout (the pre-optimisation code;
                the same random draws, slower on CPU).
  rbg, unsafe_rbg  the package with PRNG keys of that JAX implementation (opt-in: other random streams with
                the same distributions).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.config.configuration import stage_config
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import cascadeformer as cascadeformer_lib
from cascadeformer_jax.models import layers as layers_lib
from cascadeformer_jax.models import MaskedPretrainer
from cascadeformer_jax.models.presets import published_model_config
from cascadeformer_jax.train import optim
from cascadeformer_jax.train import steps as steps_lib

# Benchmark configs: published architecture and the batch size of the issue (T = 64 frames everywhere).
CONFIGS = {'n_ucla': 32, 'ntu60_xview': 16, 'ntu60_xsub': 64}
STEPS = ('pretrain', 'finetune')
JAX_IMPLEMENTATIONS = ('default', 'flax_dropout', 'rbg', 'unsafe_rbg')
MATMUL_PRECISIONS = ('highest', 'tensorfloat32', 'default')

TABLE_COLUMNS = (
    ('config', 'config'), ('step', 'step'), ('batch', 'B'), ('implementation', 'implementation'),
    ('compile_s', 'compile s'), ('median_ms', 'ms/step'), ('iqr_ms', 'IQR ms'), ('clips_per_s', 'clips/s'),
    ('speedup_vs_torch', 'vs PyTorch'), ('step_rss_mib', 'step RSS MiB'), ('xla_temp_mib', 'XLA temp MiB'),
    ('device_peak_mib', 'device peak MiB'), ('tflops', 'TFLOP/s'), ('peak_fraction', 'of peak'))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--configs', default=None,
                      help=f'comma-separated subset of {list(CONFIGS)} (default: n_ucla,ntu60_xview; on a GPU '
                      'all three)')
  parser.add_argument('--steps', default='pretrain,finetune', help=f'comma-separated subset of {list(STEPS)}')
  parser.add_argument('--variant', default='1.0', choices=('1.0', '1.1', '1.2'))
  parser.add_argument('--batch_size', type=int, default=0, help='override the config batch size')
  parser.add_argument('--frames', type=int, default=64)
  parser.add_argument('--d_model', type=int, default=0, help='override (tiny smoke runs)')
  parser.add_argument('--num_heads', type=int, default=0, help='override')
  parser.add_argument('--num_layers', type=int, default=0, help='override')
  parser.add_argument('--ffn_dim', type=int, default=0, help='override')
  parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'), help='JAX compute dtype')
  parser.add_argument('--matmul_precision', default='highest', choices=MATMUL_PRECISIONS,
                      help="JAX float32 matmul precision ('default' is TF32 on Ampere/Hopper GPUs)")
  parser.add_argument('--steps_per_sync', type=int, default=0,
                      help='steps per timed call, one wait for the device per call (0: 1 on CPU, 10 on a GPU)')
  parser.add_argument('--jax', default='default',
                      help=f'comma-separated JAX implementations to time, from {list(JAX_IMPLEMENTATIONS)}')
  parser.add_argument('--xla_options', default='',
                      help='XLA compiler options for the JAX steps, comma-separated key=value '
                      '(e.g. xla_cpu_use_onednn=true); same effect as XLA_FLAGS, for one process')
  parser.add_argument('--warmup', type=int, default=2, help='untimed steps per framework after compiling')
  parser.add_argument('--blocks', type=int, default=5, help='alternating blocks per framework')
  parser.add_argument('--steps_per_block', type=int, default=4)
  parser.add_argument('--no_torch', action='store_true', help='JAX only (no ratio)')
  parser.add_argument('--torch_device', default='auto',
                      help="'cpu', 'cuda' or 'auto' (cuda when this torch build sees a GPU)")
  parser.add_argument('--torch_tf32', action='store_true', help='let PyTorch use TF32 for float32 matmuls')
  parser.add_argument('--max_load', type=float, default=None,
                      help='wait until the 1-minute load average is at most this before timing')
  parser.add_argument('--max_wait_s', type=float, default=900.0)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--output', default='', help='write the results as JSON here')
  args = parser.parse_args(argv)
  try:
    args.compiler_options = common.parse_options(args.xla_options)
  except ValueError as error:
    parser.error(f'--xla_options: {error}')
  if args.blocks * args.steps_per_block < 1 or args.warmup < 1 or args.steps_per_sync < 0:
    parser.error('need at least one warm-up step and one timed step')
  return args


def model_configs(dataset: str, args: argparse.Namespace):
  """The JAX ModelConfig and the PyTorch reference Config of ``dataset`` with the command-line overrides."""
  overrides = {name: getattr(args, name) for name in ('d_model', 'num_heads', 'num_layers', 'ffn_dim')
               if getattr(args, name)}
  head_overrides = {'cross_attn_heads': args.num_heads, 'spatial_heads': args.num_heads} if args.num_heads else {}
  jax_config = published_model_config(dataset, args.variant).replace(dtype=args.dtype, **overrides,
                                                                     **head_overrides)
  torch_config = None
  if not args.no_torch:
    from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top

    torch_config = dataclasses.replace(torch_reference.published_config(dataset, args.variant), **overrides)
  return jax_config, torch_config


def stage_for(step_kind: str, dataset: str, variant: str) -> Any:
  """The stage config of the original recipe, as the PyTorch reference uses it.

  See docs/original_code.md, training recipes.
  """
  if step_kind == 'pretrain':
    return stage_config(optimizer='adam', lr=1e-4, mask_ratio=0.3, mask_mode='joints')
  ntu = dataset.startswith('ntu')
  cross_view_lr = dataset == 'ntu60_xview' and variant != '1.2'
  weight_decay = 1e-2 if (ntu or (dataset == 'n_ucla' and variant != '1.1')) else 1e-4
  return stage_config(optimizer='adamw', lr=1e-4 if cross_view_lr else 3e-5, weight_decay=weight_decay,
                      label_smoothing=0.05 if ntu else 0.0)


@dataclasses.dataclass
class JaxStep:
  compiled: Any
  state: Any
  batch: dict[str, jax.Array]
  rng: jax.Array
  compile_s: float
  steps_per_sync: int = 1

  def __call__(self) -> None:
    """Runs `steps_per_sync` steps back to back, then waits for the device once."""
    for _ in range(self.steps_per_sync):
      self.state, metrics = self.compiled(self.state, self.batch, self.rng)
    jax.block_until_ready((self.state, metrics))


@contextlib.contextmanager
def flax_dropout():
  """Builds models with ``flax.linen.Dropout`` instead of the package's dropout while active."""
  saved = layers_lib.Dropout, cascadeformer_lib.Dropout
  layers_lib.Dropout = cascadeformer_lib.Dropout = nn.Dropout
  try:
    yield
  finally:
    layers_lib.Dropout, cascadeformer_lib.Dropout = saved


def build_jax_step(step_kind: str, dataset: str, config, batch_size: int, frames: int, seed: int,
                   implementation: str = 'default', compiler_options: dict[str, Any] | None = None,
                   matmul_precision: str = 'highest', steps_per_sync: int = 1) -> JaxStep:
  """Initialises the model and optimiser and compiles the step as the trainer does (jit, donated state).

  float32 matmuls are compiled at `matmul_precision` ('highest', 'tensorfloat32' or 'default').
  """
  if implementation == 'flax_dropout':
    with flax_dropout():
      return build_jax_step(step_kind, dataset, config, batch_size, frames, seed,
                            compiler_options=compiler_options, matmul_precision=matmul_precision,
                            steps_per_sync=steps_per_sync)
  prng_impl = implementation if implementation in ('rbg', 'unsafe_rbg') else 'threefry2x32'
  model = MaskedPretrainer(config) if step_kind == 'pretrain' else CascadeClassifier(config)
  stage = stage_for(step_kind, dataset, config.variant)
  data_rng = np.random.default_rng(seed)
  clips = data_rng.standard_normal((batch_size, frames, config.num_joints, config.coords)).astype(np.float32)
  batch = {'skeleton': jnp.asarray(clips),
           'label': jnp.asarray(data_rng.integers(0, config.num_classes, batch_size), jnp.int32)}
  params = partitioning.run_once(lambda key, x: model.init(key, x)['params'], jax.random.key(seed),
                                 batch['skeleton'])
  optimizer, schedule = optim.make_optimizer(stage, steps_per_epoch=1000, params=params)
  state = partitioning.run_once(lambda p: steps_lib.init_state(p, optimizer), params)
  make_step = steps_lib.make_pretrain_step if step_kind == 'pretrain' else steps_lib.make_finetune_step
  step = jax.jit(make_step(model, optimizer, schedule, stage), donate_argnums=(0,))
  rng = jax.random.key(seed + 1, impl=prng_impl)
  start = time.perf_counter()
  with jax.default_matmul_precision(matmul_precision):
    compiled = step.lower(state, batch, rng).compile(compiler_options=compiler_options or None)
  compile_s = time.perf_counter() - start
  return JaxStep(compiled, state, batch, rng, compile_s, steps_per_sync)


def resolve_torch_device(device: str) -> str:
  """'auto' -> 'cuda' when this torch build sees a GPU, else 'cpu'."""
  if device != 'auto':
    return device
  import torch  # pylint: disable=g-import-not-at-top

  return 'cuda' if torch.cuda.is_available() else 'cpu'


def build_torch_step(step_kind: str, config, batch_size: int, frames: int, seed: int, device: str,
                     tf32: bool = False, steps_per_sync: int = 1):
  """The PyTorch reference step (eager) as a no-argument callable: `steps_per_sync` steps, then one wait.

  float32 matmuls use TF32 only with `tf32` (PyTorch's CUDA default for matmuls is off; cuDNN's is on, so both
  are set explicitly).
  """
  import torch  # pylint: disable=g-import-not-at-top

  from benchmarks import torch_reference as tr  # pylint: disable=g-import-not-at-top

  tr.use_all_cores()
  torch.backends.cuda.matmul.allow_tf32 = tf32
  torch.backends.cudnn.allow_tf32 = tf32
  generator = torch.Generator().manual_seed(seed)
  clips = torch.randn(batch_size, frames, config.num_joints, config.coords, generator=generator).to(device)
  labels = torch.randint(0, config.num_classes, (batch_size,), generator=generator).to(device)
  sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
  torch.manual_seed(seed)
  if step_kind == 'finetune':
    train = tr.build_finetune_step(config, seed=seed, model=tr.Classifier(config).to(device))
    one_step = lambda: train.step(clips, labels)
  elif device == 'cpu':
    train = tr.build_pretrain_step(config, seed=seed)
    one_step = lambda: train.step(clips)
  else:
    # The reference draws the mask on the CPU; off the CPU it has to be moved to the model's device.
    model = tr.Pretrainer(config).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def one_step():
      mask = tr.random_mask(batch_size, frames, config.num_joints).to(device)
      loss = model.loss(clips, mask, eps=1e-8)
      optimizer.zero_grad()
      loss.backward()
      optimizer.step()

  def run():
    for _ in range(steps_per_sync):
      one_step()
    sync()

  return run


def jax_dtype_label(dtype: str, matmul_precision: str) -> str:
  """What the float32 matmuls really are: 'bfloat16', 'float32' (highest) or 'tf32' (explicit or GPU default)."""
  if dtype == 'bfloat16':
    return 'bfloat16'
  if matmul_precision == 'highest':
    return 'float32'
  if matmul_precision == 'tensorfloat32':
    return 'tf32'
  return 'tf32 (XLA default)' if jax.default_backend() == 'gpu' else 'float32 (XLA default)'


def peak_dtype(dtype: str, matmul_precision: str) -> str:
  if dtype == 'bfloat16':
    return 'bfloat16'
  return 'float32' if matmul_precision == 'highest' else 'tensorfloat32'


def run_case(dataset: str, step_kind: str, args: argparse.Namespace) -> list[dict[str, Any]]:
  """Benchmarks one (config, step) pair; returns one row per implementation (JAX ones, then PyTorch)."""
  jax_config, torch_config = model_configs(dataset, args)
  implementations = common.parse_list(args.jax, JAX_IMPLEMENTATIONS, 'jax')
  batch_size = args.batch_size or CONFIGS[dataset]
  on_gpu = jax.default_backend() == 'gpu'
  per_sync = args.steps_per_sync or (10 if on_gpu else 1)
  common_fields = {
      'config': dataset, 'step': step_kind, 'batch': batch_size, 'frames': args.frames,
      'variant': args.variant, 'd_model': jax_config.d_model, 'num_heads': jax_config.num_heads,
      'num_layers': jax_config.num_layers, 'ffn_dim': jax_config.ffn_dim,
      'dtype': jax_dtype_label(args.dtype, args.matmul_precision), 'matmul_precision': args.matmul_precision,
      'steps_per_sync': per_sync}
  rows = {name: dict(common_fields, implementation=f'jax {name}') for name in implementations}
  runners = {}
  for name in implementations:
    runners[name] = build_jax_step(step_kind, dataset, jax_config, batch_size, args.frames, args.seed, name,
                                   args.compiler_options, args.matmul_precision, per_sync)
    rows[name]['compile_s'] = runners[name].compile_s
  if torch_config is not None:
    torch_device = resolve_torch_device(args.torch_device)
    runners['torch'] = build_torch_step(step_kind, torch_config, batch_size, args.frames, args.seed,
                                        torch_device, args.torch_tf32, per_sync)
    rows['torch'] = dict(common_fields, implementation=f'pytorch eager ({torch_device})',
                         dtype='tf32' if args.torch_tf32 and torch_device != 'cpu' else 'float32',
                         matmul_precision=None, torch_device=torch_device)
  for runner in runners.values():
    for _ in range(args.warmup):
      runner()
  for name, runner in runners.items():
    with common.PeakRss() as rss:
      runner()
    rows[name]['step_rss_mib'] = rss.delta_mib
  load_before = common.load_average()
  times = common.interleaved_times(runners, args.blocks, args.steps_per_block)
  load_after = common.load_average()
  for name, samples in times.items():
    row = rows[name]
    summary = common.summarize([sample / per_sync for sample in samples])
    row.update(summary, iqr_ms=summary['q3_ms'] - summary['q1_ms'], load_before_timing=load_before,
               load_after_timing=load_after)
    row['clips_per_s'] = batch_size / (summary['median_ms'] / 1e3)
  if 'torch' in times:
    for row in rows.values():
      row['speedup_vs_torch'] = rows['torch']['median_ms'] / row['median_ms']
  for name in implementations:
    row, compiled = rows[name], runners[name].compiled
    row['xla_temp_mib'] = common.compiled_temp_mib(compiled)
    flops = common.compiled_flops(compiled)
    if flops:
      row['xla_gflop_per_step'] = flops / 1e9
      row['tflops'] = flops / (row['median_ms'] / 1e3) / 1e12
      peak = (common.gpu_peak_tflops(jax.devices()[0].device_kind, peak_dtype(args.dtype, args.matmul_precision))
              if on_gpu else None)
      if peak:
        row['peak_fraction'] = row['tflops'] / peak
  if on_gpu:
    rows[implementations[0]]['device_peak_mib'] = common.jax_device_peak_mib()
  return list(rows.values())


def main(argv: list[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  default_configs = 'n_ucla,ntu60_xview,ntu60_xsub' if jax.default_backend() == 'gpu' else 'n_ucla,ntu60_xview'
  datasets = common.parse_list(args.configs or default_configs, list(CONFIGS), 'configs')
  step_kinds = common.parse_list(args.steps, STEPS, 'steps')
  wait = common.wait_for_quiet(args.max_load, args.max_wait_s)
  rows = []
  for dataset in datasets:
    for step_kind in step_kinds:
      rows.extend(run_case(dataset, step_kind, args))
      print(f'done {dataset} {step_kind}', file=sys.stderr, flush=True)
  payload = {'benchmark': 'train_step', 'command': ' '.join(['python -m benchmarks.train_step'] + (
      sys.argv[1:] if argv is None else list(argv))), 'machine': common.machine_info(), 'wait': wait,
             'settings': vars(args), 'results': rows}
  print(common.markdown_table(rows, TABLE_COLUMNS))
  if args.output:
    common.write_json(args.output, payload)
  return payload


if __name__ == '__main__':
  main()
