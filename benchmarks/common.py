"""Shared helpers of the benchmarks: machine facts, load checks, interleaved timing, memory and tables."""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import json
import math
import os
import pathlib
import platform
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

# Dense peak FLOP/s of GPUs the device machines lend (vendor datasheets, SXM parts, no sparsity).
GPU_PEAK_TFLOPS = {
    'H100': {'bfloat16': 989.0, 'tensorfloat32': 494.5, 'float32': 67.0},
    'H200': {'bfloat16': 989.0, 'tensorfloat32': 494.5, 'float32': 67.0},
    'A100': {'bfloat16': 312.0, 'tensorfloat32': 156.0, 'float32': 19.5},
}


def load_average() -> float:
  """The 1-minute load average (0.0 where the platform has none)."""
  try:
    return os.getloadavg()[0]
  except OSError:
    return 0.0


def wait_for_quiet(max_load: float | None, max_wait_s: float = 900.0, poll_s: float = 60.0,
                   log: Callable[[str], None] = print) -> dict[str, float]:
  """Waits (up to ``max_wait_s``) until the 1-minute load average is at most ``max_load``.

  Timings on a shared 2-core machine are only meaningful when nothing else runs. Returns the load seen at the
  start and at the end of the wait and how long it waited; ``max_load=None`` only records the load.
  """
  start = time.monotonic()
  first = load_average()
  current = first
  while max_load is not None and current > max_load and time.monotonic() - start < max_wait_s:
    log(f'load average {current:.2f} > {max_load}; waiting {poll_s:.0f} s')
    time.sleep(poll_s)
    current = load_average()
  return {'load_before_wait': first, 'load_at_start': current, 'waited_s': time.monotonic() - start}


def release_freed_memory() -> None:
  """Returns freed heap pages to the OS (glibc), so that RSS deltas of the next phase start from a clean base."""
  with contextlib.suppress(OSError, AttributeError):
    ctypes.CDLL('libc.so.6').malloc_trim(0)


def rss_bytes() -> int:
  import psutil  # pylint: disable=g-import-not-at-top

  return psutil.Process().memory_info().rss


class PeakRss:
  """Context manager: the peak resident set size above the size at entry, sampled every ``interval_s``."""

  def __init__(self, interval_s: float = 0.002):
    self.interval_s = interval_s
    self.baseline = 0
    self.peak = 0
    self._stop = threading.Event()
    self._thread: threading.Thread | None = None

  def _sample(self):
    while not self._stop.is_set():
      self.peak = max(self.peak, rss_bytes())
      time.sleep(self.interval_s)

  def __enter__(self) -> 'PeakRss':
    release_freed_memory()
    self.baseline = self.peak = rss_bytes()
    self._thread = threading.Thread(target=self._sample, daemon=True)
    self._thread.start()
    return self

  def __exit__(self, *exc_info):
    self._stop.set()
    self._thread.join()
    self.peak = max(self.peak, rss_bytes())

  @property
  def delta_mib(self) -> float:
    return (self.peak - self.baseline) / 2**20


def interleaved_times(runners: dict[str, Callable[[], Any]], blocks: int,
                      steps_per_block: int) -> dict[str, list[float]]:
  """Times each runner in alternating blocks so that all of them see the same machine conditions.

  Block order alternates (A B, B A, A B, ...) to cancel drift. Each runner call must block until its work is
  done. Returns the per-call wall times in seconds.
  """
  names = list(runners)
  times: dict[str, list[float]] = {name: [] for name in names}
  for block in range(blocks):
    for name in (names if block % 2 == 0 else names[::-1]):
      for _ in range(steps_per_block):
        start = time.perf_counter()
        runners[name]()
        times[name].append(time.perf_counter() - start)
  return times


