"""Counter-based random numbers per example, drawn for a whole batch of examples at once.

Every example has a 64-bit key (from the pipeline seed, a stream tag, the epoch and its virtual index) and every
draw has a *purpose* (a small integer naming what it is for). Value j of purpose p of the example with key k is
`mix64(k + (p·2³² + j + 1)·γ)`, the SplitMix64 output function on a Weyl sequence (γ = 0x9E3779B97F4A7C15).
An example's draws therefore depend on nothing but its key: not on the other examples of its batch, their
number, the order of the calls, worker processes, threads or the process count. One NumPy expression produces
a draw for every example of a batch, which replaces one `np.random.Generator` per example (whose construction
alone cost about as much as the rest of a clip's augmentation draws).

SplitMix64: G. L. Steele, D. Lea, C. H. Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014.
"""

from __future__ import annotations

import functools

import numpy as np

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_PURPOSE_STRIDE = 1 << 32


def _mix_int(z: int) -> int:
  """SplitMix64's output function on a Python int (mod 2⁶⁴)."""
  z &= _MASK
  z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
  z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
  return z ^ (z >> 31)


_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))
_MULTIPLIERS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_MANTISSA_SHIFT = np.uint64(11)
_GAMMA_UINT64 = np.uint64(_GAMMA)


def _mix(z: np.ndarray) -> np.ndarray:
  """SplitMix64's output function on a uint64 array, in place (wrapping arithmetic)."""
  z ^= z >> _SHIFTS[0]
  z *= _MULTIPLIERS[0]
  z ^= z >> _SHIFTS[1]
  z *= _MULTIPLIERS[1]
  z ^= z >> _SHIFTS[2]
  return z


def smallest(keys: np.ndarray, sizes) -> np.ndarray:
  """(N, K) bool: the `sizes[i]` smallest of row i's K keys, i.e. a uniformly random subset of that size when the
  keys are uniform draws (ties have probability ~2⁻⁵³). `sizes[i]` must be in [1, K]."""
  sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 1)
  threshold = np.take_along_axis(np.sort(keys, axis=1), sizes - 1, axis=1)
  return keys <= threshold


@functools.lru_cache(maxsize=256)
def _stream_prefix(words: tuple[int, ...]) -> np.uint64:
  prefix = 0x2545F4914F6CDD1D
  for word in words:
    prefix = _mix_int(prefix + (word & _MASK) * _GAMMA + 1)
  return np.uint64(prefix)


def example_keys(words: tuple[int, ...], indices: np.ndarray) -> np.ndarray:
  """(N,) uint64 keys of the examples `indices` in the stream named by `words` (e.g. (seed, tag, epoch))."""
  keys = np.asarray(indices, dtype=np.int64).astype(np.uint64)
  keys *= _GAMMA_UINT64
  keys += _stream_prefix(tuple(int(word) for word in words))
  return _mix(keys)


@functools.lru_cache(maxsize=64)
def _steps(purpose: int, start: int, count: int) -> np.ndarray:
  if not (purpose >= 0 and start >= 0 and start + count <= _PURPOSE_STRIDE):
    raise ValueError(f'purpose {purpose} / values [{start}, {start + count}) out of range')
  first = (purpose * _PURPOSE_STRIDE + start + 1) * _GAMMA & _MASK
  steps = np.arange(count, dtype=np.uint64) * np.uint64(_GAMMA) + np.uint64(first)
  steps.flags.writeable = False
  return steps


class ExampleStreams:
  """Draws for N examples at once; row i of every result belongs to example i (see the module docstring)."""

  def __init__(self, keys: np.ndarray):
    self.keys = np.asarray(keys, dtype=np.uint64).reshape(-1)

  def __len__(self) -> int:
    return len(self.keys)

  def __getitem__(self, rows) -> 'ExampleStreams':
    return ExampleStreams(self.keys[rows])

  def bits(self, purpose: int, count: int, start: int = 0) -> np.ndarray:
    """(N, count) uint64: values start … start + count − 1 of `purpose`."""
    return _mix(self.keys[:, None] + _steps(purpose, start, count)[None, :])

  def uniform(self, purpose: int, count: int, start: int = 0) -> np.ndarray:
    """(N, count) float64 uniform on [0, 1) (53 random bits each)."""
    values = (self.bits(purpose, count, start) >> _MANTISSA_SHIFT).astype(np.float64)
    values *= 1.0 / (1 << 53)
    return values

  def distinct_integers(self, purpose: int, populations, count: int) -> np.ndarray:
    """(N, count) int64 sorted: `count` distinct values of [0, populations[i]) drawn uniformly without replacement.

    The first `count` distinct values of example i's stream of uniform integers, which is sequential sampling
    without replacement. A row reads `2·count` values of its stream, or more (doubling) while they hold fewer
    than `count` distinct ones, so a row's values do not depend on the other rows.
    """
    populations = np.broadcast_to(np.asarray(populations, dtype=np.int64), self.keys.shape)
    if (populations < count).any():
      raise ValueError(f'cannot draw {count} distinct values from a population of {int(populations.min())}')
    out = np.empty((len(self.keys), count), dtype=np.int64)
    rows, width = np.arange(len(self.keys)), 2 * count
    while True:
      positions = np.arange(width)
      draws = (self[rows].uniform(purpose, width) * populations[rows, None]).astype(np.int64)  # ⌊u·n⌋
      # Sort (value, position) pairs: equal values are then adjacent, their first occurrence first.
      pairs = np.sort(draws * width + positions, axis=1)
      values = pairs // width
      repeat = np.zeros(pairs.shape, dtype=bool)
      repeat[:, 1:] = values[:, 1:] == values[:, :-1]
      # Then sort the first occurrences by position (repeats last) and keep the first `count`.
      limit = int(populations.max())
      firsts = np.sort(np.where(repeat, width * limit, (pairs % width) * limit + values), axis=1)[:, :count]
      done = firsts[:, -1] < width * limit
      if done.all():
        out[rows] = np.sort(firsts % limit, axis=1)
        return out
      out[rows[done]] = np.sort(firsts[done] % limit, axis=1)
      rows, width = rows[~done], 2 * width
