"""Multi-stream ensembles (NumPy): per-clip score files, checks that streams belong together, softmax fusion.

Every test evaluation of a work dir saves `scores.npz` (and `scores_holdout.npz` for the hold-out split when the
run has one) with
  logits      (N, K) float32   the classifier's logits
  labels      (N,)   int64     true labels
  sample_ids  (N,)   str       the dataset's clip names (unique)
  split       ()     str       'test', 'holdout', ...
  dataset     ()     str       e.g. 'ntu60_xsub'
  data_identity ()   str       what the data was (`data.identity`: a folder's content fingerprint, a built dataset's
                               builder version and split sizes); '' or missing in files written before it was recorded
An ensemble fuses the streams' softmax probabilities with non-negative weights, sum_s w_s softmax(logits_s) (CTR-GCN's
`ensemble.py` and pyskl fuse the same way; pyskl's 4-stream weights are 2:2:1:1 for joint, bone, joint motion, bone
motion), after checking that all streams scored the same clips of the same split of the same data. Clips are
matched by sample id, so the streams may list them in different orders. `search_weights` picks weights on hold-out
scores; it refuses test scores, so weights are never tuned on the test set, and keeps equal weights on ties and on
a hold-out too small to tell the streams apart.
"""

from collections.abc import Sequence
import dataclasses
import itertools
import os
import pathlib
import tempfile
from typing import Any

import numpy as np

from cascadeformer_jax.run import workdir as workdir_lib
from cascadeformer_jax.evaluate import metrics as metrics_lib

FIELDS = ('logits', 'labels', 'sample_ids', 'split', 'dataset')
OPTIONAL_FIELDS = ('data_identity',)
SEARCH_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)
# Fewer hold-out clips than this cannot tell streams apart: search_weights keeps equal weights.
MIN_SEARCH_CLIPS = 50


class EnsembleError(ValueError):
  """Score files that cannot be fused, or bad weights (the message names the file, stream or value)."""


@dataclasses.dataclass(frozen=True)
class StreamScores:
  """One stream's scores: logits (N, K), labels (N,), sample_ids (N,) str, split, dataset, its file and the data's
  identity ('' when unknown)."""
  logits: np.ndarray
  labels: np.ndarray
  sample_ids: np.ndarray
  split: str
  dataset: str
  path: str = ''
  data_identity: str = ''

  @property
  def name(self) -> str:
    return self.path or '<scores>'


def scores_file(workdir: str | os.PathLike, split: str = 'test') -> pathlib.Path:
  """Where a work dir keeps the scores of `split`: scores.npz (test) or scores_<split>.npz."""
  return workdir_lib.Workdir(workdir).scores_file(split)


def save_scores(path: str | os.PathLike, logits: np.ndarray, labels: np.ndarray, sample_ids: Sequence[str | bytes],
                split: str, dataset: str, data_identity: str = '') -> pathlib.Path:
  """Writes a score file atomically (a temporary file renamed into place); returns its path."""
  path = pathlib.Path(path)
  logits = np.asarray(logits, np.float32)
  labels = np.asarray(labels, np.int64)
  ids = np.asarray([i.decode() if isinstance(i, bytes) else str(i) for i in sample_ids])
  if logits.ndim != 2 or labels.shape != (len(logits),) or ids.shape != (len(logits),):
    raise ValueError(f'scores for {path}: logits {logits.shape}, labels {labels.shape} and sample_ids {ids.shape} '
                     'must be (N, K), (N,) and (N,)')
  path.parent.mkdir(parents=True, exist_ok=True)
  handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix='.tmp')
  try:
    with os.fdopen(handle, 'wb') as f:
      np.savez(f, logits=logits, labels=labels, sample_ids=ids, split=np.asarray(split), dataset=np.asarray(dataset),
               data_identity=np.asarray(data_identity))
    os.replace(temporary, path)
  except BaseException:
    pathlib.Path(temporary).unlink(missing_ok=True)
    raise
  return path


