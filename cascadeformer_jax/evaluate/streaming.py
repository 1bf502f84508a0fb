"""Streaming prediction: a classifier fed one frame at a time, predicting on a sliding window of the latest frames.

    stream = StreamingClassifier(model, stride=4)     # a cfx.Classifier, or a model source as load_classifier takes
    for t, frame in enumerate(frames):                # (J, C), or (persons, J, C), in the model's stored layout
      prediction = stream.push(frame, t)
      if prediction is not None:
        print(prediction.t, prediction.top_k(3))

The window.
  It holds the latest ``window`` frames. The default is the model's frame count (``data.num_frames``: 64 for the
  published N-UCLA and NTU models). Penn Action models take clips of any length up to ``data.max_frames`` (663),
  padded to a length bucket; their default is the first bucket (``data.penn.length_buckets[0]``, 64 frames, about
  2 s of video), so that every full window is one compiled shape.

Each emission.
  Every ``stride`` frames the window gets the model's stored test-time transform, exactly as an offline clip of
  those frames would (``preprocessing.prepare_clip``: e.g. N-UCLA centring, min-max and 64 evenly spaced frames; NTU
  centre crop and resize; Penn padding to the bucket), and one batch-1 forward. The schedule is aligned so that the
  first full window emits: after frame n (counted from 1) when ``(n - window) % stride == 0``.

Before the window is full.
  By default nothing is emitted. With ``emit_partial=True`` the partial windows emit on the same schedule; their
  transform is again that of an offline clip of the frames so far (N-UCLA and NTU resample any length to the model's
  frame count; Penn pads a partial window to its own length bucket, a folder dataset with ``temporal='pad'`` to
  its frame count with a shorter real length).

Compilation.
  Every full window has one input shape, so once the first full window has been predicted no call compiles
  anything (``runtime.count_compilations`` measures this in the tests and the benchmark). With ``emit_partial`` a
  Penn model compiles the buckets of the partial windows while the window fills.

Bad frames and gaps (each named by its frame index ``t``):
  * a frame with the wrong joint or coordinate count, more persons than the model's slots, no person for a
    one-person model, NaN or Inf coordinates, or a ``t`` that does not increase: ``bad_frames='refuse'`` raises
    :class:`BadFrameError`; ``'skip'`` leaves the frame out, as if it had never come (the next frame is not a gap);
  * a jump in ``t`` (frames missing in between): ``gaps='refuse'`` raises :class:`FrameGapError`; ``'fill'``
    repeats the last frame for the missing ones. An emission due on a filled frame is made at the next real frame.
  * a window the transform cannot prepare (e.g. an NTU window in which every frame is empty): refused as a bad frame
    under ``'refuse'``; under ``'skip'`` that emission is left out.
  Skips and fills are reported through ``notice`` (one line each) when it is given.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, TextIO

import numpy as np

from cascadeformer_jax.data import layouts
from cascadeformer_jax.data import preprocessing as preprocessing_lib
from cascadeformer_jax.evaluate import anomaly
from cascadeformer_jax.evaluate import inference
from cascadeformer_jax.evaluate.forward import ClassifierForward

BAD_FRAME_POLICIES = ('refuse', 'skip')
GAP_POLICIES = ('refuse', 'fill')
# The Penn window when the model stores no length buckets.
PENN_FALLBACK_WINDOW = 64


class BadFrameError(ValueError):
  """A frame that cannot enter the window (under ``bad_frames='refuse'``)."""


class FrameGapError(ValueError):
  """Frames missing in the stream (under ``gaps='refuse'``)."""


def default_window(preprocessing: dict[str, Any]) -> int:
  """The window of a model (see the module docstring): its frame count; Penn Action: its first length bucket."""
  data = preprocessing['data']
  if data['layout'] != 'penn':
    return int(preprocessing['input_shape'][0])
  buckets = tuple(data['penn'].get('length_buckets', ()))
  return min(int(buckets[0]) if buckets else PENN_FALLBACK_WINDOW, int(data['max_frames']))


@dataclasses.dataclass(frozen=True)
class Prediction:
  """One emission: the window's first and last frame index, how many frames it held, and the classifier output."""

  t: int
  first_t: int
  frames: int
  logits: np.ndarray  # (K,) float32
  probabilities: np.ndarray  # (K,) float64
  class_names: tuple[str, ...]
  latency_s: float  # the push that emitted: frame checks, transform, forward

  def top_k(self, k: int) -> list[tuple[str, float]]:
    order = np.argsort(-self.probabilities, kind='stable')[:max(1, min(k, len(self.class_names)))]
    return [(self.class_names[c], float(self.probabilities[c])) for c in order]


