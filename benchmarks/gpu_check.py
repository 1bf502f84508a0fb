"""One command that measures a GPU: GEMM ceilings, training steps, PyTorch baseline, golden parity, a demo run.

  python -m benchmarks.gpu_check --output_dir=gpu_check           # about 6-8 minutes on one H100/H200
  python -m benchmarks.gpu_check --output_dir=/tmp/check --smoke  # tiny sizes, any backend, under a minute

Writes `gpu_check.json` (everything, with the machine and the command) and `gpu_check.md` (one markdown table) into
`--output_dir`, and prints the table. Parts (`--parts`, default all), each importing only what it needs:

  gemm    jitted `a @ b` at 8192^3 in bf16, TF32 and fp32 (precision 'highest'): the device's matmul ceilings.
  steps   the pretraining and fine-tuning steps of the N-UCLA model (1.0, B = 32) and NTU x-sub 1.0 (d 768,
          16 heads, 16 layers, B = 64), T = 64, each in fp32 (highest), TF32 and bf16: ms/step at steady state
          (`--steps_per_sync` steps back to back per wait, median of `--repeats`), clips/s, TFLOP/s from XLA's
          cost analysis of the compiled step, and the percentage of the measured bf16 ceiling. The twelve steps
          are compiled concurrently. Needs only jax, flax, optax, orbax, numpy and ml-collections.
  torch   the same steps in PyTorch eager on the same device (fp32 with TF32 off, and with TF32 on), and the
          JAX/PyTorch ratios; only when a torch build that sees the device is installed.
  parity  the converted golden checkpoints' classifier logits on the device at precision 'highest' against the
          original PyTorch outputs (golden files at `--golden_dir`, `$CASCADEFORMER_GOLDEN_DIR` or
          `../shared/golden`).
  demo    `python -m cascadeformer_jax.main --config=configs/demo.py` (smoke: configs/smoke.py) in a subprocess:
          wall time, test accuracy and the input-wait fraction from its metrics.jsonl (when the trainer
          records it).

A part that cannot run here (no torch, no golden files) is recorded as not available, with the reason; a part that
fails is recorded with its error and the others still run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common

PARTS = ('gemm', 'steps', 'torch', 'parity', 'demo')
# (dtype, matmul precision) of each mode; fp32 is 'highest' (true float32), TF32 is float32 data with TF32 matmuls.
MODES = {'fp32': ('float32', 'highest'), 'tf32': ('float32', 'tensorfloat32'), 'bf16': ('bfloat16', 'default')}
# name -> (dataset of the published config, batch size); T = 64 frames.
MODELS = {'n_ucla': ('n_ucla', 32), 'ntu60_xsub': ('ntu60_xsub', 64)}
SMOKE_MODEL = dict(d_model=16, num_heads=2, num_layers=1, ffn_dim=32)
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--output_dir', required=True, help='gpu_check.json and gpu_check.md are written here')
  parser.add_argument('--smoke', action='store_true', help='tiny sizes and few steps (any backend)')
  parser.add_argument('--parts', default=','.join(PARTS), help=f'comma-separated subset of {list(PARTS)}')
  parser.add_argument('--models', default=','.join(MODELS), help=f'comma-separated subset of {list(MODELS)}')
  parser.add_argument('--modes', default=','.join(MODES), help=f'comma-separated subset of {list(MODES)}')
  parser.add_argument('--gemm_size', type=int, default=0, help='N of the N^3 GEMMs (default 8192; smoke 256)')
  parser.add_argument('--steps_per_sync', type=int, default=0, help='steps per wait (default 10; smoke 2)')
  parser.add_argument('--repeats', type=int, default=0, help='timed calls per step (default 5; smoke 2)')
  parser.add_argument('--golden_dir', default='', help='golden outputs of the original code')
  parser.add_argument('--demo_timeout_s', type=float, default=240.0)
  args = parser.parse_args(argv)
  args.parts = common.parse_list(args.parts, PARTS, 'parts')
  args.models = common.parse_list(args.models, list(MODELS), 'models')
  args.modes = common.parse_list(args.modes, list(MODES), 'modes')
  args.gemm_size = args.gemm_size or (256 if args.smoke else 8192)
  args.steps_per_sync = args.steps_per_sync or (2 if args.smoke else 10)
  args.repeats = args.repeats or (2 if args.smoke else 5)
  if min(args.gemm_size, args.steps_per_sync, args.repeats) < 1:
    parser.error('--gemm_size, --steps_per_sync and --repeats must be positive')
  return args


def _log(message: str) -> None:
  print(f'[gpu_check {time.strftime("%H:%M:%S")}] {message}', file=sys.stderr, flush=True)


def _timed(run: Callable[[], Any], repeats: int) -> float:
  """Median wall seconds of `repeats` calls of `run` (each call must wait for its work)."""
  samples = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    samples.append(time.perf_counter() - start)
  return statistics.median(samples)


# --- GEMM ceilings ---------------------------------------------------------------------------------

def gemm_ceilings(args: argparse.Namespace) -> list[dict[str, Any]]:
  """TFLOP/s of an N^3 matrix product per mode, `--steps_per_sync` products per wait."""
  n, calls = args.gemm_size, args.steps_per_sync
  rows = []
  for mode, (dtype, precision) in MODES.items():
    keys = jax.random.split(jax.random.key(0))
    a = jax.random.normal(keys[0], (n, n), dtype)
    b = jax.random.normal(keys[1], (n, n), dtype)
    matmul = jax.jit(lambda x, y, p=precision: jnp.matmul(x, y, precision=p))
    jax.block_until_ready(matmul(a, b))

    def run():
      out = None
      for _ in range(calls):
        out = matmul(a, b)
      jax.block_until_ready(out)

    seconds = _timed(run, args.repeats) / calls
    rows.append({'part': 'gemm', 'mode': mode, 'n': n, 'ms': 1e3 * seconds,
                 'tflops': 2 * n**3 / seconds / 1e12})
    _log(f'gemm {mode}: {rows[-1]["tflops"]:.1f} TFLOP/s')
  return rows


# --- Training steps --------------------------------------------------------------------------------

def _model_config(name: str, mode: str, smoke: bool):
  from cascadeformer_jax.models.presets import published_model_config  # pylint: disable=g-import-not-at-top

  dataset, _ = MODELS[name]
  overrides = dict(SMOKE_MODEL, cross_attn_heads=2, spatial_heads=2) if smoke else {}
  return published_model_config(dataset, '1.0').replace(dtype=MODES[mode][0], **overrides)


def _step_cases(args) -> list[tuple[str, str, str]]:
  return [(name, step, mode) for name in args.models for step in ('pretrain', 'finetune') for mode in args.modes]


def jax_steps(args: argparse.Namespace, bf16_ceiling: float | None) -> list[dict[str, Any]]:
  """Compiles every (model, step, mode) concurrently, then times them one after the other."""
  from benchmarks import train_step  # pylint: disable=g-import-not-at-top

  frames = 8 if args.smoke else 64

  def build(case):
    name, step, mode = case
    batch = 2 if args.smoke else MODELS[name][1]
    dtype, precision = MODES[mode]
    del dtype
    return train_step.build_jax_step(step, MODELS[name][0], _model_config(name, mode, args.smoke), batch, frames,
                                     seed=0, matmul_precision=precision, steps_per_sync=args.steps_per_sync)

  cases = _step_cases(args)
  started = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(cases), os.cpu_count() or 1)) as pool:
    futures = {case: pool.submit(build, case) for case in cases}
  _log(f'compiled {len(cases)} steps in {time.perf_counter() - started:.0f} s')
  rows = []
  for case, future in futures.items():
    name, step, mode = case
    row = {'part': 'steps', 'model': name, 'step': step, 'mode': mode,
           'batch': 2 if args.smoke else MODELS[name][1], 'frames': frames}
    try:
      runner = future.result()
      runner()  # warm-up
      seconds = _timed(runner, args.repeats) / args.steps_per_sync
      flops = common.compiled_flops(runner.compiled)
      row.update(compile_s=runner.compile_s, ms_per_step=1e3 * seconds, clips_per_s=row['batch'] / seconds)
      if flops:
        row.update(gflop_per_step=flops / 1e9, tflops=flops / seconds / 1e12)
        if bf16_ceiling:
          row['percent_of_bf16_ceiling'] = 100 * row['tflops'] / bf16_ceiling
      del runner
    except Exception as error:  # pylint: disable=broad-except
      row['error'] = f'{type(error).__name__}: {error}'
    rows.append(row)
    _log(f'{name} {step} {mode}: ' + (f'{row["ms_per_step"]:.2f} ms/step' if 'ms_per_step' in row else row['error']))
  return rows


def torch_steps(args: argparse.Namespace, jax_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """PyTorch eager fp32 with TF32 off and on, on the device JAX uses; ratios against the JAX rows."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return [{'part': 'torch', 'available': False, 'reason': 'torch is not installed'}]
  on_gpu = jax.default_backend() == 'gpu'
  if on_gpu and not torch.cuda.is_available():
    return [{'part': 'torch', 'available': False, 'reason': f'torch {torch.__version__} does not see a CUDA device'}]
  import dataclasses  # pylint: disable=g-import-not-at-top

  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
  from benchmarks import train_step  # pylint: disable=g-import-not-at-top

  device = 'cuda' if on_gpu else 'cpu'
  frames = 8 if args.smoke else 64
  rows = []
  for name in args.models:
    config = torch_reference.published_config(MODELS[name][0], '1.0')
    if args.smoke:
      config = dataclasses.replace(config, **SMOKE_MODEL)
    batch = 2 if args.smoke else MODELS[name][1]
    for step in ('pretrain', 'finetune'):
      for tf32 in (False, True):
        mode = 'tf32' if tf32 else 'fp32'
        row = {'part': 'torch', 'model': name, 'step': step, 'mode': mode, 'device': device, 'batch': batch}
        try:
          run = train_step.build_torch_step(step, config, batch, frames, 0, device, tf32, args.steps_per_sync)
          run()
          seconds = _timed(run, args.repeats) / args.steps_per_sync
          row.update(ms_per_step=1e3 * seconds, clips_per_s=batch / seconds)
          for jax_row in jax_rows:
            if jax_row.get('model') == name and jax_row.get('step') == step and 'ms_per_step' in jax_row:
              row[f'jax_{jax_row["mode"]}_speedup'] = row['ms_per_step'] / jax_row['ms_per_step']
        except Exception as error:  # pylint: disable=broad-except
          row['error'] = f'{type(error).__name__}: {error}'
        rows.append(row)
        _log(f'torch {name} {step} {mode}: ' + (f'{row["ms_per_step"]:.2f} ms/step' if 'ms_per_step' in row
                                                  else row['error']))
  if on_gpu:
    torch.cuda.empty_cache()
  return rows


