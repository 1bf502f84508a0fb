"""Smoke tests of the benchmark scripts (tiny sizes: they must run end to end, not be fast)."""

import json

import jax
import numpy as np
import pytest

from benchmarks import common
from benchmarks import inference
from benchmarks import train_step
from cascadeformer_jax.models import layers

TINY = ['--configs=n_ucla', '--d_model=16', '--num_heads=2', '--num_layers=1', '--ffn_dim=32', '--frames=4',
        '--warmup=1', '--blocks=2']


def test_train_step_prints_a_table_and_writes_json(tmp_path, capsys):
  pytest.importorskip('torch', reason='the PyTorch baseline is optional (pip install torch==2.13.0)')
  output = tmp_path / 'train_step.json'
  payload = train_step.main(TINY + ['--batch_size=2', '--steps_per_block=1', f'--output={output}'])
  table = capsys.readouterr().out
  assert '| n_ucla | pretrain | 2 |' in table and '| n_ucla | finetune | 2 |' in table
  written = json.loads(output.read_text())
  assert written['results'] == json.loads(json.dumps(payload['results']))
  for row in written['results']:
    assert row['jax_count'] == row['torch_count'] == 2
    assert row['jax_median_ms'] > 0 and row['torch_median_ms'] > 0 and row['jax_compile_s'] > 0
    assert row['speedup'] == pytest.approx(row['torch_median_ms'] / row['jax_median_ms'])
    assert row['jax_clips_per_s'] == pytest.approx(2 / (row['jax_median_ms'] / 1e3))
    assert (row['d_model'], row['num_layers'], row['ffn_dim']) == (16, 1, 32)
  assert written['machine']['cpu_count'] >= 1 and 'load_average_1min' in written['machine']


def test_train_step_without_torch_and_with_another_prng(tmp_path, capsys):
  payload = train_step.main(TINY + ['--steps=finetune', '--batch_size=2', '--steps_per_block=1', '--no_torch',
                                    '--prng_impl=unsafe_rbg'])
  (row,) = payload['results']
  assert row['prng_impl'] == 'unsafe_rbg' and 'speedup' not in row and 'torch_median_ms' not in row
  assert '| n_ucla | finetune | 2 |' in capsys.readouterr().out


def test_inference_reports_latency_and_throughput(tmp_path, capsys):
  pytest.importorskip('torch', reason='the PyTorch baseline is optional (pip install torch==2.13.0)')
  output = tmp_path / 'inference.json'
  inference.main(TINY + ['--batch_sizes=1,3', '--calls_per_block=2', f'--output={output}'])
  table = capsys.readouterr().out
  assert '| n_ucla | 1 |' in table and '| n_ucla | 3 |' in table
  rows = json.loads(output.read_text())['results']
  assert [row['batch'] for row in rows] == [1, 3]
  for row in rows:
    assert row['jax_count'] == row['torch_count'] == 4
    assert row['speedup'] == pytest.approx(row['torch_median_ms'] / row['jax_median_ms'])


@pytest.mark.parametrize('argv, message', [
    (['--configs=penn'], '--configs'),
    (['--steps=backward'], '--steps'),
])
def test_train_step_rejects_unknown_choices(argv, message):
  with pytest.raises(SystemExit, match=message):
    train_step.main(argv + ['--no_torch'])


def test_inference_rejects_bad_batch_sizes(capsys):
  with pytest.raises(SystemExit):
    inference.parse_args(['--batch_sizes=1,x'])
  assert '--batch_sizes' in capsys.readouterr().err
  with pytest.raises(SystemExit):
    inference.parse_args(['--batch_sizes=0'])


def test_interleaved_times_alternate_block_order():
  calls = []
  times = common.interleaved_times({'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')},
                                   blocks=3, steps_per_block=2)
  assert calls == ['a', 'a', 'b', 'b', 'b', 'b', 'a', 'a', 'a', 'a', 'b', 'b']
  assert len(times['a']) == len(times['b']) == 6


def test_summary_and_table_formatting():
  summary = common.summarize([0.003, 0.001, 0.002])
  assert summary['median_ms'] == pytest.approx(2.0) and summary['min_ms'] == pytest.approx(1.0)
  table = common.markdown_table([{'x': 1.234, 'y': None}], [('x', 'X'), ('y', 'Y')])
  assert table.splitlines() == ['| X | Y |', '|---|---|', '| 1.23 | – |']


def test_wait_for_quiet_only_records_without_a_limit():
  wait = common.wait_for_quiet(None)
  assert wait['waited_s'] < 1.0 and wait['load_at_start'] >= 0.0


# The optimised dropout of cascadeformer_jax.models.layers must draw exactly what JAX/Flax draw.
@pytest.mark.parametrize('impl', ['threefry2x32', 'unsafe_rbg'])
@pytest.mark.parametrize('shape', [(5,), (3, 7), (2, 4, 16, 16)])
def test_fast_random_bits_are_jax_random_bits(impl, shape):
  key = jax.random.fold_in(jax.random.key(3, impl=impl), 11)
  np.testing.assert_array_equal(layers.random_bits(key, shape), jax.random.bits(key, shape))
  for p in (0.9, 0.8, 0.5):
    np.testing.assert_array_equal(layers.bernoulli(key, p, shape), jax.random.bernoulli(key, p, shape))
