"""Smoke tests of the benchmark scripts (tiny sizes: they must run end to end, not be fast)."""

import json

import jax
import numpy as np
import pytest

from benchmarks import common
from benchmarks import inference
from benchmarks import train_step
from cascadeformer_jax.run import runtime

pytestmark = pytest.mark.cost(30)  # seconds on 2 cores, roughly: the suite starts long files first

TINY = ['--configs=n_ucla', '--d_model=16', '--num_heads=2', '--num_layers=1', '--ffn_dim=32', '--frames=4',
        '--warmup=1', '--blocks=2']


@pytest.fixture(name='compilation_cache')
def compilation_cache_fixture():
  """The trainer's persistent compilation cache (the default folder): a rerun loads these steps, compiled once."""
  names = ('jax_compilation_cache_dir', 'jax_persistent_cache_min_compile_time_secs',
           'jax_persistent_cache_min_entry_size_bytes')
  saved = {name: getattr(jax.config, name) for name in names}
  runtime.setup_compilation_cache()
  yield
  for name, value in saved.items():
    jax.config.update(name, value)


def test_train_step_prints_a_table_and_writes_json(tmp_path, capsys, fast_compile, compilation_cache):
  pytest.importorskip('torch', reason='the PyTorch baseline is optional (pip install torch==2.13.0)')
  output = tmp_path / 'train_step.json'
  payload = train_step.main(TINY + ['--batch_size=2', '--steps_per_block=1', '--jax=default,flax_dropout',
                                    f'--output={output}'])
  table = capsys.readouterr().out
  for step in ('pretrain', 'finetune'):
    for implementation in ('jax default', 'jax flax_dropout', 'pytorch eager (cpu)'):
      assert f'| n_ucla | {step} | 2 | {implementation} |' in table
  written = json.loads(output.read_text())
  assert written['results'] == json.loads(json.dumps(payload['results']))
  rows = written['results']
  assert len(rows) == 6
  for row in rows:
    assert row['count'] == 2 and row['median_ms'] > 0
    assert row['clips_per_s'] == pytest.approx(2 / (row['median_ms'] / 1e3))
    assert (row['d_model'], row['num_layers'], row['ffn_dim']) == (16, 1, 32)
  for step in ('pretrain', 'finetune'):
    by_name = {row['implementation']: row for row in rows if row['step'] == step}
    torch_ms = by_name['pytorch eager (cpu)']['median_ms']
    for name in ('jax default', 'jax flax_dropout'):
      assert by_name[name]['compile_s'] > 0
      assert by_name[name]['speedup_vs_torch'] == pytest.approx(torch_ms / by_name[name]['median_ms'])
  assert written['machine']['cpu_count'] >= 1 and 'load_average_1min' in written['machine']


def test_train_step_without_torch_with_another_prng_and_xla_options(capsys, fast_compile, compilation_cache):
  payload = train_step.main(TINY + ['--steps=finetune', '--batch_size=2', '--steps_per_block=1', '--no_torch',
                                    '--jax=unsafe_rbg', '--xla_options=xla_cpu_enable_fast_min_max=false',
                                    '--matmul_precision=tensorfloat32', '--steps_per_sync=2'])
  (row,) = payload['results']
  assert row['implementation'] == 'jax unsafe_rbg' and 'speedup_vs_torch' not in row
  # TF32 is labelled as such, and a timed call of two steps counts as two.
  assert row['dtype'] == 'tf32' and row['steps_per_sync'] == 2 and row['count'] == 2
  assert payload['settings']['compiler_options'] == {'xla_cpu_enable_fast_min_max': False}
  assert '| n_ucla | finetune | 2 | jax unsafe_rbg |' in capsys.readouterr().out


def test_inference_reports_latency_and_throughput(tmp_path, capsys, fast_compile, compilation_cache):
  pytest.importorskip('torch', reason='the PyTorch baseline is optional (pip install torch==2.13.0)')
  pytest.importorskip('onnxruntime', reason="the ONNX Runtime column needs the optional extra 'export'")
  output = tmp_path / 'inference.json'
  inference.main(TINY + ['--batch_sizes=1,3', '--calls_per_block=2', '--streaming=off', '--latency_calls_per_block=3',
                         '--xla_options=xla_cpu_experimental_ynn_fusion_type=', f'--output={output}'])
  table = capsys.readouterr().out
  for batch in (1, 3):
    for runtime in ('JAX (jit)', 'ONNX Runtime', 'PyTorch eager'):
      assert f'| n_ucla | {batch} | {runtime} |' in table
  written = json.loads(output.read_text())
  assert written['settings']['compiler_options'] == {'xla_cpu_experimental_ynn_fusion_type': ''}
  rows = written['results']
  assert [row['batch'] for row in rows] == [1, 3]
  for row, calls in zip(rows, (6, 4)):  # 2 blocks of 3 latency calls, of 2 throughput calls
    assert row['jax_count'] == row['onnxruntime_count'] == row['torch_count'] == calls
    assert row['jax_median_ms'] <= row['jax_p99_ms'] <= row['jax_max_ms']
    assert row['speedup'] == pytest.approx(row['torch_median_ms'] / row['jax_median_ms'])
    assert row['onnxruntime_speedup'] == pytest.approx(row['torch_median_ms'] / row['onnxruntime_median_ms'])
  export = written['exports'][0]
  assert export['config'] == 'n_ucla' and export['onnx_mib'] > 0 and export['onnx_convert_s'] > 0
  assert export['onnxruntime_latency_verdict'] in table
  missed = rows[0]['onnxruntime_speedup'] < inference.ONNX_LATENCY_TARGET
  assert ('not met' in export['onnxruntime_latency_verdict']) == missed
  assert ('onnxruntime_operator_shares' in export) == missed