# --- Golden parity ---------------------------------------------------------------------------------

def _golden_dir(args) -> pathlib.Path | None:
  for candidate in (args.golden_dir, os.environ.get('CASCADEFORMER_GOLDEN_DIR', ''),
                    str(REPO_ROOT.parent / 'shared' / 'golden'), str(REPO_ROOT / 'shared' / 'golden')):
    if candidate and pathlib.Path(candidate).is_dir():
      return pathlib.Path(candidate)
  return None


def golden_parity(args: argparse.Namespace) -> list[dict[str, Any]]:
  """Max |logits − golden| of every converted golden case at precision 'highest', on the default device."""
  golden = _golden_dir(args)
  if golden is None:
    return [{'part': 'parity', 'available': False, 'reason': 'golden files not found (--golden_dir)'}]
  from cascadeformer_jax.checkpoints.convert import read_published_folder  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.models import CascadeClassifier  # pylint: disable=g-import-not-at-top
  from tests import golden_cases  # pylint: disable=g-import-not-at-top

  rows = []
  cases = golden_cases.CASES[:2] if args.smoke else golden_cases.CASES
  for name in cases:
    row = {'part': 'parity', 'case': name, 'device': jax.devices()[0].device_kind, 'tolerance': 1e-4}
    try:
      case = golden_cases.load_case(golden, name)
      config, params, _ = read_published_folder(case.path, case.config)
      with jax.default_matmul_precision('highest'):
        logits = jax.jit(CascadeClassifier(config).apply)({'params': params['classifier']},
                                                          jnp.asarray(case.arrays['x']))
      error = float(np.max(np.abs(np.asarray(logits) - case.arrays['logits'])))
      row.update(max_abs_error=error, passed=error <= 1e-4 + 1e-4 * float(np.max(np.abs(case.arrays['logits']))))
    except Exception as error:  # pylint: disable=broad-except
      row['error'] = f'{type(error).__name__}: {error}'
    rows.append(row)
  _log(f'parity: {sum(r.get("passed", False) for r in rows)}/{len(rows)} cases pass')
  return rows


