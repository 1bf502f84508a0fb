"""Writes that fail fast and say why: output pre-flight checks, checked checkpoint writes, the debug switch.

A failed write (full disk, read-only or vanished folder, quota) becomes one `WriteError` naming the path and the
operating system's reason, whether it happens in the calling thread or in an asynchronous Orbax save (whose errors
Orbax only reports when it is next waited on). A checkpoint that cannot be read back (a truncated, damaged or
missing file) is named by `unreadable_file`, and `drain_orbax_event_loops` keeps the failed reads and writes of
TensorStore from printing tracebacks of their own.
"""

import asyncio
import contextlib
import json
import logging
import os
import pathlib
import re
import tempfile
from typing import Any, Iterator

import ml_collections

DEBUG_ENVIRONMENT_VARIABLE = 'CASCADEFORMER_DEBUG'


class WriteError(RuntimeError):
  """Something the run must write could not be written; the message names the path and the reason."""


def debug_enabled(config: ml_collections.ConfigDict | None = None) -> bool:
  """True when ``config.debug`` or $CASCADEFORMER_DEBUG (1/true/yes) asks for tracebacks."""
  if os.environ.get(DEBUG_ENVIRONMENT_VARIABLE, '').strip().lower() in ('1', 'true', 'yes', 'on'):
    return True
  return bool(config is not None and config.get('debug', False))


def check_writable(path: str | os.PathLike, what: str = 'output folder') -> pathlib.Path:
  """Raises WriteError unless ``path`` is, or can be created as, a folder this process can write into.

  The nearest existing ancestor is probed by creating and deleting a file in it, so read-only mounts, missing
  permissions and full disks are caught as well as a file standing where a folder is needed.
  """
  path = pathlib.Path(path).absolute()
  existing = path
  while not existing.exists():
    if existing.parent == existing:
      break
    existing = existing.parent
  if not existing.is_dir():
    raise WriteError(f'cannot write the {what} {path}: {existing} is not a folder')
  try:
    handle, probe = tempfile.mkstemp(prefix='.write-check-', dir=existing)
    os.close(handle)
    os.unlink(probe)
  except OSError as e:
    raise WriteError(f'cannot write the {what} {path}: {os_reason(e)} ({existing})') from None
  return path


_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")
_ERRNO_TEXT = re.compile(r'\[Errno (\d+)\] ([^:\']+)')


