"""Evaluator objects: each is built from the experiment config, owns its data and ``run(params) -> metrics``. The
stage loop asks them at the end of an epoch; the test evaluation, the evaluation protocols (evaluate/protocols.py),
the probe and few-shot evaluation are built from them. Their model forwards come from the shared cache of
evaluate/forward.py, so evaluators of the same model and input shapes compile once.
"""

from collections.abc import Callable, Iterable
from typing import Any

import jax
import ml_collections
import numpy as np

from cascadeformer_jax import data as data_lib
from cascadeformer_jax import objectives
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.evaluate import forward as forward_lib
from cascadeformer_jax.evaluate import metrics as metrics_lib
from cascadeformer_jax.evaluate import predictions
from cascadeformer_jax.evaluate import representation
from cascadeformer_jax.evaluate.forward import ClassifierForward
from cascadeformer_jax.models import batch_frame_mask
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models.pretraining import pretraining_module


# What EmbeddingExtractor can return: the classifier's intermediates (those with a time axis are frame-pooled).
EMBEDDINGS = forward_lib.EMBEDDINGS


class _EvalPasses:
  """One evaluation iterator per evaluator, built on first use and rewound (`reset()`) for every later pass, so
  that repeated evaluations reuse its background threads and worker processes."""

  def __init__(self, data_config: ml_collections.ConfigDict, batch_size: int, split: str):
    self.data_config, self.batch_size, self.split = data_config, batch_size, split
    self._iterator = None

  def __call__(self) -> data_lib.DataIterator:
    if self._iterator is None:
      self._iterator = data_lib.make_eval_iterator(self.data_config, self.batch_size, split=self.split)
    else:
      self._iterator.reset()
    return self._iterator


class ClassifierEvaluator:
  """Top-1/top-5 accuracy, loss and mean class accuracy of a classifier on one split."""

  def __init__(self, model_config: ModelConfig, data_config: ml_collections.ConfigDict, split: str,
               batch_size: int, mesh: jax.sharding.Mesh):
    partitioning.check_batch_size(batch_size, mesh)
    self.model_config, self.data_config, self.split = model_config, data_config, split
    self.batch_size, self.mesh = batch_size, mesh
    self.forward = ClassifierForward(model_config, mesh)
    self._passes = _EvalPasses(data_config, batch_size, split)

  def predict(self, params: Any) -> dict[str, np.ndarray]:
    """logits (N, K), pooled (N, d), label (N,) and stored example index (N,) of every clip of the split."""
    iterator = self._passes()
    gathered = predictions.gather_predictions(
        lambda batch, index: tuple(self.forward.batch(params, batch)[k] for k in ('logits', 'pooled')),
        iterator, self.mesh)
    logits, pooled = gathered['outputs']
    return {'logits': logits, 'pooled': pooled, 'label': gathered['label'], 'index': gathered['index']}

  def run(self, params: Any) -> dict[str, float]:
    predicted = self.predict(params)
    return metrics_lib.classification_metrics(predicted['logits'], predicted['label'])


class MultiClipEvaluator:
  """NTU-style data: class probabilities averaged over three windows (start, centre, end) of every clip."""

  POSITIONS = (0.0, 0.5, 1.0)

  def __init__(self, model_config: ModelConfig, data_config: ml_collections.ConfigDict, split: str,
               batch_size: int, mesh: jax.sharding.Mesh, window_fraction: float):
    if data_config.layout != 'ntu':
      raise ValueError(f'the multi_clip protocol needs an NTU-style dataset, not {data_config.name}')
    self.windows = []
    for position in self.POSITIONS:
      window_config = data_config.copy_and_resolve_references()
      window_config.ntu.test_crop_fraction = window_fraction
      window_config.ntu.test_window_position = position
      self.windows.append(ClassifierEvaluator(model_config, window_config, split, batch_size, mesh))

  def run(self, params: Any) -> dict[str, float]:
    probabilities, labels = [], None
    for window in self.windows:
      predicted = window.predict(params)
      probabilities.append(jax.nn.softmax(predicted['logits'].astype(np.float64), axis=-1))
      labels = predicted['label']
    return metrics_lib.classification_metrics(np.log(np.mean(probabilities, axis=0)), labels)