def _model_parts(model: Any) -> tuple[Any, Any, dict[str, Any], list[str]]:
  """(model config, params, preprocessing, class names) of a Classifier, a Predictor or a model source."""
  if isinstance(model, (str, os.PathLike)):
    model = inference.Predictor.load(os.fspath(model))
  if isinstance(model, inference.Predictor):
    return model.model_config, model.params, model.preprocessing, list(model.class_names)
  preprocessing = getattr(model, 'preprocessing', None)
  if preprocessing is None:
    raise ValueError('this model does not store its preprocessing (converted before model directories kept it): '
                     'load it with its config (predict --config=..., or cfx.load_classifier(..., config=...) on a '
                     'model directory that stores it)')
  names = preprocessing.get('class_names')
  if not names:
    from cascadeformer_jax.data import sources  # pylint: disable=g-import-not-at-top

    names = sources.class_names(preprocessing_lib.data_config(preprocessing))
  return model.config, model.params, preprocessing, list(names)


class StreamingClassifier:
  """A classifier fed frame by frame; see the module docstring for the window, the schedule and bad input.

  Args:
    model: a ``cfx.Classifier`` (or ``Predictor``) whose model stores its preprocessing, or a model source
      (model directory, work directory, ``hf:<folder>``).
    stride: emit every ``stride`` frames.
    window: frames per prediction; None = :func:`default_window`.
    layout: the joint layout of the frames when it is not the model's stored one (a name or an explicit
      ``{"joints", "parents"}``); frames are mapped with ``layouts.convert`` (and ``mapping``).
    mapping: ``layouts.convert``'s mapping.
    emit_partial: also emit while the window fills.
    bad_frames: 'refuse' or 'skip'.
    gaps: 'refuse' or 'fill'.
    notice: called with one line for every skipped frame, fill and skipped emission.
  """

  def __init__(self, model: Any, stride: int = 1, window: int | None = None, *, layout: Any = None,
               mapping: Any = None, emit_partial: bool = False, bad_frames: str = 'refuse', gaps: str = 'refuse',
               notice: Callable[[str], None] | None = None):
    self.model_config, self.params, self.preprocessing, names = _model_parts(model)
    self.class_names = tuple(names)
    if bad_frames not in BAD_FRAME_POLICIES:
      raise ValueError(f'bad_frames must be one of {BAD_FRAME_POLICIES}, got {bad_frames!r}')
    if gaps not in GAP_POLICIES:
      raise ValueError(f'gaps must be one of {GAP_POLICIES}, got {gaps!r}')
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
      raise ValueError(f'stride must be a positive integer, got {stride!r}')
    data = self.preprocessing['data']
    window = default_window(self.preprocessing) if window is None else window
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
      raise ValueError(f'window must be a positive number of frames, got {window!r}')
    if data['layout'] == 'penn' and window > int(data['max_frames']):
      raise ValueError(f'window {window}: a Penn Action model takes at most data.max_frames = {data["max_frames"]} '
                       'frames')
    self.stride, self.window = int(stride), int(window)
    self.emit_partial, self.bad_frames, self.gaps = emit_partial, bad_frames, gaps
    self.notice = notice
    self.target_layout = inference.stored_layout(self.preprocessing)
    self.source_layout = layouts.get_layout(layout) if layout is not None else None
    if self.source_layout is not None and self.source_layout.joints == self.target_layout.joints:
      self.source_layout = None
    self.mapping = mapping
    self.persons = int(self.preprocessing['persons'])
    self.frame_shape = preprocessing_lib.raw_frame_shape(self.preprocessing)
    if self.source_layout is not None:  # an impossible mapping is refused here, not at the first frame
      layouts.convert(np.zeros((self.source_layout.num_joints, self.frame_shape[-1]), np.float32),
                      self.source_layout, self.target_layout, mapping=mapping)
    self._forward = ClassifierForward(self.model_config)
    # Every frame is written twice, at slot s and s + window, so that the latest `window` frames are always one
    # contiguous slice.
    self._frames = np.zeros((2 * self.window,) + self.frame_shape, np.float32)
    self._times = np.zeros(2 * self.window, np.int64)
    self.reset()

  def reset(self) -> None:
    """Forgets every frame: the next one starts a new stream (and a new window)."""
    self.count = 0  # frames that entered the window, filled ones included
    self.last_t: int | None = None  # the latest frame index seen, skipped frames included
    self.skipped = 0
    self.filled = 0

  def warm_up(self) -> None:
    """Compiles the forward of a full window now (with a made-up window), so that the first emission does not."""
    clip = np.random.default_rng(0).standard_normal((self.window,) + self.frame_shape).astype(np.float32)
    skeleton, length = preprocessing_lib.prepare_clip(clip, self.preprocessing, 'warm-up window')
    self._run(skeleton, length)

  def _run(self, skeleton: np.ndarray, length: int) -> np.ndarray:
    out = self._forward.batch(self.params, {'skeleton': skeleton[None], 'lengths': np.array([length], np.int32)})
    return np.asarray(out['logits'])[0]

  def _say(self, line: str) -> None:
    if self.notice is not None:
      self.notice(line)

  def _refuse_or_skip(self, message: str) -> None:
    if self.bad_frames == 'refuse':
      raise BadFrameError(message + ' (bad_frames=skip leaves such frames out)')
    self.skipped += 1
    self._say(message + ': skipped')

  def bad_frame(self, message: str) -> None:
    """A frame that could not even be read (``message`` names it and the problem), under the bad-frame policy:
    raises BadFrameError, or skips it; a skipped one takes the next frame index (the frame after it is no gap)."""
    self._refuse_or_skip(message)
    if self.last_t is not None:
      self.last_t += 1

  def _bad(self, t: int, problem: str) -> None:
    self._refuse_or_skip(f'frame {t}: {problem}')

  def _as_frame(self, frame: Any, t: int) -> np.ndarray | None:
    """The frame in the model's stored layout and raw frame shape, or None (and a BadFrameError or a skip)."""
    try:
      x = np.asarray(frame, dtype=np.float32)
    except (TypeError, ValueError):
      self._bad(t, 'not an array of numbers (ragged or non-numeric)')
      return None
    source = self.source_layout or self.target_layout
    coords = self.frame_shape[-1]
    if x.shape == (0,):  # an empty list of persons
      x = np.zeros((0, source.num_joints, coords), np.float32)
    if x.ndim == 2:
      x = x[None]
    if x.ndim != 3 or x.shape[1:] != (source.num_joints, coords):
      self._bad(t, f'shape {x.shape}, expected (joints, coords) or (persons, joints, coords) with '
                f'{source.num_joints} joints ({source.name} layout) and {coords} coordinates')
      return None
    slots = max(self.persons, 1)
    if x.shape[0] > slots:
      self._bad(t, f'{x.shape[0]} persons, the model takes {"one" if slots == 1 else f"at most {slots}"}')
      return None
    if x.shape[0] == 0 and not self.persons:
      self._bad(t, 'no person')
      return None
    if not np.isfinite(x).all():
      bad = int((~np.isfinite(x)).sum())
      self._bad(t, f'{bad} NaN/Inf coordinate{"s" if bad > 1 else ""}')
      return None
    if self.source_layout is not None and len(x):
      x = layouts.convert(x, self.source_layout, self.target_layout, mapping=self.mapping)
    if not self.persons:
      return x[0]
    if x.shape[0] < self.persons:
      x = np.concatenate([x, np.zeros((self.persons - x.shape[0],) + x.shape[1:], np.float32)])
    return x

  def _append(self, frame: np.ndarray, first_t: int, copies: int = 1) -> None:
    """Adds ``copies`` of a frame, with indices first_t, first_t + 1, ...; the window keeps the last of them."""
    skipped = max(0, copies - self.window)
    self.count += skipped
    for i in range(skipped, copies):
      slot = self.count % self.window
      self._frames[slot] = self._frames[slot + self.window] = frame
      self._times[slot] = self._times[slot + self.window] = first_t + i
      self.count += 1

  def _due(self, before: int) -> bool:
    """Whether an emission falls on a frame count in (before, self.count]."""
    low = before if self.emit_partial else max(before, self.window - 1)
    return self.count > low and (self.count - self.window) // self.stride > (low - self.window) // self.stride

  def window_frames(self) -> np.ndarray:
    """The frames of the current window in time order, (frames,) + raw frame shape (a copy)."""
    if self.count >= self.window:
      start = self.count % self.window
      return self._frames[start:start + self.window].copy()
    return self._frames[:self.count].copy()

  def push(self, frame: Any, t: int | None = None) -> Prediction | None:
    """Adds one frame (index ``t``; None = the next one) and returns the prediction when one is due."""
    start = time.perf_counter()
    if t is None:
      t = 0 if self.last_t is None else self.last_t + 1
    t = int(t)
    if self.last_t is not None and t <= self.last_t:
      self._bad(t, f'frame index {t} after {self.last_t}: frame indices must increase')
      return None
    x = self._as_frame(frame, t)
    previous, self.last_t = self.last_t, t
    if x is None:
      return None
    before = self.count
    if previous is not None and t > previous + 1 and self.count:
      missing = t - previous - 1
      span = f'frame {previous + 1}' if missing == 1 else f'frames {previous + 1}-{t - 1}'
      if self.gaps == 'refuse':
        self.last_t = previous
        raise FrameGapError(f'frame {t}: {span} missing after frame {previous} (gaps=fill repeats the last frame)')
      last = self._frames[(self.count - 1) % self.window].copy()
      self._append(last, previous + 1, missing)
      self.filled += missing
      self._say(f'frame {t}: {span} missing: repeated frame {previous}')
    self._append(x, t)
    if not self._due(before):
      return None
    return self._predict(t, start)

  def _predict(self, t: int, start: float) -> Prediction | None:
    clip = self.window_frames()
    first_t = int(self._times[self.count % self.window] if self.count >= self.window else self._times[0])
    try:
      skeleton, length = preprocessing_lib.prepare_clip(clip, self.preprocessing, f'frame {t}: window {first_t}-{t}')
    except ValueError as e:
      if self.bad_frames == 'refuse':
        raise BadFrameError(str(e)) from None
      self._say(f'{e}: no prediction')
      return None
    logits = self._run(skeleton, length)
    probabilities = anomaly.softmax(logits.astype(np.float64)[None])[0]
    return Prediction(t, first_t, len(clip), logits, probabilities, self.class_names, time.perf_counter() - start)