def load_scores(path: str | os.PathLike) -> StreamScores:
  """Reads and checks a score file (no pickles)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise EnsembleError(f'{path}: no such score file')
  try:
    with np.load(path, allow_pickle=False) as data:
      missing = [field for field in FIELDS if field not in data.files]
      if missing:
        raise EnsembleError(f'{path}: missing {", ".join(missing)} (a score file holds {", ".join(FIELDS)})')
      arrays = {field: data[field] for field in FIELDS + OPTIONAL_FIELDS if field in data.files}
  except EnsembleError:
    raise
  except (OSError, ValueError, EOFError) as e:
    raise EnsembleError(f'{path}: not a readable .npz score file ({type(e).__name__}: {e})') from e
  logits, labels, ids = arrays['logits'], arrays['labels'], arrays['sample_ids']
  if logits.ndim != 2 or not np.issubdtype(logits.dtype, np.floating):
    raise EnsembleError(f'{path}: logits should be a (N, K) float array, got {logits.dtype} {logits.shape}')
  if labels.shape != (len(logits),) or not np.issubdtype(labels.dtype, np.integer):
    raise EnsembleError(f'{path}: labels should be ({len(logits)},) integers, got {labels.dtype} {labels.shape}')
  if ids.shape != (len(logits),) or ids.dtype.kind != 'U':
    raise EnsembleError(f'{path}: sample_ids should be ({len(logits)},) strings, got {ids.dtype} {ids.shape}')
  if len(np.unique(ids)) != len(ids):
    values, counts = np.unique(ids, return_counts=True)
    raise EnsembleError(f'{path}: sample_ids repeat (e.g. {str(values[counts > 1][0])!r}); every clip must be '
                        'scored once')
  if not np.all(np.isfinite(logits)):
    raise EnsembleError(f'{path}: logits hold NaN or inf')
  return StreamScores(logits=logits.astype(np.float32), labels=labels.astype(np.int64), sample_ids=ids,
                      split=str(arrays['split']), dataset=str(arrays['dataset']), path=str(path),
                      data_identity=str(arrays.get('data_identity', '')))


def load_workdir_scores(workdir: str | os.PathLike, split: str = 'test') -> StreamScores:
  """The scores a work dir saved for `split`; a work dir without them is an error saying how to make them."""
  path = scores_file(workdir, split)
  if not pathlib.Path(workdir).is_dir():
    raise EnsembleError(f'{workdir}: no such work dir')
  if not path.is_file():
    what = 'test evaluation' if split == 'test' else f'{split} evaluation (a run with data.holdout_fraction > 0)'
    raise EnsembleError(f'{workdir}: no {path.name}; the work dir has no saved {split} scores (run its {what} '
                        'first, e.g. --config.mode=eval)')
  return load_scores(path)


def align(streams: Sequence[StreamScores]) -> list[StreamScores]:
  """Checks that the streams scored the same clips of the same split and dataset; returns them in stream 0's order.

  Raises:
    EnsembleError: naming the first stream that differs from stream 0 and how (dataset, split, data identity where
      both record it, classes, clips, labels).
  """
  if not streams:
    raise EnsembleError('no streams to fuse')
  first = streams[0]
  aligned = [first]
  for stream in streams[1:]:
    for field in ('dataset', 'split'):
      if getattr(stream, field) != getattr(first, field):
        raise EnsembleError(f'{stream.name} scored {field} {getattr(stream, field)!r} but {first.name} scored '
                            f'{getattr(first, field)!r}; streams must score the same {field}')
    if stream.data_identity and first.data_identity and stream.data_identity != first.data_identity:
      raise EnsembleError(f'{stream.name} scored other data than {first.name}: data identity '
                          f'{_short(stream.data_identity)} vs {_short(first.data_identity)} (the same clip names may '
                          'hold other clips); streams must score the same data')
    if stream.logits.shape[1] != first.logits.shape[1]:
      raise EnsembleError(f'{stream.name} has {stream.logits.shape[1]} classes but {first.name} has '
                          f'{first.logits.shape[1]}')
    ours, theirs = set(first.sample_ids.tolist()), set(stream.sample_ids.tolist())
    if ours != theirs:
      lacking, extra = sorted(ours - theirs), sorted(theirs - ours)
      parts = []
      if lacking:
        parts.append(f'lacks {len(lacking)} clip(s) of {first.name} (e.g. {lacking[0]})')
      if extra:
        parts.append(f'has {len(extra)} clip(s) that {first.name} lacks (e.g. {extra[0]})')
      raise EnsembleError(f'{stream.name} scored other clips: it {" and ".join(parts)} ({len(theirs)} vs '
                          f'{len(ours)} clips); streams must score the same clips')
    position = {sample_id: i for i, sample_id in enumerate(stream.sample_ids.tolist())}
    order = np.array([position[sample_id] for sample_id in first.sample_ids.tolist()], np.int64)
    labels = stream.labels[order]
    differ = np.flatnonzero(labels != first.labels)
    if differ.size:
      i = int(differ[0])
      raise EnsembleError(f'{stream.name} labels clip {first.sample_ids[i]} as {labels[i]} but {first.name} as '
                          f'{first.labels[i]} ({differ.size} clips differ)')
    aligned.append(dataclasses.replace(stream, logits=stream.logits[order], labels=labels,
                                       sample_ids=first.sample_ids))
  return aligned


def _short(identity: str) -> str:
  """An identity for a message: a content fingerprint's first 12 hex digits."""
  return identity[:len('sha256:') + 12] if identity.startswith('sha256:') else repr(identity)


