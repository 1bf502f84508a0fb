"""Write failures end a run within seconds with one line naming the path and the reason."""

import asyncio
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import pytest

from cascadeformer_jax.run import io_checks
from tests import failure_injection

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS='cpu')

# Training steps that poll an asynchronous checkpoint save every step; the second save does not fit on disk.
ASYNC_SAVES = """
import sys, time
import jax, numpy as np
import orbax.checkpoint as ocp
from cascadeformer_jax.run import io_checks
io_checks.drain_orbax_event_loops()
io_checks.hide_logged_errors()
directory = sys.argv[1]
manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(max_to_keep=3, create=True))
watch = io_checks.AsyncSaveWatch(manager, directory)
rng = np.random.default_rng(0)
try:
  for step in range(1, 2001):
    time.sleep(0.01)  # a training step
    watch.poll()
    if step in (1, 50):
      size = 10 if step == 1 else 2_000_000
      state = {'w': rng.normal(size=size).astype(np.float32)}
      manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=True)
      watch.saved(step)
  watch.wait()
except io_checks.WriteError as e:
  print(f'error: {e}', file=sys.stderr)
  print(f'stopped at step {step}', flush=True)
  import os; os._exit(1)
print('finished')
"""


def test_full_disk_during_an_asynchronous_checkpoint_stops_within_seconds(tmp_path):
  started = time.monotonic()
  result = failure_injection.run_with_full_disk(
      [sys.executable, '-c', ASYNC_SAVES, str(tmp_path / 'disk' / 'checkpoints')], tmp_path / 'disk', 1 << 20,
      capture_output=True, text=True, cwd=REPO_ROOT, env=ENV, timeout=120)
  elapsed = time.monotonic() - started
  assert result.returncode == 1, (result.stdout, result.stderr[-3000:])
  stopped_at = int(result.stdout.split('stopped at step ')[1])
  assert stopped_at < 400  # the failure surfaced within a few steps of the save, not at the end
  error_lines = result.stderr.splitlines()
  assert len(error_lines) == 1 and error_lines[0].startswith('error: '), result.stderr[-3000:]
  assert 'checkpoints/50' in error_lines[0]
  assert any(reason in error_lines[0] for reason in failure_injection.FULL_DISK_REASONS), error_lines
  assert elapsed < 60


def test_a_failed_orbax_operation_lets_its_pending_tensorstore_work_end_first(capfd):
  """A TensorStore operation still running when another one fails must not find Orbax's event loop closed:
  TensorStore would print 'RuntimeError: Event loop is closed' with a traceback when it completes."""
  import tensorstore as ts  # pylint: disable=g-import-not-at-top
  from orbax.checkpoint._src import asyncio_utils  # pylint: disable=g-import-not-at-top

  assert io_checks.drain_orbax_event_loops()
  promise, still_writing = ts.Promise.new()

  async def one_write_fails_while_another_runs():
    asyncio.ensure_future(still_writing)
    await asyncio.sleep(0)
    threading.Timer(0.2, promise.set_result, [None]).start()  # TensorStore's thread completes it later
    raise OSError(28, 'No space left on device')

  with pytest.raises(OSError, match='No space left on device'):
    asyncio_utils.run_sync(one_write_fails_while_another_runs())
  assert still_writing.done()
  time.sleep(0.1)
  assert capfd.readouterr().err == ''