def summarize(times: Sequence[float]) -> dict[str, float]:
  """Median / min / max / interquartile spread / 99th percentile (nearest rank) of per-call times, in ms."""
  ms = sorted(1e3 * t for t in times)
  quartiles = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
  return {'median_ms': statistics.median(ms), 'min_ms': ms[0], 'max_ms': ms[-1], 'q1_ms': quartiles[0],
          'q3_ms': quartiles[2], 'p99_ms': ms[max(0, math.ceil(0.99 * len(ms)) - 1)], 'count': len(ms)}


def format_value(value: Any) -> str:
  if value is None:
    return '–'
  if isinstance(value, float):
    if abs(value) >= 100:
      return f'{value:.0f}'
    if abs(value) >= 10:
      return f'{value:.1f}'
    return f'{value:.2f}'
  return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
  """A markdown table of ``rows``; ``columns`` are (key, header) pairs, missing values print as '–'."""
  lines = ['| ' + ' | '.join(header for _, header in columns) + ' |',
           '|' + '|'.join('---' for _ in columns) + '|']
  for row in rows:
    lines.append('| ' + ' | '.join(format_value(row.get(key)) for key, _ in columns) + ' |')
  return '\n'.join(lines)


def cpu_model() -> str:
  with contextlib.suppress(OSError):
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
  """Where and with what the benchmark ran."""
  import jax  # pylint: disable=g-import-not-at-top

  info = {
      'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
      'host_cpu': cpu_model(),
      'cpu_count': os.cpu_count(),
      'jax': jax.__version__,
      'jax_backend': jax.default_backend(),
      'jax_device': jax.devices()[0].device_kind,
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
      'load_average_1min': load_average(),
  }
  with contextlib.suppress(ImportError):
    import torch  # pylint: disable=g-import-not-at-top

    info['torch'] = torch.__version__
    info['torch_threads'] = torch.get_num_threads()
  return info


def gpu_peak_tflops(device_kind: str, dtype: str) -> float | None:
  """The dense peak TFLOP/s of a known GPU for 'float32', 'tensorfloat32' or 'bfloat16', else None."""
  for name, peaks in GPU_PEAK_TFLOPS.items():
    if name.lower() in device_kind.lower():
      return peaks.get(dtype)
  return None


def compiled_flops(compiled: Any) -> float | None:
  """XLA's FLOP count of a compiled executable (None where the backend does not report it)."""
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  if not analysis or 'flops' not in analysis:
    return None
  return float(analysis['flops'])


def compiled_temp_mib(compiled: Any) -> float | None:
  """XLA's planned temporary buffer size of a compiled executable, in MiB."""
  try:
    analysis = compiled.memory_analysis()
  except Exception:  # pylint: disable=broad-except
    return None
  if analysis is None:
    return None
  return analysis.temp_size_in_bytes / 2**20


def jax_device_peak_mib() -> float | None:
  """Peak bytes in use on the default JAX device (GPU/TPU; None on CPU, which keeps no statistics)."""
  import jax  # pylint: disable=g-import-not-at-top

  stats = jax.devices()[0].memory_stats()
  if not stats or 'peak_bytes_in_use' not in stats:
    return None
  return stats['peak_bytes_in_use'] / 2**20


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> None:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(payload, indent=2, sort_keys=False) + '\n')


def parse_options(value: str) -> dict[str, Any]:
  """'key=value,key=value' -> dict; 'true'/'false' and integers are converted."""
  options: dict[str, Any] = {}
  for item in filter(None, (part.strip() for part in value.split(','))):
    key, sep, raw = item.partition('=')
    if not sep or not key:
      raise ValueError(f'expected key=value, got {item!r}')
    if raw.lower() in ('true', 'false'):
      options[key] = raw.lower() == 'true'
    else:
      try:
        options[key] = int(raw)
      except ValueError:
        options[key] = raw
  return options


def parse_list(value: str, choices: Sequence[str], flag: str) -> list[str]:
  """A comma-separated flag value checked against ``choices``."""
  items = [item.strip() for item in value.split(',') if item.strip()]
  unknown = [item for item in items if item not in choices]
  if unknown or not items:
    raise SystemExit(f'--{flag}: expected a comma-separated subset of {list(choices)}, got {value!r}')
  return items