def check_weights(weights: Sequence[float], num_streams: int) -> np.ndarray:
  """(S,) float64 weights; their number must match the streams, none negative, not all zero."""
  weights = np.asarray(weights, np.float64)
  if weights.shape != (num_streams,):
    raise EnsembleError(f'{weights.size} weight(s) for {num_streams} stream(s); give one weight per work dir')
  if not np.all(np.isfinite(weights)) or np.any(weights < 0):
    raise EnsembleError(f'weights must be finite and non-negative, got {weights.tolist()}')
  if not np.any(weights > 0):
    raise EnsembleError('all weights are 0; at least one stream must count')
  return weights


def softmax(logits: np.ndarray) -> np.ndarray:
  """Row-wise softmax of (N, K) logits, float64."""
  shifted = np.asarray(logits, np.float64) - np.max(logits, axis=-1, keepdims=True)
  exp = np.exp(shifted)
  return exp / exp.sum(axis=-1, keepdims=True)


def fuse(streams: Sequence[StreamScores], weights: Sequence[float]) -> np.ndarray:
  """(N, K) sum over streams of weight x softmax(logits); streams must be aligned (`align`)."""
  weights = check_weights(weights, len(streams))
  return sum(w * softmax(stream.logits) for w, stream in zip(weights, streams))


def accuracy_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float | int]:
  """top1, top5, mean_class_accuracy (mean over classes present in `labels`) and count of (N, K) scores."""
  labels = np.asarray(labels, np.int64)
  predictions = np.argmax(scores, axis=-1)
  matrix = metrics_lib.confusion_matrix(labels, predictions, scores.shape[-1])
  support = matrix.sum(axis=1)
  present = support > 0
  return {'top1': float(np.mean(predictions == labels)), 'top5': metrics_lib.top_k_accuracy(scores, labels, 5),
          'mean_class_accuracy': float(np.mean(np.diag(matrix)[present] / support[present])),
          'count': int(len(labels))}


def ensemble_results(streams: Sequence[StreamScores], weights: Sequence[float],
                     names: Sequence[str] | None = None) -> dict[str, Any]:
  """Each stream's own metrics and the fused metrics, side by side.

  Returns:
    {'dataset', 'split', 'count', 'weights', 'streams': [{'name', 'file', 'weight', top1, top5, mean_class_accuracy,
    count}], 'ensemble': {top1, top5, mean_class_accuracy, count}}.
  """
  streams = align(streams)
  weights = check_weights(weights, len(streams))
  names = list(names) if names is not None else [stream.name for stream in streams]
  rows = [{'name': name, 'file': stream.path, 'weight': float(w), **accuracy_metrics(stream.logits, stream.labels)}
          for name, stream, w in zip(names, streams, weights)]
  return {'dataset': streams[0].dataset, 'split': streams[0].split, 'count': int(len(streams[0].labels)),
          'weights': [float(w) for w in weights], 'streams': rows,
          'ensemble': accuracy_metrics(fuse(streams, weights), streams[0].labels)}