# Frame sources of the command line (cascadeformer_jax/stream.py: the formats are described there).


class FrameRecord(NamedTuple):
  """One frame read from a source: its index (None = the next one), its coordinates (None when unreadable), where
  it came from, and what is wrong with it when it could not be read."""

  t: int | None
  data: Any
  where: str
  problem: str | None = None


def json_frames(lines: TextIO, name: str) -> Iterator[FrameRecord]:
  """One record per non-blank JSON line ``{"t": 17, "persons": [...]}``, read as the lines arrive."""
  for number, line in enumerate(iter(lines.readline, ''), 1):
    if not line.strip():
      continue
    where = f'{name} line {number}'
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      yield FrameRecord(None, None, where, f'invalid JSON ({e.msg})')
      continue
    if not isinstance(record, dict) or 'persons' not in record:
      yield FrameRecord(None, None, where, 'expected an object {"t": <frame index>, "persons": [...]}')
      continue
    t = record.get('t')
    if t is not None and (isinstance(t, bool) or not isinstance(t, int)):
      yield FrameRecord(None, None, where, f'"t" must be an integer frame index, got {t!r}')
      continue
    yield FrameRecord(t, record['persons'], where)


def npy_frames(path: pathlib.Path) -> Iterator[FrameRecord]:
  """The frames of a (T, J, C) or (T, persons, J, C) .npy array, with t = 0, 1, ... (checked before the first)."""
  with path.open('rb') as f:
    if not f.read(6).startswith(b'\x93NUMPY'):
      raise ValueError(f'{path}: not a NumPy .npy file (numpy.save): it does not start with its signature')
  try:
    frames = np.load(path, mmap_mode='r', allow_pickle=False)
  except ValueError as e:
    raise ValueError(f'{path}: cannot read ({e})') from None
  if frames.ndim not in (3, 4) or not len(frames):
    raise ValueError(f'{path}: expected an array of frames (T, J, C) or (T, persons, J, C) with T >= 1, got shape '
                     f'{frames.shape}')
  return (FrameRecord(t, np.asarray(frame), f'{path.name}[{t}]') for t, frame in enumerate(frames))


