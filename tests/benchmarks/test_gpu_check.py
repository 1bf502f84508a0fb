"""benchmarks/gpu_check.py at smoke sizes on the CPU: its parts, its report files, and what it imports."""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from benchmarks import gpu_check

pytestmark = pytest.mark.cost(20)  # seconds on 2 cores, roughly: the suite starts long files first

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# The step parts must run where only jax, flax, optax, orbax, numpy and ml-collections are installed.
_BLOCK_OPTIONAL_PACKAGES = textwrap.dedent('''
    import importlib.abc, sys
    BLOCKED = ('tensorflow_datasets', 'grain', 'torch', 'scipy', 'matplotlib', 'tensorboardX', 'data_builders',
               'array_record', 'tensorflow')
    class Block(importlib.abc.MetaPathFinder):
      def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
          raise ImportError(f'{name} is blocked in this test')
        return None
    sys.meta_path.insert(0, Block())
    from benchmarks import gpu_check
    gpu_check.main(sys.argv[1:])
''')


def test_gemm_and_steps_run_with_the_core_packages_only(tmp_path):
  output = tmp_path / 'check'
  process = subprocess.run(
      [sys.executable, '-c', _BLOCK_OPTIONAL_PACKAGES, f'--output_dir={output}', '--smoke', '--parts=gemm,steps',
       '--models=n_ucla', '--modes=fp32'],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
      env=dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS='1'))  # smoke sizes: compiling costs more than running
  assert process.returncode == 0, process.stderr[-3000:]
  payload = json.loads((output / 'gpu_check.json').read_text())
  rows = payload['results']
  gemm = {row['mode']: row for row in rows if row['part'] == 'gemm'}
  assert set(gemm) == {'fp32', 'tf32', 'bf16'} and all(row['tflops'] > 0 and row['n'] == 256 for row in gemm.values())
  steps = [row for row in rows if row['part'] == 'steps']
  assert [(row['model'], row['step'], row['mode']) for row in steps] == [
      ('n_ucla', 'pretrain', 'fp32'), ('n_ucla', 'finetune', 'fp32')]
  for row in steps:
    assert 'error' not in row, row
    assert row['clips_per_s'] == pytest.approx(row['batch'] / (row['ms_per_step'] / 1e3))
    assert row['tflops'] == pytest.approx(row['gflop_per_step'] / row['ms_per_step'])
    assert row['percent_of_bf16_ceiling'] == pytest.approx(100 * row['tflops'] / gemm['bf16']['tflops'])
  markdown = (output / 'gpu_check.md').read_text()
  table = [line for line in markdown.splitlines() if line.startswith('|')]
  assert len(table) == 2 + len(rows) and sum(line.startswith('|---') for line in table) == 1
  assert '| steps | n_ucla finetune B=2 | fp32 |' in markdown
  assert payload['settings']['steps_per_sync'] == 2


def _smoke_args(tmp_path, **overrides):
  args = gpu_check.parse_args([f'--output_dir={tmp_path}', '--smoke', '--models=n_ucla'])
  return argparse.Namespace(**{**vars(args), **overrides})


def test_torch_baseline_reports_both_tf32_settings_and_ratios(tmp_path):
  pytest.importorskip('torch', reason='the PyTorch baseline is optional (pip install torch==2.13.0)')
  jax_rows = [{'part': 'steps', 'model': 'n_ucla', 'step': step, 'mode': 'bf16', 'ms_per_step': 2.0}
              for step in ('pretrain', 'finetune')]
  rows = gpu_check.torch_steps(_smoke_args(tmp_path, repeats=1, steps_per_sync=1), jax_rows)
  assert [(row['step'], row['mode']) for row in rows] == [
      ('pretrain', 'fp32'), ('pretrain', 'tf32'), ('finetune', 'fp32'), ('finetune', 'tf32')]
  for row in rows:
    assert row['device'] == 'cpu' and row['ms_per_step'] > 0
    assert row['jax_bf16_speedup'] == pytest.approx(row['ms_per_step'] / 2.0)


def test_golden_parity_on_the_default_device(tmp_path, golden_dir):
  rows = gpu_check.golden_parity(_smoke_args(tmp_path, golden_dir=str(golden_dir)))
  assert len(rows) == 2
  for row in rows:
    assert row['passed'] and row['max_abs_error'] < 1e-4


def test_missing_golden_files_are_reported_not_available(tmp_path, monkeypatch):
  monkeypatch.setenv('CASCADEFORMER_GOLDEN_DIR', str(tmp_path / 'absent'))
  monkeypatch.setattr(gpu_check, 'REPO_ROOT', tmp_path)
  (row,) = gpu_check.golden_parity(_smoke_args(tmp_path, golden_dir=''))
  assert row['available'] is False and 'golden files not found' in row['reason']
  assert 'not available: golden files not found' in gpu_check.markdown([row])


def test_demo_part_reads_accuracy_and_input_wait(tmp_path, monkeypatch):
  def fake_run(command, **kwargs):
    workdir = pathlib.Path(next(arg for arg in command if arg.startswith('--config.workdir=')).split('=', 1)[1])
    workdir.mkdir(parents=True)
    (workdir / 'results.json').write_text(json.dumps({'accuracy': 0.75}))
    lines = [{'step': 1, 'loss': 1.0}, {'step': 2, 'input_wait_fraction': 0.1},
             {'step': 3, 'train': {'input_wait_fraction': 0.3}}]
    (workdir / 'metrics.jsonl').write_text('\n'.join(json.dumps(line) for line in lines) + '\n')
    return subprocess.CompletedProcess(command, 0, '', '')

  monkeypatch.setattr(gpu_check.subprocess, 'run', fake_run)
  (row,) = gpu_check.demo_run(_smoke_args(tmp_path), tmp_path)
  assert row['test_accuracy'] == 0.75 and row['input_wait_fraction'] == pytest.approx(0.2)

  monkeypatch.setattr(gpu_check.subprocess, 'run',
                      lambda command, **kwargs: subprocess.CompletedProcess(command, 2, '', 'error: bad config\n'))
  (row,) = gpu_check.demo_run(_smoke_args(tmp_path), tmp_path / 'again')
  assert row['error'] == 'exit 2: error: bad config'


def test_bad_flags_are_one_clear_error():
  with pytest.raises(SystemExit, match='--parts'):
    gpu_check.parse_args(['--output_dir=x', '--parts=gemm,video'])
  with pytest.raises(SystemExit):
    gpu_check.parse_args(['--smoke'])  # --output_dir is required