def test_a_missed_latency_target_says_where_onnx_runtime_spends_its_time():
  row = {'config': 'n_ucla', 'onnxruntime_median_ms': 20.0, 'torch_median_ms': 24.0}
  verdict = inference.latency_verdict(row, {'Gemm': 0.5, 'Einsum': 0.2, 'Add': 0.2, 'Softmax': 0.1})
  assert verdict == ('n_ucla: ONNX Runtime batch-1 latency 20.00 ms vs PyTorch eager 24.00 ms = 1.20x (target >= '
                     "1.5x): not met; 70% of ONNX Runtime's kernel time is in matrix products (Gemm, MatMul, Einsum; "
                     'top operators: Gemm 50%, Einsum 20%, Add 20%, Softmax 10%), float32 products of the same shapes '
                     "as PyTorch's")


def test_inference_reports_the_streaming_update_latency(tmp_path, capsys, fast_compile):
  output = tmp_path / 'inference.json'
  inference.main(TINY + ['--streaming=only', '--stream_stride=2', '--stream_blocks=2', '--stream_calls_per_block=3',
                         f'--output={output}'])
  assert '| n_ucla | 4 | 2 |' in capsys.readouterr().out
  written = json.loads(output.read_text())
  assert written['results'] == [] and len(written['streaming']) == 1
  row = written['streaming'][0]
  assert row['stream_count'] == row['bare_count'] == 6 and row['compilations_after_warm_up'] == 0
  assert row['median_vs_bare'] == pytest.approx(row['stream_median_ms'] / row['bare_median_ms'])
  assert row['targets']['no compilation'] and row['targets_met'].startswith(('yes', 'no: '))


@pytest.mark.parametrize('argv, message', [
    (['--configs=penn'], '--configs'),
    (['--steps=backward'], '--steps'),
    (['--jax=numba'], '--jax'),
])
def test_train_step_rejects_unknown_choices(argv, message):
  with pytest.raises(SystemExit, match=message):
    train_step.main(argv + ['--no_torch'])


def test_train_step_rejects_malformed_xla_options(capsys):
  with pytest.raises(SystemExit):
    train_step.parse_args(['--xla_options=xla_cpu_use_onednn'])
  assert '--xla_options' in capsys.readouterr().err


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


def test_package_dropout_draws_the_same_masks_as_flax_dropout(fast_compile, compilation_cache):
  """The optimised dropout (default) against flax.linen.Dropout (the 'flax_dropout' implementation)."""
  from cascadeformer_jax.models import CascadeClassifier  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.models.presets import published_model_config  # pylint: disable=g-import-not-at-top

  config = published_model_config('ntu60_xview', '1.0').replace(
      d_model=16, num_heads=2, cross_attn_heads=2, num_layers=1, ffn_dim=32)
  clips = np.random.default_rng(0).standard_normal((2, 5, 25, 3)).astype(np.float32)
  model = CascadeClassifier(config)
  params = jax.jit(model.init)(jax.random.key(0), clips)['params']  # jitted: one compilation, not one per op

  def loss_and_grads():
    return jax.jit(jax.value_and_grad(lambda p: model.apply(
        {'params': p}, clips, deterministic=False, rngs={'dropout': jax.random.key(7)}).sum()))(params)

  fast = loss_and_grads()
  with train_step.flax_dropout():
    reference = loss_and_grads()
  deterministic = jax.jit(model.apply)({'params': params}, clips).sum()
  assert abs(float(fast[0]) - float(deterministic)) > 1e-3  # dropout is active
  np.testing.assert_allclose(fast[0], reference[0], rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), fast[1], reference[1])


def test_optimised_update_keeps_the_state_on_non_finite_loss_and_matches_a_plain_update():
  """The step's update is a conditional (no state copies); it must still skip non-finite updates exactly."""
  import optax  # pylint: disable=g-import-not-at-top

  from cascadeformer_jax.train import steps as steps_lib  # pylint: disable=g-import-not-at-top

  params = {'w': np.arange(6, dtype=np.float32).reshape(2, 3), 'b': np.ones(3, np.float32)}
  grads = jax.tree.map(lambda p: 0.5 * p + 1.0, params)
  optimizer = optax.adamw(1e-2, weight_decay=1e-2)
  state = steps_lib.init_state(params, optimizer)
  schedule = lambda step: 1e-2  # pylint: disable=unnecessary-lambda-assignment
  new_state, metrics = jax.jit(lambda s, g, loss: steps_lib._update(  # pylint: disable=protected-access
      s, g, loss, optimizer, schedule, {}))(state, grads, np.float32(1.0))
  updates, expected_opt_state = optimizer.update(grads, state['opt_state'], params)
  expected_params = optax.apply_updates(params, updates)
  assert int(new_state['step']) == 1 and not bool(metrics['nonfinite'])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), new_state['params'], expected_params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), new_state['opt_state'],
               expected_opt_state)
  for bad_loss, bad_grads in ((np.float32(np.nan), grads),
                              (np.float32(1.0), dict(grads, b=np.full(3, np.inf, np.float32)))):
    kept, metrics = jax.jit(lambda s, g, loss: steps_lib._update(  # pylint: disable=protected-access
        s, g, loss, optimizer, schedule, {}))(state, bad_grads, bad_loss)
    assert bool(metrics['nonfinite']) and int(kept['step']) == 0
    jax.tree.map(np.testing.assert_array_equal, kept, state)