def os_reason(error: BaseException) -> str:
  """The operating system's reason for a failed write, found in ``error`` or its causes ('' if none)."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno:
      return os.strerror(error.errno)
    text = str(error)
    match = _OS_ERROR_CODE.search(text)
    if match:
      return os.strerror(int(match.group(1)))
    match = _ERRNO_TEXT.search(text)
    if match:
      return match.group(2).strip()
    error = error.__cause__ or error.__context__
  return ''


def is_write_failure(error: BaseException) -> bool:
  """Whether ``error`` (or a cause) is an operating-system write failure rather than a programming error."""
  return bool(os_reason(error)) or isinstance(error, OSError)


def write_error(what: str, path: str | os.PathLike, error: BaseException) -> WriteError:
  reason = os_reason(error) or f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}'
  return WriteError(f'could not write the {what} {path}: {reason}')


@contextlib.contextmanager
def checked_write(what: str, path: str | os.PathLike) -> Iterator[None]:
  """Turns an OS-level write failure inside the block into one WriteError naming ``path``."""
  try:
    yield
  except WriteError:
    raise
  except (OSError, ValueError, RuntimeError) as e:
    if not is_write_failure(e):
      raise
    raise write_error(what, path, e) from e


class _LoggedErrors(logging.Filter):
  """Remembers the last exception that a library logged (Orbax logs some background failures instead of raising
  them) and, once `hide_logged_errors()` was called, keeps it off the console."""

  def __init__(self):
    super().__init__()
    self.last: BaseException | None = None
    self.show = True

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR and record.exc_info and record.exc_info[1] is not None:
      self.last = record.exc_info[1]
    return self.show or record.levelno >= logging.CRITICAL


_LOGGED_ERRORS = _LoggedErrors()
_LIBRARY_LOGGERS = ('absl', 'orbax')


def _watch_logged_errors() -> _LoggedErrors:
  for name in _LIBRARY_LOGGERS:
    logger = logging.getLogger(name)
    if _LOGGED_ERRORS not in logger.filters:
      logger.addFilter(_LOGGED_ERRORS)
  return _LOGGED_ERRORS


def hide_logged_errors() -> None:
  """Keeps library error logs (and their tracebacks) off the console unless the debug switch is on: the run
  reports those failures itself, in one line."""
  _watch_logged_errors().show = debug_enabled()


class AsyncSaveWatch:
  """Surfaces the failure of an Orbax CheckpointManager's asynchronous save as soon as the save has ended.

  Orbax reports a failed background save only when it is next waited on, and its save-finalisation thread logs
  and skips some failures. Call `poll()` often (every training step: it only reads a flag until a save has
  ended) and `wait()` where the run must know the save landed.
  """

  def __init__(self, manager: Any, directory: str | os.PathLike):
    self._manager = manager
    self.directory = pathlib.Path(directory)
    self._pending: int | None = None
    self._logged = _watch_logged_errors()
    self._logged_before: BaseException | None = None

  def saved(self, step: int) -> None:
    """Records that a save of ``step`` was started."""
    self._pending = step
    self._logged_before = self._logged.last

  def poll(self) -> None:
    """Raises WriteError if a started save has ended and failed; never blocks on a save in progress."""
    if self._pending is None or self._manager.is_saving_in_progress():
      return
    self.wait()

  def wait(self) -> None:
    """Waits for the started save; raises WriteError if it failed or did not produce its step."""
    step, self._pending = self._pending, None
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-exception-caught
      if not is_write_failure(e):
        raise
      raise write_error('checkpoint', self.directory / str(step), e) from e
    if step is not None and step not in self._manager.all_steps():
      logged = self._logged.last if self._logged.last is not self._logged_before else None
      if logged is not None:
        raise write_error('checkpoint', self.directory / str(step), logged)
      raise WriteError(f'could not write the checkpoint {self.directory / str(step)}: the save did not complete')


def all_processes_succeeded(succeeded: bool) -> bool:
  """True if every process of the job passes True. Every process must call it (it is a collective).

  Used before a barrier that follows a write: a process whose write failed must not leave the others waiting on
  the barrier for ever, so all of them learn of the failure and raise together.
  """
  import jax  # pylint: disable=g-import-not-at-top

  if jax.process_count() == 1:
    return succeeded
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  flags = multihost_utils.process_allgather(np.array([1 if succeeded else 0], np.int32))
  return bool(np.all(flags))


# How long a failed Orbax operation waits for its other TensorStore reads and writes to end before it closes its
# event loop. They end within milliseconds of a full disk or a damaged file; the wait only bounds a stuck one.
DRAIN_SECONDS = 30.0


def _run_in_new_loop_then_drain(coroutine: Any) -> Any:
  """Orbax's `_run_sync_via_new_loop`, except that a coroutine that fails leaves no work behind in its loop.

  Orbax runs each save or restore of TensorStore arrays in an event loop of its own and closes it as soon as the
  coroutine ends. When one array fails, the coroutine ends at once while the reads and writes of the others are
  still running in TensorStore's threads: each that completes later finds the loop closed, and TensorStore prints
  'RuntimeError: Event loop is closed' with a traceback from its thread (hundreds on a full disk), and asyncio
  prints 'Task exception was never retrieved' for the tasks that failed too. Here they all end first.
  """
  loop = asyncio.new_event_loop()
  try:
    asyncio.set_event_loop(loop)
    return loop.run_until_complete(coroutine)
  except Exception:
    with contextlib.suppress(Exception):  # The failure of the coroutine is the one to report.
      _drain(loop)
    raise
  finally:
    asyncio.set_event_loop(None)
    loop.close()


def _drain(loop: asyncio.AbstractEventLoop) -> None:
  """Runs ``loop`` until its pending tasks end (cancelling those still running after DRAIN_SECONDS)."""
  pending = asyncio.all_tasks(loop)
  if not pending:
    return
  _, late = loop.run_until_complete(asyncio.wait(pending, timeout=DRAIN_SECONDS))
  if late:
    for task in late:
      task.cancel()
    loop.run_until_complete(asyncio.wait(late, timeout=DRAIN_SECONDS))
  for task in pending:
    if task.done() and not task.cancelled():
      task.exception()  # Retrieved: the failure that is being raised already reports them.


def drain_orbax_event_loops() -> bool:
  """Makes Orbax's per-operation event loops finish their pending work when an operation fails (see
  `_run_in_new_loop_then_drain`). Idempotent; False if this Orbax version has no such loop to replace."""
  from orbax.checkpoint._src import asyncio_utils  # pylint: disable=g-import-not-at-top

  if getattr(asyncio_utils, '_run_sync_via_new_loop', None) is None:
    return False
  asyncio_utils._run_sync_via_new_loop = _run_in_new_loop_then_drain  # pylint: disable=protected-access
  return True


# TensorStore status codes of a file that is there but cannot be decoded, or is shorter than its index says, or is
# missing. INVALID_ARGUMENT is left out: it also reports a restore target that does not fit the checkpoint.
_DAMAGE_CODE = re.compile(r'\b(?:DATA_LOSS|OUT_OF_RANGE|FAILED_PRECONDITION|NOT_FOUND): (.*)', re.DOTALL)
_DECODING_FILE = re.compile(r'Error decoding local file "([^"]+)": (.*)', re.DOTALL)
_READING_KEY = re.compile(r'Error reading "([^"]+)" in OCDBT database at local file "([^"]+)": (.*)', re.DOTALL)
_LOCAL_FILE = re.compile(r'local file "([^"]+)"')
_VALUE_SIZE = re.compile(r'not valid for value of size (\d+)')
_TENSORSTORE_DETAILS = re.compile(r'\s*\[(?:tensorstore_spec|source locations)=.*', re.DOTALL)
# Files of an Orbax checkpoint that are not JSON.
_NOT_JSON = ('manifest.ocdbt', 'commit_success.txt')


def unreadable_file(error: BaseException, folder: str | os.PathLike) -> tuple[pathlib.Path, str] | None:
  """(file, reason) when ``error`` says that a file of the checkpoint ``folder`` is truncated, damaged or missing.

  None for any other error (a restore target that does not fit, a programming error), which callers re-raise.
  ``file`` is the folder itself when the error does not tell which of its files it is.
  """
  folder = pathlib.Path(folder)
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, json.JSONDecodeError):
      return _invalid_json_file(folder, error)
    if isinstance(error, FileNotFoundError) and error.filename:
      return pathlib.Path(error.filename), 'missing'
    damage = _DAMAGE_CODE.search(str(error))
    if damage:
      return _tensorstore_damage(folder, _TENSORSTORE_DETAILS.sub('', damage.group(1)).strip())
    error = error.__cause__ or error.__context__
  return None


def _tensorstore_damage(folder: pathlib.Path, text: str) -> tuple[pathlib.Path, str]:
  decoding = _DECODING_FILE.search(text)
  if decoding:
    return pathlib.Path(decoding.group(1)), decoding.group(2).strip()
  reading = _READING_KEY.search(text)
  if reading:
    key, database, reason = reading.groups()
    size = _VALUE_SIZE.search(reason)
    # A truncated data file: TensorStore names its database and its new size; the file of that size is the one.
    candidates = ([path for path in pathlib.Path(database).rglob('*') if path.is_file()
                   and path.stat().st_size == int(size.group(1))] if size else [])
    where = candidates[0] if len(candidates) == 1 else pathlib.Path(database)
    return where, f'{reason.strip()} (reading {key})'
  local = _LOCAL_FILE.search(text)
  return (pathlib.Path(local.group(1)) if local else folder), text


def _invalid_json_file(folder: pathlib.Path, error: json.JSONDecodeError) -> tuple[pathlib.Path, str]:
  """The JSON file of ``folder`` that fails to parse the way ``error`` says (the folder if none does)."""
  reason = f'invalid JSON, truncated or damaged ({error.msg}: line {error.lineno} column {error.colno})'
  first_invalid = None
  for path in sorted(folder.rglob('*')) if folder.is_dir() else []:
    if not path.is_file() or path.name in _NOT_JSON or path.parent.name == 'd' or path.stat().st_size > 1 << 26:
      continue
    try:
      json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      if isinstance(e, json.JSONDecodeError) and (e.msg, e.pos) == (error.msg, error.pos):
        return path, reason
      first_invalid = first_invalid or path
  return first_invalid or folder, reason
