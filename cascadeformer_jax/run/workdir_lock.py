"""One run per work directory: an exclusive lock file that names its holder.

``<workdir>/run.lock`` holds {"pid", "host", "started", "command"} of the run that owns the directory. The file is
also locked with flock(2) for as long as the run lives, so the kernel releases it when the process dies however
it dies: a lock file whose flock can be taken is stale (its holder was killed) and is taken over. Where the file
system has no flock, a lock is stale when it names a process of this host that no longer exists.

In a multi-process job only process 0 takes the lock (the others write nothing of their own into the directory).
"""

import datetime
import errno
import fcntl
import json
import os
import pathlib
import socket
import sys
from typing import Any

from cascadeformer_jax.run import io_checks

LOCK_FILE = 'run.lock'


class WorkdirLockedError(RuntimeError):
  """Another live run holds the work directory."""


def _holder_text(holder: dict[str, Any]) -> str:
  started = f', started {holder["started"]}' if holder.get('started') else ''
  return f'process {holder.get("pid", "?")} on host {holder.get("host", "?")}{started}'


def _read_holder(fd: int) -> dict[str, Any]:
  try:
    os.lseek(fd, 0, os.SEEK_SET)
    return json.loads(os.read(fd, 1 << 16).decode() or '{}')
  except (OSError, ValueError):
    return {}


def _process_exists(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


class WorkdirLock:
  """``with WorkdirLock(workdir):`` holds the work directory for the block (a no-op where ``primary`` is False).

  Attributes:
    path: the lock file.
    taken_over: the holder of the stale lock this lock replaced, or None.
  """

  def __init__(self, workdir: str | os.PathLike, primary: bool = True):
    self.path = pathlib.Path(workdir).absolute() / LOCK_FILE
    self.primary = primary
    self.taken_over: dict[str, Any] | None = None
    self._fd: int | None = None

  def acquire(self) -> 'WorkdirLock':
    if not self.primary or self._fd is not None:
      return self
    self.path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):  # Retried only when a concurrent release replaced the file under us.
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        holder = _read_holder(fd)
        if not self._lock(fd, holder):
          raise WorkdirLockedError(
              f'work directory {self.path.parent} is in use by {_holder_text(holder)} (lock file {self.path}); '
              'wait for that run to end, or use another --config.workdir')
        if not _same_file(fd, self.path):
          os.close(fd)
          continue
        self.taken_over = holder or None
        record = {'pid': os.getpid(), 'host': socket.gethostname(),
                  'started': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
                  'command': ' '.join(sys.argv)}
        with io_checks.checked_write('lock file', self.path):
          os.ftruncate(fd, 0)
          os.pwrite(fd, (json.dumps(record) + '\n').encode(), 0)
          os.fsync(fd)
      except BaseException:
        os.close(fd)
        raise
      self._fd = fd
      return self
    raise WorkdirLockedError(f'could not take the lock {self.path}: it keeps being replaced by other runs')

  def _lock(self, fd: int, holder: dict[str, Any]) -> bool:
    """Takes the flock; False if a live run holds it."""
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      return True
    except BlockingIOError:
      return False
    except OSError as e:
      if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
        raise
    # No flock on this file system: judge by the recorded process.
    if not holder:
      return True
    if holder.get('host') == socket.gethostname() and not _process_exists(int(holder.get('pid', -1))):
      return True
    return holder.get('pid') == os.getpid() and holder.get('host') == socket.gethostname()

  def release(self) -> None:
    if self._fd is None:
      return
    try:
      self.path.unlink(missing_ok=True)  # Removed while still locked: no one can mistake it for a live lock.
    finally:
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> 'WorkdirLock':
    return self.acquire()

  def __exit__(self, *exc_info) -> None:
    self.release()


def _same_file(fd: int, path: pathlib.Path) -> bool:
  try:
    return os.fstat(fd).st_ino == os.stat(path).st_ino
  except FileNotFoundError:
    return False
