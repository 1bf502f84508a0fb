"""Stopping a run cleanly: Ctrl-C and SIGTERM become a request that the training loop honours between steps.

While `stop_requests()` is active, the first SIGINT or SIGTERM only sets `StopRequests.signal`; the stage loop
checks it after every step, saves a checkpoint and raises `Interrupted` (exit code 130 for SIGINT, 143 for
SIGTERM, as a shell reports a process killed by that signal). A second Ctrl-C stops at once.
"""

import contextlib
import signal
import sys
import threading
from typing import Iterator

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143


class Terminated(BaseException):
  """SIGTERM arrived outside a training loop (raised in the main thread, as KeyboardInterrupt is for SIGINT)."""


class Interrupted(BaseException):
  """The run stopped on a signal after saving its progress; ``str()`` says how to resume."""

  def __init__(self, message: str, signal_number: int):
    super().__init__(message)
    self.exit_code = 128 + signal_number


def raise_terminated(signum, frame) -> None:  # pylint: disable=unused-argument
  raise Terminated()


class StopRequests:
  """The signal that asked the run to stop (None while none has)."""

  def __init__(self):
    self.signal: int | None = None

  def _handle(self, signum, frame) -> None:  # pylint: disable=unused-argument
    if self.signal is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.signal = signum
    print(f'\n{signal.Signals(signum).name}: stopping after the current step to save a checkpoint (press Ctrl-C '
          'again to stop at once)', file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequests]:
  """Routes SIGINT and SIGTERM to a StopRequests for the block (main thread only; elsewhere nothing changes)."""
  requests = StopRequests()
  if threading.current_thread() is not threading.main_thread():
    yield requests
    return
  previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
  for number in previous:
    signal.signal(number, requests._handle)  # pylint: disable=protected-access
  try:
    yield requests
  finally:
    for number, handler in previous.items():
      signal.signal(number, handler)