# --- Demo --------------------------------------------------------------------------------------------

def demo_run(args: argparse.Namespace, output_dir: pathlib.Path) -> list[dict[str, Any]]:
  """The demo (smoke: the smoke config) end to end in a subprocess; time, accuracy, input-wait fraction."""
  workdir = output_dir / 'demo_workdir'
  config = 'configs/smoke.py' if args.smoke else 'configs/demo.py'
  command = [sys.executable, '-m', 'cascadeformer_jax.main', f'--config={config}', f'--config.workdir={workdir}']
  if args.smoke:
    command.append(f'--config.data.data_dir={output_dir / "tfds"}')
  row: dict[str, Any] = {'part': 'demo', 'config': config}
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get('PYTHONPATH')])))
  started = time.perf_counter()
  try:
    process = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                             timeout=args.demo_timeout_s, check=False)
  except subprocess.TimeoutExpired:
    row.update(seconds=time.perf_counter() - started, error=f'timed out after {args.demo_timeout_s:.0f} s')
    return [row]
  row['seconds'] = time.perf_counter() - started
  if process.returncode:
    row['error'] = f'exit {process.returncode}: ' + (process.stderr.strip().splitlines() or ['(no output)'])[-1]
    return [row]
  results = workdir / 'results.json'
  if results.is_file():
    row['test_accuracy'] = json.loads(results.read_text()).get('accuracy')
  waits = []
  metrics = workdir / 'metrics.jsonl'
  if metrics.is_file():
    for line in metrics.read_text().splitlines():
      with_wait = json.loads(line)
      found = _find_key(with_wait, 'input_wait_fraction')
      if found is not None:
        waits.append(float(found))
  row['input_wait_fraction'] = statistics.mean(waits) if waits else 'not available'
  _log(f'demo: {row["seconds"]:.0f} s, accuracy {row.get("test_accuracy")}, input wait {row["input_wait_fraction"]}')
  return [row]