def search_weights(streams: Sequence[StreamScores], grid: Sequence[float] = SEARCH_GRID
                   ) -> tuple[list[float], float, str | None]:
  """Weights from `grid`^S with the best fused top-1 on hold-out scores.

  Weight vectors that are multiples of each other fuse identically, so only the first of them in grid order is
  tried. Ties are broken towards equal weights: among the best vectors, the one nearest to equal (in proportions);
  equal weights themselves when they are among the best. A hold-out too small to tell the streams apart (fewer than
  `MIN_SEARCH_CLIPS` clips, or every stream within one correct clip of the others) gives equal weights and a
  warning, since a search on it would only pick noise.

  Returns:
    (weights, hold-out top-1 of the fused scores, a warning or None).

  Raises:
    EnsembleError: the streams are test scores (weights are never chosen on the test split) or do not align.
  """
  streams = align(streams)
  split = streams[0].split
  if split == 'test':
    raise EnsembleError(f'search_weights got {split!r} scores ({streams[0].name}); weights are chosen on hold-out '
                        'scores only, never on the test split')
  probabilities = [softmax(stream.logits) for stream in streams]
  labels = streams[0].labels

  def top1(weights: np.ndarray) -> float:
    fused = sum(w * p for w, p in zip(weights, probabilities) if w)
    return float(np.mean(np.argmax(fused, axis=-1) == labels))

  equal = np.ones(len(streams))
  correct = [int(np.sum(np.argmax(p, axis=-1) == labels)) for p in probabilities]
  reasons = []
  if len(labels) < MIN_SEARCH_CLIPS:
    reasons.append(f'{len(labels)} clips, under {MIN_SEARCH_CLIPS}')
  if max(correct) - min(correct) <= 1:
    right = f'{min(correct)}-{max(correct)}' if max(correct) > min(correct) else f'{min(correct)}'
    reasons.append(f'every stream gets {right} of {len(labels)} right')
  if reasons:
    warning = f'the {split} split cannot tell the streams apart ({"; ".join(reasons)}): equal weights'
    return equal.tolist(), top1(equal), warning

  best, best_key, seen = None, None, set()
  for candidate in itertools.product(grid, repeat=len(streams)):
    weights = np.asarray(candidate, np.float64)
    if not np.any(weights > 0):
      continue
    scale = tuple(np.round(weights / weights.max(), 9))
    if scale in seen:
      continue
    seen.add(scale)
    accuracy = top1(weights)
    # Higher accuracy first, then nearer to equal proportions; the grid order keeps the first of exact ties.
    key = (-accuracy, float(np.sum((weights / weights.sum() - 1 / len(streams)) ** 2)))
    if best_key is None or key < best_key:
      best, best_key = weights, key
  if best_key[1] < 1e-12:  # equal proportions: shown as the default weights
    best = equal
  return best.tolist(), -best_key[0], None


def _percent(value: float) -> str:
  return f'{100 * value:.2f} %'


def markdown_report(results: dict[str, Any]) -> str:
  """A markdown table: each stream and the ensemble, top-1 / top-5 / mean class accuracy."""
  lines = [f'# Ensemble: {results["dataset"]}, {results["split"]} split ({results["count"]} clips)', '']
  if results.get('weight_search'):
    search = results['weight_search']
    if search.get('warning'):
      lines += [f'Warning: {search["warning"]} (fused top-1 {_percent(search["top1"])}).', '']
    else:
      lines += [f'Weights chosen on the {search["split"]} split ({search["count"]} clips, fused top-1 '
                f'{_percent(search["top1"])}) from the grid {search["grid"]}; ties go to the weights nearest to '
                'equal.', '']
  lines += ['| stream | weight | top-1 | top-5 | mean class acc. |', '|---|---|---|---|---|']
  for row in results['streams']:
    lines.append(f'| {row["name"]} | {row["weight"]:g} | {_percent(row["top1"])} | {_percent(row["top5"])} | '
                 f'{_percent(row["mean_class_accuracy"])} |')
  fused = results['ensemble']
  lines.append(f'| **ensemble** | | **{_percent(fused["top1"])}** | {_percent(fused["top5"])} | '
               f'{_percent(fused["mean_class_accuracy"])} |')
  return '\n'.join(lines) + '\n'
