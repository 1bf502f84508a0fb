"""A disk that fills up during training: the failed asynchronous checkpoint ends the run within seconds, with one
line naming the checkpoint and the reason, and the previous checkpoint kept. A disk already full ends the run at
its first write, with one line naming that file. No traceback either way (TensorStore's included)."""

import os
import pathlib
import subprocess
import sys

from tests import failure_injection

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# Fills the disk (or limits file sizes) right after the first checkpoint has landed, then lets training go on.
DRIVER = """
import errno, os, resource, shutil, signal, sys, time
from cascadeformer_jax.config import configuration
from cascadeformer_jax.experiment import runner as experiment
from cascadeformer_jax.run import cli
from cascadeformer_jax.train import checkpointing
from tests.train.test_end_to_end import smoke_config

workdir, data_dir, how, elsewhere = sys.argv[1:5]
configuration.quiet_logs()
config = smoke_config('synthetic_actions', '1.0', data_dir, workdir)
config.mode = 'pretrain'
config.pretrain.epochs = 100
config.log_every_steps = 5
save = checkpointing.StageCheckpointer.save
filled = {}

def fill_the_disk():
  if how == 'tmpfs':  # fill it, then leave 100 KB: a checkpoint (~370 KB) does not fit
    # The metrics go on elsewhere: the failed save fills the last bytes, and the next metrics record would fail
    # too, first at times. This test is about the checkpoint.
    metrics = os.path.join(workdir, 'metrics.jsonl')
    shutil.move(metrics, elsewhere)
    os.symlink(elsewhere, metrics)
    # Unbuffered: a buffered file would keep the bytes that did not fit and fail again when it is closed.
    with open(os.path.join(workdir, 'filler'), 'wb', buffering=0) as f:
      try:
        while True:
          f.write(b'x' * 65536)
      except OSError as e:
        assert e.errno == errno.ENOSPC
    os.truncate(os.path.join(workdir, 'filler'), os.path.getsize(os.path.join(workdir, 'filler')) - 100_000)
  else:  # files may not grow past 20 KB: the checkpoint's tree metadata (~22 KB) and data files fail with EFBIG
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

def save_then_fill(self, step, *args, **kwargs):
  if not filled and self.latest_step() is not None:
    self.wait()
    fill_the_disk()
    filled.update(step=step, at=time.monotonic())
  save(self, step, *args, **kwargs)

checkpointing.StageCheckpointer.save = save_then_fill
code = cli.call(lambda: experiment.run(config), debug=False)
print(f'filled before step {filled["step"]}; stopped {time.monotonic() - filled["at"]:.1f} s later', flush=True)
print('checkpoints', sorted(int(n) for n in os.listdir(os.path.join(workdir, 'pretrain', 'checkpoints'))
                            if n.isdigit()), flush=True)
os._exit(code)
"""


def test_full_disk_during_an_asynchronous_checkpoint(fixture_data_dir, tmp_path):
  workdir = tmp_path / 'disk' / 'run'
  how = 'tmpfs' if failure_injection.CAN_MOUNT else 'file_size_limit'
  env = {k: v for k, v in os.environ.items() if k != 'CASCADEFORMER_DEBUG'}
  env.update(PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS='cpu', JAX_DISABLE_MOST_OPTIMIZATIONS='1')
  result = failure_injection.run_with_full_disk(
      [sys.executable, '-c', DRIVER, str(workdir), str(fixture_data_dir), how, str(tmp_path / 'metrics.jsonl')],
      tmp_path / 'disk', 16 << 20,
      capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=600)
  assert result.returncode == 1, (result.stdout, result.stderr[-3000:])
  assert 'filled before step ' in result.stdout, (result.stdout, result.stderr[-3000:])
  first_step = int(result.stdout.split('filled before step ')[1].split(';')[0])
  seconds = float(result.stdout.split('stopped ')[1].split(' s later')[0])
  assert seconds < 60
  # Nothing but the error line, naming the checkpoint that failed: no traceback, not even TensorStore's 'Event loop
  # is closed' from the threads of the failed writes.
  stderr = result.stderr.splitlines()
  assert len(stderr) == 1, result.stderr[-3000:]
  assert stderr[0].startswith(
      f'error: could not write the checkpoint {workdir / "pretrain" / "checkpoints" / str(first_step)}: '), stderr
  printed = [line for line in result.stdout.splitlines() if not line.startswith(('filled before ', 'checkpoints '))]
  assert len(printed) + len(stderr) <= 3, (printed, stderr)
  assert any(reason in stderr[0] for reason in failure_injection.FULL_DISK_REASONS), stderr
  kept = eval(result.stdout.split('checkpoints ')[1].splitlines()[0])  # pylint: disable=eval-used
  assert kept and max(kept) < first_step  # the previous good checkpoint is still there


def test_training_onto_a_disk_that_is_already_full(fixture_data_dir, tmp_path):
  workdir = tmp_path / 'disk' / 'run'
  env = {k: v for k, v in os.environ.items() if k != 'CASCADEFORMER_DEBUG'}
  env.update(PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS='cpu')
  result = failure_injection.run_with_full_disk(
      [sys.executable, '-m', 'cascadeformer_jax.main', '--config=configs/smoke.py:synthetic_actions,1.0',
       f'--config.data.data_dir={fixture_data_dir}', '--config.data.tfds_config=tiny', f'--config.workdir={workdir}'],
      tmp_path / 'disk', 1 << 20, already_full=True, capture_output=True, text=True, cwd=REPO_ROOT, env=env,
      timeout=300)
  assert result.returncode == 1, (result.stdout, result.stderr[-3000:])
  stderr = result.stderr.splitlines()
  assert len(stderr) == 1 and len(result.stdout.splitlines()) + len(stderr) <= 3, (result.stdout, result.stderr)
  assert stderr[0].startswith(f'error: could not write the lock file {workdir / "run.lock"}: '), stderr
  assert any(reason in stderr[0] for reason in failure_injection.FULL_DISK_REASONS), stderr
