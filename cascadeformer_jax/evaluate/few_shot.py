"""Few-shot classification on frozen embeddings (NumPy only): support sampling, cosine nearest prototype, protocols.

Procedures (`PROCEDURES`):
* 'prototype' (default): for every run and every class, `shots` support clips are drawn without replacement from
  the class's training clips (a class with fewer clips than shots is an error unless `replace=True`); each class's
  prototype is the mean of its L2-normalised support embeddings; a query gets the class of the prototype with the
  highest cosine similarity (so 1-shot is cosine nearest neighbour). Accuracy over the queries, mean and standard
  deviation (population, ddof 0) over the runs, per shot count.
* 'original_transfer_ucla': the NTU -> N-UCLA evaluation that the original code added after the paper
  (`ntu_60_own/transfer_ucla.py`), reproduced draw for draw. It differs from 'prototype' in four ways:
  1-shot uses `rng.choice(indices)` (one scalar draw per class) and k-shot `rng.choice(indices, k, replace=False)`,
  each shot count with its own generator seeded 42; a class with fewer clips than shots is silently sampled with
  replacement; the k-shot prototype (mean of normalised embeddings) is not normalised again, so queries go to the
  largest dot product, not the largest cosine; the classes are 0 ... max(label). Joint order: the original feeds
  N-UCLA clips that are already in SkateFormer partition order (right arm, left arm, right leg, left leg, torso)
  through a 20 -> 25 joint map written for the native Kinect v1 order, so its NTU-trained model sees limbs at the
  wrong NTU joints. This module only sees embeddings; the clips are mapped before the model
  (`--config.few_shot.mapping`, data/layouts.py: anatomical by default, 'original_partition_order' for the
  original's map).
* NTU RGB+D 120 one-shot protocol (`one_shot_protocol_split`, `evaluate_one_shot_protocol`): the 20 evaluation
  classes with their official exemplars as the only support set (one run, no sampling); queries are all other clips
  of those 20 classes; the other 100 classes are the auxiliary set a model is trained on beforehand.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cascadeformer_jax.evaluate import neighbours

PROCEDURES = ('prototype', 'original_transfer_ucla')
PROCEDURE_DESCRIPTIONS = {'prototype': 'cosine nearest prototype',
                          'original_transfer_ucla': "the original code's NTU -> N-UCLA procedure"}
ORIGINAL_SEED = 42  # transfer_ucla.py's default seed of both evaluations


class FewShotError(ValueError):
  """Bad few-shot input (the message names the class, clip or setting)."""


def l2_normalise(x: np.ndarray) -> np.ndarray:
  """(N, D) -> float32 rows divided by max(norm, 1e-12) (as PyTorch `F.normalize`)."""
  return neighbours.l2_normalise(np.asarray(x, np.float32))


def parse_shots(shots: str | int | Sequence[int]) -> tuple[int, ...]:
  """'1,5' / 5 / (1, 5) -> (1, 5); every shot count must be a positive integer."""
  if isinstance(shots, str):
    parts = [part.strip() for part in shots.split(',') if part.strip()]
    try:
      values = tuple(int(part) for part in parts)
    except ValueError:
      raise FewShotError(f'few_shot.shots={shots!r}: expected comma-separated positive integers, e.g. "1,5"') from None
  elif isinstance(shots, (int, np.integer)):
    values = (int(shots),)
  else:
    values = tuple(int(value) for value in shots)
  if not values or min(values) < 1:
    raise FewShotError(f'few_shot.shots={shots!r}: expected one or more positive integers, e.g. "1,5"')
  return values


def class_indices(labels: np.ndarray, classes: Sequence[int]) -> dict[int, np.ndarray]:
  """{class: ascending indices of `labels` equal to it}; a class without any clip is an error."""
  labels = np.asarray(labels)
  out = {int(c): np.flatnonzero(labels == c) for c in classes}
  empty = [c for c, indices in out.items() if not indices.size]
  if empty:
    raise FewShotError(f'class(es) {empty} have no clip in the support split; few-shot needs at least one per class')
  return out


def sample_support(labels: np.ndarray, shots: int, runs: int, seed: int = 0, classes: Sequence[int] | None = None,
                   replace: bool = False) -> np.ndarray:
  """Draws `shots` support clips per class for each of `runs` runs.

  Args:
    labels: (N,) labels of the clips to draw from (the training split).
    shots: clips per class.
    runs: number of independent draws.
    seed: seed of the NumPy generator (one generator for all runs, classes in order).
    classes: the classes to draw for (default: every label present, ascending).
    replace: sample with replacement; needed when a class has fewer clips than `shots`.

  Returns:
    (runs, C, shots) int64 indices into `labels`, classes in the order of `classes`.

  Raises:
    FewShotError: a class has no clip, or fewer clips than shots while `replace` is False.
  """
  if runs < 1:
    raise FewShotError(f'few_shot.runs={runs}: must be >= 1')
  classes = np.unique(labels).tolist() if classes is None else [int(c) for c in classes]
  by_class = class_indices(labels, classes)
  if not replace:
    short = {c: len(indices) for c, indices in by_class.items() if len(indices) < shots}
    if short:
      details = ', '.join(f'class {c}: {n}' for c, n in list(short.items())[:5])
      raise FewShotError(f'{shots}-shot: {len(short)} class(es) have fewer training clips than {shots} shots '
                         f'({details}{", ..." if len(short) > 5 else ""}); lower the shots or sample with '
                         'replacement (few_shot.replace=True)')
  rng = np.random.default_rng(seed)
  out = np.empty((runs, len(classes), shots), np.int64)
  for run in range(runs):
    for k, c in enumerate(classes):
      out[run, k] = rng.choice(by_class[c], size=shots, replace=replace)
  return out


def prototypes(embeddings: np.ndarray, support: np.ndarray, normalise: bool = True) -> np.ndarray:
  """Class prototypes from support clips.

  Args:
    embeddings: (N, D) embeddings of the clips `support` indexes.
    support: (C, k) indices, one row per class.
    normalise: L2-normalise the mean (cosine prototypes); the original's k-shot evaluation does not.

  Returns:
    (C, D) float32: the mean of the L2-normalised support embeddings of each class (normalised again when asked).
  """
  means = l2_normalise(embeddings)[np.asarray(support)].mean(axis=1)
  return l2_normalise(means) if normalise else means.astype(np.float32)


def nearest_prototype(queries: np.ndarray, class_prototypes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(argmax over classes, (Q, C) similarities) of L2-normalised queries against the given prototypes.

  With normalised prototypes the similarities are cosines; the first class wins ties.
  """
  similarities = l2_normalise(queries) @ np.asarray(class_prototypes, np.float32).T
  return np.argmax(similarities, axis=1), similarities


