"""Device prefetch: order, checkpointable state, errors, shutdown and the input-wait accounting."""

import threading
import time

import numpy as np
import pytest

from cascadeformer_jax.train import prefetch
from cascadeformer_jax.run import partitioning


class _CountingIterator:
  """Batches 0, 1, 2, ... with a get_state() like the data pipeline's; optionally slow or failing."""

  def __init__(self, count: int, delay: float = 0.0, fail_at: int | None = None):
    self.position, self.count, self.delay, self.fail_at = 0, count, delay, fail_at
    self.threads = set()

  def __iter__(self):
    return self

  def __next__(self):
    self.threads.add(threading.current_thread().name)
    if self.position == self.fail_at:
      raise ValueError(f'bad example in batch {self.position}')
    if self.position >= self.count:
      raise StopIteration
    time.sleep(self.delay)
    self.position += 1
    return {'x': np.full((2, 3), self.position - 1, np.float32), 'index': np.arange(2) + 2 * (self.position - 1)}

  def get_state(self):
    return {'position': self.position}


@pytest.mark.parametrize('size', [0, 1, 2])
def test_batches_in_order_on_the_mesh_with_the_state_of_the_consumed_batch(size):
  mesh = partitioning.make_mesh()
  source = _CountingIterator(5)
  iterator = prefetch.DevicePrefetcher(source, lambda batch: partitioning.global_batch(batch, mesh), size)
  assert iterator.get_state() == {'position': 0}
  first = next(iterator)
  assert first['x'].sharding == partitioning.batch_sharded(mesh)
  assert first['index'].sharding == partitioning.batch_sharded(mesh)
  time.sleep(0.05)  # The thread runs ahead, but the state is that of the batches handed out.
  assert iterator.get_state() == {'position': 1}
  rest = list(iterator)
  assert [int(b['x'][0, 0]) for b in [first, *rest]] == [0, 1, 2, 3, 4]
  assert iterator.get_state() == {'position': 5}
  with pytest.raises(StopIteration):
    next(iterator)
  iterator.close()
  assert ('device-prefetch' in source.threads) == (size > 0)


def test_errors_of_the_input_reach_the_loop():
  iterator = prefetch.DevicePrefetcher(_CountingIterator(5, fail_at=2), lambda batch: batch, size=2)
  next(iterator), next(iterator)
  with pytest.raises(ValueError, match='bad example in batch 2'):
    next(iterator)
  iterator.close()
  with pytest.raises(ValueError, match='must be >= 0'):
    prefetch.DevicePrefetcher(iter([]), lambda batch: batch, size=-1)


def test_close_stops_a_thread_blocked_on_a_full_queue():
  iterator = prefetch.DevicePrefetcher(_CountingIterator(10 ** 6), lambda batch: batch, size=2)
  next(iterator)
  time.sleep(0.05)
  iterator.close()
  assert not any(t.name == 'device-prefetch' and t.is_alive() for t in threading.enumerate())


def test_input_wait_fraction():
  # Slow input: the loop waits for most of its wall time.
  slow = prefetch.DevicePrefetcher(_CountingIterator(6, delay=0.05), lambda batch: batch, size=2)
  slow.meter.restart()
  for _ in slow:
    pass
  assert slow.meter.interval_fraction() > 0.7
  slow.close()
  # Fast input and a slow step: prefetch hides the input.
  fast = prefetch.DevicePrefetcher(_CountingIterator(6, delay=0.005), lambda batch: batch, size=2)
  time.sleep(0.05)
  fast.meter.restart()
  for _ in fast:
    time.sleep(0.05)
  assert fast.meter.interval_fraction() < 0.3
  fast.close()


def test_meter_intervals_with_a_fake_clock():
  now = [0.0]
  meter = prefetch.InputWaitMeter(clock=lambda: now[0])
  meter.add(1.0)
  now[0] = 4.0
  assert meter.interval_fraction() == 0.25
  now[0] = 5.0
  assert meter.interval_fraction() == 0.0
  assert meter.total_waited == 1.0
