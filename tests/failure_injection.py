"""Real write failures for subprocess tests: a read-only folder and a full disk.

As root with mount rights, the folder gets a small (or read-only) tmpfs in a private mount namespace of the child
(`unshare -m`), so the host's mounts are untouched. Otherwise a read-only folder is made with chmod, and a full disk
is imitated by a file-size limit (RLIMIT_FSIZE: writes past it fail with EFBIG, "File too large").
"""

import os
import pathlib
import resource
import shutil
import signal
import subprocess

import pytest

FULL_DISK_REASONS = ('No space left on device', 'File too large')
READ_ONLY_REASONS = ('Read-only file system', 'Permission denied')


def _can_mount() -> bool:
  if os.geteuid() != 0 or shutil.which('unshare') is None:
    return False
  probe = subprocess.run(['unshare', '-m', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs /mnt'], capture_output=True)
  return probe.returncode == 0


CAN_MOUNT = _can_mount()


def _in_tmpfs(command: list[str], folder: pathlib.Path, options: str, fill: bool = False) -> list[str]:
  filling = '(cat /dev/zero > "$0/filler" 2>/dev/null; true) && ' if fill else ''
  script = f'mount -t tmpfs -o {options} tmpfs "$0" && {filling}exec "$@"'
  return ['unshare', '-m', 'sh', '-c', script, str(folder), *command]


def run_with_read_only_folder(command: list[str], folder: pathlib.Path, **kwargs) -> subprocess.CompletedProcess:
  """Runs ``command`` with ``folder`` (created empty) read-only for it."""
  folder.mkdir(parents=True, exist_ok=True)
  if CAN_MOUNT:
    return subprocess.run(_in_tmpfs(command, folder, 'ro,size=64k'), **kwargs)
  if os.geteuid() == 0:
    pytest.skip('as root without mount rights a folder cannot be made read-only')
  folder.chmod(0o555)
  try:
    return subprocess.run(command, **kwargs)
  finally:
    folder.chmod(0o755)


def run_with_full_disk(command: list[str], folder: pathlib.Path, size_bytes: int, already_full: bool = False,
                       **kwargs) -> subprocess.CompletedProcess:
  """Runs ``command`` with about ``size_bytes`` of space in ``folder`` (a tmpfs) or per written file (a limit).

  ``already_full``: the space is used up before the command starts (no byte can be written there). It needs the
  tmpfs: a file-size limit of 0 would fail every write of the process, not only those into ``folder``.
  """
  folder.mkdir(parents=True, exist_ok=True)
  if CAN_MOUNT:
    return subprocess.run(_in_tmpfs(command, folder, f'size={size_bytes}', fill=already_full), **kwargs)
  if already_full:
    pytest.skip('a folder on a full disk needs a tmpfs (root with mount rights)')

  def limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size_bytes, size_bytes))

  return subprocess.run(command, preexec_fn=limit_file_size, **kwargs)


def run_with_full_disks(command: list[str], filling: pathlib.Path, full: pathlib.Path, size_bytes: int,
                        **kwargs) -> subprocess.CompletedProcess:
  """Runs ``command`` with about ``size_bytes`` of space in ``filling`` and none in ``full`` (both tmpfs).

  Without a tmpfs, each written file gets ``size_bytes`` (see `run_with_full_disk`) and ``full`` is an ordinary
  folder: a test of it must skip.
  """
  full.mkdir(parents=True, exist_ok=True)
  if not CAN_MOUNT:
    return run_with_full_disk(command, filling, size_bytes, **kwargs)
  filling.mkdir(parents=True, exist_ok=True)
  mount = 'mount -t tmpfs -o size={size} tmpfs'.format(size=size_bytes)
  script = f'{mount} "$0" && {mount} "$1" && (cat /dev/zero > "$1/filler" 2>/dev/null; true) && shift && exec "$@"'
  return subprocess.run(['unshare', '-m', 'sh', '-c', script, str(filling), str(full), *command], **kwargs)