def _summary(accuracies: Sequence[float], **extra: Any) -> dict[str, Any]:
  values = np.asarray(accuracies, np.float64)
  return {'mean': float(values.mean()), 'std': float(values.std()), 'runs': len(values),
          'accuracies': [float(v) for v in values], **extra}


def evaluate(support_embeddings: np.ndarray, support_labels: np.ndarray, query_embeddings: np.ndarray,
             query_labels: np.ndarray, shots: str | int | Sequence[int] = (1, 5), runs: int = 10, seed: int = 0,
             replace: bool = False, classes: Sequence[int] | None = None,
             procedure: str = 'prototype') -> dict[str, dict[str, Any]]:
  """Few-shot accuracy per shot count.

  Args:
    support_embeddings, support_labels: (N_s, D), (N_s,) of the split supports are drawn from (training split).
    query_embeddings, query_labels: (N_q, D), (N_q,) of the clips to classify (test split).
    shots: shot counts, e.g. '1,5'.
    runs: draws per shot count.
    seed: generator seed ('prototype': one generator per shot count, seeded `seed`; the original procedure always
      uses 42).
    replace: 'prototype' only: allow sampling with replacement for classes with fewer clips than shots.
    classes: 'prototype' only: the candidate classes (default: the labels of the support split).
    procedure: one of `PROCEDURES`.

  Returns:
    {str(shots): {'mean', 'std', 'runs', 'accuracies'}}.
  """
  shot_counts = parse_shots(shots)
  if procedure == 'original_transfer_ucla':
    return {str(k): original_transfer_ucla(support_embeddings, support_labels, query_embeddings, query_labels, k,
                                           runs) for k in shot_counts}
  if procedure != 'prototype':
    raise FewShotError(f'few_shot procedure {procedure!r}: expected one of {PROCEDURES}')
  support_labels = np.asarray(support_labels)
  query_labels = np.asarray(query_labels)
  classes = np.unique(support_labels).tolist() if classes is None else [int(c) for c in classes]
  unknown = sorted(set(np.unique(query_labels).tolist()) - set(classes))
  if unknown:
    raise FewShotError(f'query class(es) {unknown[:10]} have no support clips (support classes: {len(classes)})')
  class_array = np.asarray(classes)
  out = {}
  for k in shot_counts:
    support = sample_support(support_labels, k, runs, seed, classes, replace)
    accuracies = []
    for run_support in support:
      predicted, _ = nearest_prototype(query_embeddings, prototypes(support_embeddings, run_support))
      accuracies.append(float(np.mean(class_array[predicted] == query_labels)))
    out[str(k)] = _summary(accuracies, shots=k)
  return out


