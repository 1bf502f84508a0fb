"""Device prefetch: the next global batches are already on the devices while the current step runs.

A background thread reads process-local batches from the input pipeline and places them on the mesh
(``jax.make_array_from_process_local_data``); the training loop takes them from a small queue. The wait in
``next()`` is measured, so the loop can report which fraction of its wall time it spent waiting for input.
"""

from collections.abc import Callable, Iterator
import queue
import threading
import time
from typing import Any

_END = object()


class InputWaitMeter:
  """Wall-clock accounting of how long a loop waited for its input, per reporting interval."""

  def __init__(self, clock: Callable[[], float] = time.perf_counter):
    self._clock = clock
    self._interval_start = clock()
    self._waited = 0.0
    self.total_waited = 0.0

  def add(self, seconds: float) -> None:
    self._waited += seconds
    self.total_waited += seconds

  def interval_fraction(self) -> float:
    """Fraction of the wall time since the previous call (or the start) spent waiting; starts a new interval."""
    now = self._clock()
    elapsed = now - self._interval_start
    fraction = min(self._waited / elapsed, 1.0) if elapsed > 0 else 0.0
    self._interval_start, self._waited = now, 0.0
    return fraction

  def restart(self) -> None:
    """Starts a new interval without reporting (e.g. after an evaluation or a checkpoint)."""
    self._interval_start, self._waited = self._clock(), 0.0


class DevicePrefetcher(Iterator[Any]):
  """Iterates over ``place(local_batch)`` of an iterator's items, ``size`` items ahead, from a background thread.

  ``get_state()`` is the input iterator's state after the last batch handed out (not after the batches waiting
  in the queue), so a checkpoint taken between steps resumes exactly after the last step. Exceptions of the
  input iterator or of ``place`` are raised by ``next()``. With ``size`` 0 everything runs in the caller's
  thread (no prefetch), with the same accounting.
  """

  def __init__(self, iterator: Iterator[Any], place: Callable[[Any], Any], size: int = 2,
               meter: InputWaitMeter | None = None):
    if size < 0:
      raise ValueError(f'data.device_prefetch must be >= 0, got {size}')
    self._iterator = iterator
    self._place = place
    self._size = size
    self.meter = meter or InputWaitMeter()
    self._has_state = hasattr(iterator, 'get_state')
    self._state = iterator.get_state() if self._has_state else None
    self._stop = threading.Event()
    self._queue: queue.Queue = queue.Queue(maxsize=max(size, 1))
    self._thread = None
    if size > 0:
      self._thread = threading.Thread(target=self._produce, name='device-prefetch', daemon=True)
      self._thread.start()

  def _next_item(self) -> tuple[Any, Any]:
    item = next(self._iterator)
    state = self._iterator.get_state() if self._has_state else None
    return self._place(item), state

  def _produce(self) -> None:
    while not self._stop.is_set():
      try:
        entry = self._next_item()
      except StopIteration:
        entry = _END
      except BaseException as e:  # pylint: disable=broad-except
        entry = e
      while not self._stop.is_set():
        try:
          self._queue.put(entry, timeout=0.1)
          break
        except queue.Full:
          continue
      if entry is _END or isinstance(entry, BaseException):
        return

  def __next__(self) -> Any:
    started = time.perf_counter()
    try:
      if self._thread is None:
        entry = self._next_item()
      else:
        entry = self._queue.get()
    finally:
      self.meter.add(time.perf_counter() - started)
    if entry is _END:
      self._queue.put(_END)  # Later calls raise StopIteration too.
      raise StopIteration
    if isinstance(entry, BaseException):
      self._queue.put(entry)
      raise entry
    value, self._state = entry
    return value

  def get_state(self) -> Any:
    """The input iterator's state after the batches handed out so far."""
    if not self._has_state:
      raise AttributeError('the input iterator has no get_state()')
    return self._state

  def close(self) -> None:
    """Stops the thread (dropping prefetched batches); does not close the input iterator."""
    self._stop.set()
    if self._thread is not None:
      while True:
        try:
          self._queue.get_nowait()
        except queue.Empty:
          break
      self._thread.join(timeout=60)
      self._thread = None

  def __enter__(self) -> 'DevicePrefetcher':
    return self

  def __exit__(self, *exc) -> None:
    self.close()