class PretrainEvaluator:
  """The pretraining objective's validation error (masked MSE, or feature MSE) with a fixed mask per batch.

  The mask of the i-th evaluation batch is drawn from (seed, i), so the error is comparable between epochs.
  """

  def __init__(self, model_config: ModelConfig, stage: ml_collections.ConfigDict,
               data_config: ml_collections.ConfigDict, split: str, batch_size: int, mesh: jax.sharding.Mesh,
               seed: int):
    partitioning.check_batch_size(batch_size, mesh)
    self.data_config, self.split, self.batch_size, self.mesh = data_config, split, batch_size, mesh
    objective = objectives.make_objective(pretraining_module(model_config), stage)
    self.metric = objective.metric
    padding_aware = model_config.padding_aware

    def errors(params: Any, batch: dict[str, jax.Array], index: jax.Array) -> tuple[jax.Array, jax.Array]:
      key = jax.random.fold_in(jax.random.key(seed), index)
      valid = batch_frame_mask(batch, padding_aware)
      return objective.errors(params, batch['skeleton'], valid, key)

    # Not in the shared cache: the function depends on the objective's settings and the seed, and a run builds one.
    replicated, sharded = partitioning.replicated(mesh), partitioning.batch_sharded(mesh)
    self._errors = jax.jit(errors, in_shardings=(replicated, sharded, replicated), out_shardings=sharded,
                           compiler_options=partitioning.inference_compiler_options())
    self._passes = _EvalPasses(data_config, batch_size, split)

  def run(self, params: Any) -> dict[str, float]:
    iterator = self._passes()
    gathered = predictions.gather_predictions(lambda batch, index: self._errors(params, batch, index), iterator,
                                              self.mesh)
    squared, count = gathered['outputs']
    return {self.metric: float(np.sum(squared) / max(np.sum(count), 1.0)), 'count': int(len(squared))}


# numpy (B, T, J, C) -> (B, T, J', C'): maps preprocessed clips into the joint layout of a model trained elsewhere.
ClipMap = Callable[[np.ndarray], np.ndarray]


def _mapped(batches: Iterable[dict[str, np.ndarray]], clip_map: ClipMap | None) -> Iterable[dict[str, np.ndarray]]:
  if clip_map is None:
    return batches
  return (dict(batch, skeleton=np.asarray(clip_map(batch['skeleton']), np.float32)) for batch in batches)


class _PerClipVectors:
  """Runs a cached compiled forward, (params, batch) -> (B, d), over every clip of a split."""

  def __init__(self, outputs: str, model_config: ModelConfig, data_config: ml_collections.ConfigDict,
               batch_size: int, mesh: jax.sharding.Mesh, clip_map: ClipMap | None):
    partitioning.check_batch_size(batch_size, mesh)
    self.outputs, self.model_config = outputs, model_config
    self.data_config, self.batch_size, self.mesh, self.clip_map = data_config, batch_size, mesh, clip_map

  def run(self, params: Any, split: str) -> dict[str, np.ndarray]:
    """features (N, d) float32, label (N,) and stored example index (N,) of the split's clips."""
    iterator = data_lib.make_eval_iterator(self.data_config, self.batch_size, split=split)
    vectors = forward_lib.FORWARDS.get(self.outputs, self.model_config, self.mesh)
    gathered = predictions.gather_predictions(lambda batch, index: vectors(params, batch),
                                              _mapped(iterator, self.clip_map), self.mesh)
    return {'features': gathered['outputs'][0], 'label': gathered['label'], 'index': gathered['index']}


class FeatureExtractor(_PerClipVectors):
  """Frame-pooled T1 features (N, d) and labels (N,) of a split, with the evaluation preprocessing (and
  `clip_map` applied to the clips, when given)."""

  def __init__(self, model_config: ModelConfig, data_config: ml_collections.ConfigDict, batch_size: int,
               mesh: jax.sharding.Mesh, clip_map: ClipMap | None = None):
    super().__init__(forward_lib.T1_POOLED, model_config, data_config, batch_size, mesh, clip_map)


class EmbeddingExtractor(_PerClipVectors):
  """One embedding per clip of a split from a classifier: a named intermediate (`EMBEDDINGS`), pooled over frames
  when it has a time axis, as float32 (N, d), with labels and stored indices; `clip_map` as FeatureExtractor."""

  def __init__(self, model_config: ModelConfig, data_config: ml_collections.ConfigDict, batch_size: int,
               mesh: jax.sharding.Mesh, embedding: str = 'pooled', clip_map: ClipMap | None = None):
    super().__init__(forward_lib.embedding_outputs(embedding), model_config, data_config, batch_size, mesh,
                     clip_map)


class ProbeEvaluator:
  """Linear-probe and kNN accuracy of a frozen T1: features of the training split -> the evaluation split."""

  def __init__(self, model_config: ModelConfig, data_config: ml_collections.ConfigDict,
               probe_config: ml_collections.ConfigDict, batch_size: int, mesh: jax.sharding.Mesh):
    self.data_config, self.probe_config = data_config, probe_config
    self.extractor = FeatureExtractor(model_config, data_config, batch_size, mesh)

  def run(self, t1_params: Any) -> dict[str, Any]:
    train = self.extractor.run(t1_params, self.data_config.train_split)
    test = self.extractor.run(t1_params, self.data_config.eval_split)
    return representation.evaluate_representation((train['features'], train['label']),
                                                   (test['features'], test['label']),
                                                   self.data_config.num_classes, self.probe_config)