def original_transfer_ucla(train_embeddings: np.ndarray, train_labels: np.ndarray, test_embeddings: np.ndarray,
                           test_labels: np.ndarray, shots: int, runs: int = 10,
                           seed: int = ORIGINAL_SEED) -> dict[str, Any]:
  """The original code's `oneshot_nn_eval` (shots = 1) or `kshot_proto_eval` (shots > 1), exactly.

  Returns:
    {'mean', 'std', 'runs', 'accuracies', 'shots'} (population std over runs, as `np.std`).
  """
  train_labels = np.asarray(train_labels)
  test_labels = np.asarray(test_labels)
  num_classes = int(max(train_labels.max(), test_labels.max())) + 1
  train = l2_normalise(train_embeddings)
  test = l2_normalise(test_embeddings)
  by_class = {}
  for c in range(num_classes):
    by_class[c] = np.flatnonzero(train_labels == c)
    if not by_class[c].size:
      raise FewShotError(f'no training clip of class {c} (the original procedure uses classes 0 ... max label)')
  rng = np.random.default_rng(seed)
  class_labels = np.arange(num_classes)
  accuracies = []
  for _ in range(runs):
    if shots == 1:
      support = train[[rng.choice(by_class[c]) for c in range(num_classes)]]
    else:
      support = np.stack([
          train[rng.choice(by_class[c], size=shots, replace=len(by_class[c]) < shots)].mean(axis=0)
          for c in range(num_classes)])
    predicted = class_labels[np.argmax(test @ support.T, axis=1)]
    accuracies.append(float(np.mean(predicted == test_labels)))
  return _summary(accuracies, shots=shots, procedure='original_transfer_ucla')


def check_exemplars(sample_names: Sequence[str], protocol: Mapping[str, Sequence[Any]]) -> None:
  """Raises FewShotError when an exemplar of the protocol is not among `sample_names`."""
  present = set(sample_names)
  exemplars = [str(name) for name in protocol['exemplars']]
  absent = [name for name in exemplars if name not in present]
  if absent:
    raise FewShotError(f'one-shot protocol: exemplar(s) {absent[:5]} ({len(absent)} of {len(exemplars)}) are not '
                       f'among the {len(present)} clips read; the protocol needs all of them')