def _jsonl_file(path: pathlib.Path) -> Iterator[FrameRecord]:
  with path.open() as f:
    yield from json_frames(f, path.name)


def read_frames(source: str, stdin: TextIO) -> Iterator[FrameRecord]:
  """The frames of '-' (JSON lines on ``stdin``), a .jsonl file or a .npy file; the file is checked now."""
  if source == '-':
    return json_frames(stdin, 'stdin')
  path = pathlib.Path(source)
  if not path.is_file():
    raise FileNotFoundError(f'{path}: no such input file')
  suffix = path.suffix.lower()
  if suffix == '.npy':
    return npy_frames(path)
  if suffix == '.jsonl':
    return _jsonl_file(path)
  raise ValueError(f'{path}: unsupported input type {suffix!r} (use .npy, .jsonl, or - for JSON lines on stdin)')


def emission_record(prediction: Prediction, top_k: int) -> dict[str, Any]:
  """The JSON line of one emission."""
  return {'t': prediction.t, 'window': [prediction.first_t, prediction.t],
          'top_k': [{'class': name, 'probability': round(p, 6)} for name, p in prediction.top_k(top_k)],
          'latency_ms': round(prediction.latency_s * 1e3, 3)}


def run(stream: StreamingClassifier, frames: Iterable[FrameRecord], top_k: int, out: TextIO) -> int:
  """Pushes every frame and writes one JSON line per emission to ``out`` (flushed at once); returns how many."""
  emitted = 0
  for frame in frames:
    if frame.problem is not None:
      stream.bad_frame(f'{frame.where}: {frame.problem}')
      continue
    prediction = stream.push(frame.data, frame.t)
    if prediction is not None:
      out.write(json.dumps(emission_record(prediction, top_k)) + '\n')
      out.flush()
      emitted += 1
  return emitted
