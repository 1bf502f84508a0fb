"""Data parallelism: one device, and two processes on loopback with two fake CPU devices each, train to the same
parameters."""

import os
import pathlib
import socket
import subprocess
import sys

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(args, devices: int, timeout: int = 300) -> subprocess.Popen:
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}', JAX_PLATFORMS='cpu',
             JAX_DISABLE_MOST_OPTIMIZATIONS='1')
  return subprocess.Popen([sys.executable, '-m', 'tests.train.parallel_worker', *map(str, args)], cwd=REPO_ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen, timeout: int = 300) -> None:
  _, stderr = process.communicate(timeout=timeout)
  assert process.returncode == 0, stderr[-3000:]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _compare(a: dict, b: dict) -> None:
  keys = sorted(k for k in a if k != 'device_count')
  assert keys == sorted(k for k in b if k != 'device_count')
  for key in keys:
    # AdamW turns tiny reduction-order differences into lr-sized steps on parameters whose true gradient is
    # zero (attention key biases), so compare with a tolerance well below the lr (1e-3) times the 3 steps.
    np.testing.assert_allclose(a[key], b[key], atol=3e-4, rtol=1e-4, err_msg=key)


def test_two_processes_of_two_devices_match_one_device(tmp_path):
  # Two processes of two fake devices each form one four-device mesh: several devices per process and several
  # processes at once. The whole trainer across processes is tested in tests/train/test_multiprocess_trainer.py.
  single = tmp_path / 'single.npz'
  first = _run([single], devices=1)
  _finish(first)
  port = _free_port()
  outputs = [tmp_path / f'process{i}.npz' for i in range(2)]
  processes = [_run([outputs[i], f'127.0.0.1:{port}', 2, i], devices=2) for i in range(2)]
  try:
    for process in processes:
      _finish(process)
  finally:
    for process in processes:
      process.kill()
  results = {name: dict(np.load(path)) for name, path in
             (('single', single), ('p0', outputs[0]), ('p1', outputs[1]))}
  assert int(results['single']['device_count']) == 1
  assert int(results['p0']['device_count']) == int(results['p1']['device_count']) == 4
  for key in results['p0']:
    np.testing.assert_array_equal(results['p0'][key], results['p1'][key], err_msg=key)
  _compare(results['single'], results['p0'])
  # The runs really trained: parameters moved away from their initial values differently per stage.
  assert not np.allclose(results['single']["pretrain['t1']['pos_embedding']"],
                         results['single']["finetune['t1']['pos_embedding']"])
