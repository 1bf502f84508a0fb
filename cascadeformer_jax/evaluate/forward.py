"""The compiled forward passes of evaluation, predict and the API, and the one cache that holds them.

Every evaluator, protocol, multi-clip window, feature extractor, ``Predictor`` and ``cfx.load_classifier`` asks
``FORWARDS`` for its function instead of compiling its own: one jitted function per (what it computes, model config,
mesh), and below it jax.jit's one executable per input shape. Two evaluations of the same model on the same shapes
(the test and hold-out splits, the three windows of the multi-clip protocol, predict on a split after the
evaluation) therefore compile once, and compute with the very same executable.

Padding-aware models (``ModelConfig.padding_aware``: masked-mean pooling or attention padding masks) take their
frame mask from the batch's ``lengths``; other models ignore padding, as the original code did. Evaluation,
``predict --split``, ``predict --input`` and ``cfx.load_classifier`` therefore agree on every model.
"""

import collections
import dataclasses
import functools
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cascadeformer_jax.run import partitioning
from cascadeformer_jax.models import batch_frame_mask
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models import pool_frames
from cascadeformer_jax.models import T1

# What a classifier batch forward returns: logits (B, K) and the frame-pooled features (B, d).
BATCH_OUTPUTS = ('logits', 'pooled')
# The classifier's intermediates an embedding forward can return (those with a time axis are frame-pooled).
EMBEDDINGS = ('pooled', 't1_features', 't2_features', 'fused', 'logits')

# What a cached forward computes (`ForwardKey.outputs`):
CLASSIFIER = 'classifier'  # (params, batch) -> {'logits', 'pooled'} float32
INTERMEDIATES = 'intermediates'  # (params, clips, frame_mask) -> every intermediate; never on a mesh
T1_POOLED = 't1_pooled'  # (params of T1, batch) -> frame-pooled T1 features (B, d) float32
EMBEDDING_PREFIX = 'embedding:'  # + a name of EMBEDDINGS: (params, batch) -> that embedding (B, d) float32


def embedding_outputs(embedding: str) -> str:
  """The `ForwardKey.outputs` of the forward that returns `embedding` (a name of EMBEDDINGS), checked."""
  if embedding not in EMBEDDINGS:
    raise ValueError(f'embedding {embedding!r} is not one of {EMBEDDINGS}')
  return EMBEDDING_PREFIX + embedding


