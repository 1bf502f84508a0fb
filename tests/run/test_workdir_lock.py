"""One run per work directory, checked with real processes: refusal naming the holder, stale-lock takeover."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from cascadeformer_jax.run import workdir_lock

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from cascadeformer_jax.run import workdir_lock
with workdir_lock.WorkdirLock(sys.argv[1]):
  print('locked', flush=True)
  time.sleep(60)
"""


def _start_holder(workdir: pathlib.Path) -> subprocess.Popen:
  process = subprocess.Popen([sys.executable, '-c', HOLDER, str(workdir)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             text=True, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
  assert process.stdout.readline().strip() == 'locked'
  return process


def test_second_run_is_refused_then_a_stale_lock_is_taken_over(tmp_path):
  holder = _start_holder(tmp_path)
  try:
    started = time.monotonic()
    with pytest.raises(workdir_lock.WorkdirLockedError) as raised:
      workdir_lock.WorkdirLock(tmp_path).acquire()
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert f'process {holder.pid} on host {socket.gethostname()}' in message and str(tmp_path) in message
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  assert (tmp_path / workdir_lock.LOCK_FILE).exists()  # left behind by the killed run
  with workdir_lock.WorkdirLock(tmp_path) as lock:
    assert lock.taken_over['pid'] == holder.pid
    record = json.loads((tmp_path / workdir_lock.LOCK_FILE).read_text())
    assert record['pid'] == os.getpid()
  assert not (tmp_path / workdir_lock.LOCK_FILE).exists()


def test_a_released_lock_can_be_taken_again_and_other_processes_take_none(tmp_path):
  with workdir_lock.WorkdirLock(tmp_path) as lock:
    assert lock.taken_over is None
    with workdir_lock.WorkdirLock(tmp_path, primary=False):  # process k > 0 of a multi-process job
      pass
    assert (tmp_path / workdir_lock.LOCK_FILE).exists()
  with workdir_lock.WorkdirLock(tmp_path) as lock:
    assert lock.taken_over is None


def test_without_flock_a_dead_pid_on_this_host_is_stale(tmp_path, monkeypatch):
  dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
  (tmp_path / workdir_lock.LOCK_FILE).write_text(json.dumps({'pid': int(dead.stdout), 'host': socket.gethostname()}))

  def no_flock(fd, operation):
    raise OSError(37, 'No locks available')

  monkeypatch.setattr(workdir_lock.fcntl, 'flock', no_flock)
  with workdir_lock.WorkdirLock(tmp_path) as lock:
    assert lock.taken_over['pid'] == int(dead.stdout)
  (tmp_path / workdir_lock.LOCK_FILE).write_text(json.dumps({'pid': 1, 'host': 'another-host'}))
  with pytest.raises(workdir_lock.WorkdirLockedError, match='process 1 on host another-host'):
    workdir_lock.WorkdirLock(tmp_path).acquire()