def test_unreadable_file_names_the_damaged_file(tmp_path):
  checkpoint = tmp_path / '45'
  (checkpoint / 'state' / 'ocdbt.process_0' / 'd').mkdir(parents=True)
  (checkpoint / 'meta').mkdir()
  (checkpoint / 'meta' / 'metadata').write_text('{"stage": "pretrain"}')
  (checkpoint / 'state' / '_METADATA').write_text('{"tree": {"params": "trunc')
  (checkpoint / 'state' / 'ocdbt.process_0' / 'd' / 'a').write_bytes(b'x' * 7)
  (checkpoint / 'state' / 'ocdbt.process_0' / 'd' / 'b').write_bytes(b'x' * 5)
  with pytest.raises(json.JSONDecodeError) as decoding:
    json.loads((checkpoint / 'state' / '_METADATA').read_text())
  wrapped = RuntimeError('restore failed')
  wrapped.__cause__ = decoding.value
  file, reason = io_checks.unreadable_file(wrapped, checkpoint)
  assert file == checkpoint / 'state' / '_METADATA'
  assert reason.startswith('invalid JSON, truncated or damaged (Unterminated string')
  database = checkpoint / 'state'
  truncated = ValueError(f'OUT_OF_RANGE: Error reading "params.w/0.0" in OCDBT database at local file "{database}/": '
                         'Requested byte range [3, 9) is not valid for value of size 5 [tensorstore_spec=...]')
  assert io_checks.unreadable_file(Exception('reading failed'), checkpoint) is None
  assert io_checks.unreadable_file(truncated, checkpoint) == (
      database / 'ocdbt.process_0' / 'd' / 'b',
      'Requested byte range [3, 9) is not valid for value of size 5 (reading params.w/0.0)')
  manifest = ValueError(f'DATA_LOSS: Error reading "w/.zarray" in OCDBT database at local file "{database}/": Error '
                        f'decoding local file "{database}/manifest.ocdbt": Error decoding manifest; at byte 12')
  assert io_checks.unreadable_file(manifest, checkpoint) == (database / 'manifest.ocdbt',
                                                             'Error decoding manifest; at byte 12')
  # A restore target that does not fit the checkpoint is not damage: the caller reports it as it is.
  assert io_checks.unreadable_file(ValueError('INVALID_ARGUMENT: shape mismatch'), checkpoint) is None


def test_check_writable(tmp_path):
  io_checks.check_writable(tmp_path / 'new' / 'deeper')
  (tmp_path / 'file').write_text('x')
  with pytest.raises(io_checks.WriteError, match='is not a folder'):
    io_checks.check_writable(tmp_path / 'file' / 'sub', 'output folder')
  script = ('import sys\nfrom cascadeformer_jax.run import io_checks\n'
            'try:\n  io_checks.check_writable(sys.argv[1] + "/out", "output folder")\n'
            'except io_checks.WriteError as e:\n  print(e)')
  result = failure_injection.run_with_read_only_folder(
      [sys.executable, '-c', script, str(tmp_path / 'ro')], tmp_path / 'ro', capture_output=True, text=True,
      cwd=REPO_ROOT, env=ENV, timeout=60)
  assert result.stdout.startswith(f'cannot write the output folder {tmp_path / "ro" / "out"}: ')
  assert any(reason in result.stdout for reason in failure_injection.READ_ONLY_REASONS), result.stdout


def test_os_reason_is_found_in_wrapped_errors():
  orbax_style = ValueError('RESOURCE_EXHAUSTED: Error writing "w/0": Failed to write 5 bytes to file 4: No space '
                           "left on device [os_error_code='28']")
  assert io_checks.os_reason(orbax_style) == 'No space left on device'
  try:
    try:
      open('/nonexistent-dir/x', 'w')
    except OSError as e:
      raise RuntimeError('save failed') from e
  except RuntimeError as wrapped:
    assert io_checks.os_reason(wrapped) == 'No such file or directory'
  assert io_checks.os_reason(ValueError('a programming error')) == ''
  with pytest.raises(io_checks.WriteError, match='could not write the model directory /x: No space left on device'):
    with io_checks.checked_write('model directory', '/x'):
      raise orbax_style
  with pytest.raises(ValueError, match='a programming error'):
    with io_checks.checked_write('model directory', '/x'):
      raise ValueError('a programming error')


def test_debug_switch(monkeypatch):
  monkeypatch.delenv(io_checks.DEBUG_ENVIRONMENT_VARIABLE, raising=False)
  assert not io_checks.debug_enabled()
  monkeypatch.setenv(io_checks.DEBUG_ENVIRONMENT_VARIABLE, '1')
  assert io_checks.debug_enabled()