def _classifier_batch(config: ModelConfig) -> Callable[..., Any]:
  module = CascadeClassifier(config)

  def batch_forward(params: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    mask = batch_frame_mask(batch, config.padding_aware)
    out = module.apply({'params': params}, batch['skeleton'], frame_mask=mask, return_intermediates=True)
    return {name: out[name].astype(jnp.float32) for name in BATCH_OUTPUTS}

  return batch_forward


def _classifier_intermediates(config: ModelConfig) -> Callable[..., Any]:
  module = CascadeClassifier(config)

  def intermediates(params: Any, clips: jax.Array, frame_mask: jax.Array | None) -> dict[str, jax.Array]:
    return module.apply({'params': params}, clips, frame_mask=frame_mask, return_intermediates=True)

  return intermediates


def _t1_pooled(config: ModelConfig) -> Callable[..., Any]:
  model = T1(config)

  def features(params: Any, batch: dict[str, jax.Array]) -> jax.Array:
    mask = batch_frame_mask(batch, config.padding_aware)
    return pool_frames(model.apply({'params': params}, batch['skeleton'], frame_mask=mask), mask,
                       config.pooling).astype(jnp.float32)

  return features


def _embedding(config: ModelConfig, embedding: str) -> Callable[..., Any]:
  module = CascadeClassifier(config)

  def embed(params: Any, batch: dict[str, jax.Array]) -> jax.Array:
    mask = batch_frame_mask(batch, config.padding_aware)
    value = module.apply({'params': params}, batch['skeleton'], frame_mask=mask,
                         return_intermediates=True)[embedding]
    if value.ndim == 3:
      value = pool_frames(value, mask, config.pooling)
    return value.astype(jnp.float32)

  return embed


def _function(outputs: str, config: ModelConfig) -> Callable[..., Any]:
  if outputs == CLASSIFIER:
    return _classifier_batch(config)
  if outputs == INTERMEDIATES:
    return _classifier_intermediates(config)
  if outputs == T1_POOLED:
    return _t1_pooled(config)
  if outputs.startswith(EMBEDDING_PREFIX) and outputs[len(EMBEDDING_PREFIX):] in EMBEDDINGS:
    return _embedding(config, outputs[len(EMBEDDING_PREFIX):])
  raise ValueError(f'unknown forward outputs {outputs!r}')


@dataclasses.dataclass(frozen=True)
class ForwardKey:
  """What identifies a compiled forward, apart from the input shapes that jax.jit tells apart itself."""

  outputs: str
  model_config: ModelConfig
  mesh: jax.sharding.Mesh | None
  # Settings that change the compiled code but are not part of jax.jit's own cache key.
  backend: str
  disable_most_optimizations: bool


class ForwardCache:
  """Jitted forwards by `ForwardKey`, the least recently used dropped beyond `capacity`.

  With a mesh, the parameters are replicated and the batch (and the outputs) sharded on 'data'. ``traces(key)``
  counts how often a forward was traced, once per new input shape (or argument structure).
  """

  def __init__(self, capacity: int = 32):
    self.capacity = capacity
    self._functions: collections.OrderedDict[ForwardKey, Callable[..., Any]] = collections.OrderedDict()
    self._traces: collections.Counter[ForwardKey] = collections.Counter()
    self._lock = threading.Lock()

  @staticmethod
  def key(outputs: str, model_config: ModelConfig, mesh: jax.sharding.Mesh | None = None) -> ForwardKey:
    return ForwardKey(outputs, model_config, mesh, jax.default_backend(),
                      bool(jax.config.read('jax_disable_most_optimizations')))

  def get(self, outputs: str, model_config: ModelConfig, mesh: jax.sharding.Mesh | None = None) -> Callable[..., Any]:
    """The compiled forward `outputs` of a model (see the constants above), built on first use."""
    key = self.key(outputs, model_config, mesh)
    with self._lock:
      function = self._functions.get(key)
      if function is None:
        function = self._functions[key] = self._compile(key)
        while len(self._functions) > self.capacity:
          self._functions.popitem(last=False)
      else:
        self._functions.move_to_end(key)
      return function

  def _compile(self, key: ForwardKey) -> Callable[..., Any]:
    function = _function(key.outputs, key.model_config)

    @functools.wraps(function)
    def traced(*args):
      self._traces[key] += 1  # Runs while jax.jit traces, not when the executable runs.
      return function(*args)

    options = partitioning.inference_compiler_options()
    if key.mesh is None:
      return jax.jit(traced, compiler_options=options)
    if key.outputs == INTERMEDIATES:
      raise ValueError('the intermediates forward takes explicit frame masks and runs without a mesh')
    return jax.jit(traced, in_shardings=(partitioning.replicated(key.mesh), partitioning.batch_sharded(key.mesh)),
                   out_shardings=partitioning.batch_sharded(key.mesh), compiler_options=options)

  def traces(self, outputs: str, model_config: ModelConfig, mesh: jax.sharding.Mesh | None = None) -> int:
    """How often the forward (under the current compilation settings) has been traced."""
    return self._traces[self.key(outputs, model_config, mesh)]

  def __len__(self) -> int:
    return len(self._functions)

  def clear(self) -> None:
    with self._lock:
      self._functions.clear()
      self._traces.clear()


# The cache every evaluation, predict and API call shares.
FORWARDS = ForwardCache()


class ClassifierForward:
  """A classifier's deterministic forward (compiled once per model, mesh and input shape, in `FORWARDS`).

  ``batch(params, batch)`` maps a batch dict (``skeleton`` (B, T, J, C), optional ``lengths`` (B,)) to logits and
  pooled features; with a mesh, the batch is sharded on 'data' and the parameters replicated.
  ``intermediates(params, clips, frame_mask)`` returns every intermediate for an explicit (B, T) frame mask.
  """

  def __init__(self, config: ModelConfig, mesh: jax.sharding.Mesh | None = None):
    self.config, self.mesh = config, mesh

  def batch(self, params: Any, batch: dict[str, Any]) -> dict[str, jax.Array]:
    # Looked up at every call: the compilation settings in force when it first runs are part of the key.
    return FORWARDS.get(CLASSIFIER, self.config, self.mesh)(params, batch)

  def intermediates(self, params: Any, clips: Any, frame_mask: Any = None) -> dict[str, np.ndarray]:
    """t1_features, t2_features, fused (B, T, d); pooled (B, d); logits (B, K)."""
    if frame_mask is not None:
      frame_mask = jnp.asarray(frame_mask, bool)
    forward = FORWARDS.get(INTERMEDIATES, self.config)
    return {name: np.asarray(value) for name, value in forward(params, clips, frame_mask).items()}
