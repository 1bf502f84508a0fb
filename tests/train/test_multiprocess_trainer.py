"""The whole trainer as two processes on loopback with two fake CPU devices each (one four-device mesh: several
devices per process and several processes at once, gloo collectives), killed in the middle of fine-tuning and
resumed, gives the metrics and parameters of one uninterrupted single-device process with the same global batch.
A damaged newer checkpoint is set aside by the pair together, and both resume from the same intact one."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from cascadeformer_jax.checkpoints import checkpoint_io
from tests.data_builders import helpers

pytestmark = pytest.mark.cost(90)  # seconds on 2 cores, roughly: the suite starts long files first

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def synthetic_data_dir(tmp_path_factory) -> pathlib.Path:
  data_dir = tmp_path_factory.mktemp('synthetic')
  helpers.build('synthetic_actions', data_dir, config='tiny')
  return data_dir


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


DEVICES_PER_PROCESS = 2
GLOBAL_BATCH = 4  # one example per device of the pair's mesh


def _start(data_dir, workdir, process_id: int | None = None, port: int = 0, *overrides) -> subprocess.Popen:
  command = [sys.executable, '-m', 'cascadeformer_jax.main', '--config=configs/smoke.py:synthetic_actions,1.1',
             f'--config.data.data_dir={data_dir}', '--config.data.tfds_config=tiny', f'--config.workdir={workdir}',
             '--config.finetune.epochs=2', '--config.checkpoint.every_steps=4', '--config.tensorboard=False',
             '--config.matmul_precision=highest', '--config.compilation_cache_dir=off',
             *(f'--config.{stage}.batch_size={GLOBAL_BATCH}' for stage in ('pretrain', 'finetune', 'eval')),
             *overrides]
  devices = 1
  if process_id is not None:
    command += [f'--config.distributed.coordinator_address=127.0.0.1:{port}', '--config.distributed.num_processes=2',
                f'--config.distributed.process_id={process_id}']
    devices = DEVICES_PER_PROCESS
  env = dict(os.environ, JAX_PLATFORMS='cpu', JAX_DISABLE_MOST_OPTIMIZATIONS='1',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _start_pair(data_dir, workdir) -> list[subprocess.Popen]:
  port = _free_port()
  return [_start(data_dir, workdir, i, port) for i in range(2)]


def _finish(processes: list[subprocess.Popen], timeout: float = 300) -> list[str]:
  outputs = []
  try:
    for process in processes:
      stdout, stderr = process.communicate(timeout=timeout)
      assert process.returncode == 0, stderr[-3000:]
      outputs.append(stdout + stderr)
  finally:
    for process in processes:
      process.kill()
  return outputs


def _latest_checkpoint(directory: pathlib.Path) -> int:
  steps = [int(p.name) for p in directory.glob('[0-9]*') if p.name.isdigit()] if directory.exists() else []
  return max(steps, default=0)


def _last_record_per_step(workdir: pathlib.Path) -> dict[tuple[str, int], dict]:
  records = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return {(r['stage'], r['step']): r for r in records}  # After a resume, the replayed steps' records win.


def test_two_processes_with_kill_and_resume_match_one_process(synthetic_data_dir, tmp_path):
  single, pair = tmp_path / 'single', tmp_path / 'pair'
  # The reference also writes a profile of two fine-tuning steps (which changes nothing else).
  reference = _start(synthetic_data_dir, single, None, 0, '--config.profile_steps=finetune:2:4')
  first = _start_pair(synthetic_data_dir, pair)
  checkpoints = pair / 'finetune' / 'checkpoints'
  deadline = time.time() + 300
  while _latest_checkpoint(checkpoints) < 4 and all(p.poll() is None for p in first) and time.time() < deadline:
    time.sleep(0.02)
  for process in first:
    process.send_signal(signal.SIGKILL)
  for process in first:
    process.communicate()
  assert [p.returncode for p in first] == [-signal.SIGKILL] * 2, 'the run ended before it could be interrupted'
  assert not checkpoint_io.is_model_dir(pair / 'finetune' / 'final')
  # A newer checkpoint than the last one saved, with a truncated data file: both processes must skip it.
  latest = _latest_checkpoint(checkpoints)
  damaged = checkpoints / str(latest + 1)
  shutil.copytree(checkpoints / str(latest), damaged)
  data_file = max((path for path in damaged.rglob('*') if path.parent.name == 'd'), key=lambda p: p.stat().st_size)
  os.truncate(data_file, data_file.stat().st_size // 2)

  resumed = _finish(_start_pair(synthetic_data_dir, pair))
  assert f'[finetune] checkpoint of step {latest + 1} cannot be restored: {damaged}/' in resumed[0], resumed[0]
  assert f'kept aside as {damaged}.corrupt\n' in resumed[0] and (checkpoints / f'{latest + 1}.corrupt').is_dir()
  assert f'[finetune] resuming from step {latest} instead' in resumed[0]
  assert 'cannot be restored' not in resumed[1]  # Only process 0 reports.
  # One report per job: only process 0 prints the result.
  assert 'test accuracy' in resumed[0] and 'test accuracy' not in resumed[1]
  assert f'devices: 4 x cpu (cpu), 2 process(es), {DEVICES_PER_PROCESS} local' in resumed[0]
  assert 'input_wait ' in resumed[0]  # On the progress line.
  _finish([reference])
  assert list((single / 'profile').rglob('*.xplane.pb'))

  for stage, kind in (('pretrain', 'pretrained'), ('finetune', 'classifier')):
    want = checkpoint_io.load_model_dir(single / stage / 'final', kind)[1]
    got = checkpoint_io.load_model_dir(pair / stage / 'final', kind)[1]
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(want), jax.tree.leaves(got)):
      name = f'{stage} {jax.tree_util.keystr(path)}'
      a, b = np.asarray(a), np.asarray(b)
      if name.endswith("['in_proj_bias']"):
        # The attention key biases ([w:2w]) have an exactly-zero true gradient (softmax is shift-invariant), so
        # Adam turns reduction-order noise into lr-sized steps: bounded by lr x steps, and without any effect.
        width = a.shape[0] // 3
        assert np.abs(b[width:2 * width] - a[width:2 * width]).max() <= 1e-3 * 45
        a, b = np.delete(a, np.s_[width:2 * width]), np.delete(b, np.s_[width:2 * width])
      np.testing.assert_allclose(b, a, atol=3e-4, rtol=1e-4, err_msg=name)

  want, got = _last_record_per_step(single), _last_record_per_step(pair)
  assert want.keys() == got.keys()
  finetune_steps = sorted(step for stage, step in want if stage == 'finetune')
  assert finetune_steps == list(range(1, len(finetune_steps) + 1)) and len(finetune_steps) > 8 + 1
  assert {stage for stage, _ in want} == {'pretrain', 'finetune', 'test'}
  for key, record in want.items():
    for name, value in record.items():
      if isinstance(value, float) and name not in ('time', 'input_wait_fraction'):
        np.testing.assert_allclose(got[key][name], value, rtol=1e-4, atol=1e-5, err_msg=f'{key} {name}')
    assert 0 <= got[key].get('input_wait_fraction', 0) <= 1

  results = {name: json.loads((directory / 'results.json').read_text()) for name, directory in
             (('single', single), ('pair', pair))}
  assert results['pair']['count'] == results['single']['count']
  assert results['pair']['accuracy'] == results['single']['accuracy']
  np.testing.assert_allclose(results['pair']['loss'], results['single']['loss'], rtol=1e-5)
  assert results['pair']['matmul_precision'] == 'highest'
  assert results['pair']['devices']['process_count'] == 2
  assert results['pair']['devices']['device_count'] == 4 and results['single']['devices']['device_count'] == 1
  assert json.loads((pair / 'config.json').read_text())['matmul_precision'] == 'highest'