def _find_key(tree: Any, key: str) -> Any:
  if isinstance(tree, dict):
    if key in tree:
      return tree[key]
    for value in tree.values():
      found = _find_key(value, key)
      if found is not None:
        return found
  return None


# --- Report ------------------------------------------------------------------------------------------

def _fmt(value: Any, digits: int = 3) -> str:
  if value is None:
    return '–'
  if isinstance(value, float):
    return f'{value:.{digits}g}' if abs(value) < 1000 else f'{value:.0f}'
  return str(value)


def markdown(rows: list[dict[str, Any]]) -> str:
  """One table: part | what | mode | ms | clips/s | TFLOP/s | % bf16 ceiling | note."""
  lines = ['| part | what | mode | ms | clips/s | TFLOP/s | % of bf16 ceiling | note |',
           '|---|---|---|---|---|---|---|---|']
  for row in rows:
    part = row['part']
    if row.get('available') is False:
      lines.append(f'| {part} | – | – | – | – | – | – | not available: {row["reason"]} |')
      continue
    note = row.get('error', '')
    if part == 'gemm':
      what, ms = f'{row["n"]}^3 matmul', row['ms']
    elif part in ('steps', 'torch'):
      what = f'{row["model"]} {row["step"]} B={row["batch"]}' + (' (PyTorch eager)' if part == 'torch' else '')
      ms = row.get('ms_per_step')
      if part == 'steps' and 'compile_s' in row:
        note = note or f'compile {row["compile_s"]:.1f} s, {_fmt(row.get("gflop_per_step"))} GFLOP/step'
      if part == 'torch':
        ratios = [f'JAX {k.split("_")[1]} {v:.2f}x' for k, v in row.items() if k.endswith('_speedup')]
        note = note or ', '.join(ratios)
    elif part == 'parity':
      what, ms = f'golden {row["case"]}', None
      note = note or f'max abs error {row["max_abs_error"]:.2e} ({"pass" if row["passed"] else "FAIL"})'
    else:
      what, ms = f'demo {row["config"]}', 1e3 * row['seconds'] if 'seconds' in row else None
      note = note or (f'test accuracy {_fmt(row.get("test_accuracy"))}, input-wait fraction '
                      f'{_fmt(row.get("input_wait_fraction"))}')
    lines.append(f'| {part} | {what} | {row.get("mode", "–")} | {_fmt(ms)} | {_fmt(row.get("clips_per_s"))} | '
                 f'{_fmt(row.get("tflops"))} | {_fmt(row.get("percent_of_bf16_ceiling"))} | {note} |')
  return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  output_dir = pathlib.Path(args.output_dir).resolve()
  output_dir.mkdir(parents=True, exist_ok=True)
  started = time.perf_counter()
  _log(f'backend {jax.default_backend()}, {jax.device_count()} x {jax.devices()[0].device_kind}')
  rows: list[dict[str, Any]] = []

  def attempt(part: str, fn: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    if part not in args.parts:
      return []
    try:
      produced = fn()
    except Exception as error:  # pylint: disable=broad-except
      traceback.print_exc()
      produced = [{'part': part, 'available': False, 'reason': f'failed: {type(error).__name__}: {error}'}]
    rows.extend(produced)
    return produced

  gemm = attempt('gemm', lambda: gemm_ceilings(args))
  bf16 = next((row['tflops'] for row in gemm if row.get('mode') == 'bf16'), None)
  steps = attempt('steps', lambda: jax_steps(args, bf16))
  attempt('torch', lambda: torch_steps(args, steps))
  attempt('parity', lambda: golden_parity(args))
  attempt('demo', lambda: demo_run(args, output_dir))
  payload = {'benchmark': 'gpu_check', 'command': ' '.join(['python -m benchmarks.gpu_check'] + (
      sys.argv[1:] if argv is None else list(argv))), 'machine': common.machine_info(),
             'settings': {k: v for k, v in vars(args).items()}, 'seconds': time.perf_counter() - started,
             'results': rows}
  common.write_json(output_dir / 'gpu_check.json', payload)
  table = markdown(rows)
  header = (f'GPU check: {payload["machine"]["jax_device"]} ({payload["machine"]["jax_backend"]}), jax '
            f'{payload["machine"]["jax"]}, {payload["machine"]["date"]}, {payload["seconds"]:.0f} s\n\n')
  (output_dir / 'gpu_check.md').write_text(header + table)
  print(header + table)
  return payload


if __name__ == '__main__':
  main()