def one_shot_protocol_split(sample_names: Sequence[str], labels: np.ndarray,
                            protocol: Mapping[str, Sequence[Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Support and query clips of the NTU RGB+D 120 one-shot protocol.

  Args:
    sample_names: (N,) names of the clips (e.g. both splits of a built ntu_rgbd120 config).
    labels: (N,) their 0-based labels.
    protocol: {'evaluation_classes': 1-based action ids (or 'evaluation_labels': 0-based), 'exemplars': one sample
      name per evaluation class, in the same order}.

  Returns:
    (support indices (20,), support labels (20,), query indices): the exemplars, and every other clip whose label is
    an evaluation class.

  Raises:
    FewShotError: an exemplar is not among the clips, or its label is not its evaluation class.
  """
  if 'evaluation_labels' in protocol:
    evaluation = [int(label) for label in protocol['evaluation_labels']]
  else:
    evaluation = [int(action) - 1 for action in protocol['evaluation_classes']]
  exemplars = [str(name) for name in protocol['exemplars']]
  if len(exemplars) != len(evaluation):
    raise FewShotError(f'one-shot protocol: {len(evaluation)} evaluation classes but {len(exemplars)} exemplars')
  names = [name.decode() if isinstance(name, bytes) else str(name) for name in sample_names]
  labels = np.asarray(labels)
  check_exemplars(names, protocol)
  position = {name: i for i, name in enumerate(names)}
  support = np.array([position[name] for name in exemplars], np.int64)
  wrong = [(name, int(labels[i]), c) for name, i, c in zip(exemplars, support, evaluation) if labels[i] != c]
  if wrong:
    name, label, expected = wrong[0]
    raise FewShotError(f'one-shot protocol: exemplar {name} has label {label}, expected {expected}')
  is_query = np.isin(labels, evaluation)
  is_query[support] = False
  return support, np.asarray(evaluation, np.int64), np.flatnonzero(is_query)


def evaluate_one_shot_protocol(embeddings: np.ndarray, labels: np.ndarray, sample_names: Sequence[str],
                               protocol: Mapping[str, Sequence[Any]]) -> dict[str, dict[str, Any]]:
  """Accuracy of cosine nearest exemplar over the protocol's queries (one run: the support set is fixed).

  Returns:
    {'1': {'mean', 'std' (0), 'runs' (1), 'accuracies', 'shots', 'protocol', 'num_queries', 'num_classes'}}.
  """
  support, support_labels, queries = one_shot_protocol_split(sample_names, labels, protocol)
  predicted, _ = nearest_prototype(np.asarray(embeddings)[queries], prototypes(embeddings, support[:, None]))
  accuracy = float(np.mean(support_labels[predicted] == np.asarray(labels)[queries]))
  return {'1': _summary([accuracy], shots=1, protocol='ntu120_one_shot', num_queries=int(len(queries)),
                        num_classes=int(len(support)))}


def markdown_section(results: Mapping[str, Any]) -> str:
  """The report.md section of a few-shot run (`results` as few_shot_evaluation.evaluate_few_shot writes
  few_shot.json)."""
  if results.get('protocol') == 'ntu120_one_shot':
    how = (f'the NTU RGB+D 120 one-shot protocol: {results["num_classes"]} evaluation classes, their official '
           f'exemplars as the support set, {results["num_queries"]} query clips of those classes')
  else:
    how = (f'{PROCEDURE_DESCRIPTIONS[results["procedure"]]}, support clips drawn per class from the '
           f'`{results["support_split"]}` split '
           f'({results["runs"]} runs, seed {results["seed"]}), queries = the `{results["query_split"]}` split '
           f'({results["num_queries"]} clips, {results["num_classes"]} classes)')
  lines = [f'Model: `{results["model"]}`; embedding: `{results["embedding"]}`; {how}.', '',
           '| shots | accuracy (mean ± std over runs) | runs |', '|---|---|---|']
  for shots, entry in results['shots'].items():
    lines.append(f'| {shots} | {100 * entry["mean"]:.2f} ± {100 * entry["std"]:.2f} % | {entry["runs"]} |')
  return '\n'.join(lines) + '\n'
