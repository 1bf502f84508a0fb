"""The one classifier forward pass, used by evaluation, predict and the API.

Padding-aware models (``ModelConfig.padding_aware``: masked-mean pooling or attention padding masks) take their
frame mask from the batch's ``lengths``; other models ignore padding, as the original code did. Evaluation,
``predict --split``, ``predict --input`` and ``cfx.load_classifier`` therefore agree on every model.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cascadeformer_jax.run import partitioning
from cascadeformer_jax.models import batch_frame_mask
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import ModelConfig

# What a batch forward returns: logits (B, K) and the frame-pooled features (B, d).
BATCH_OUTPUTS = ('logits', 'pooled')


class ClassifierForward:
  """A classifier's deterministic forward, compiled once per input shape.

  ``batch(params, batch)`` maps a batch dict (``skeleton`` (B, T, J, C), optional ``lengths`` (B,)) to logits and
  pooled features; with a mesh, the batch is sharded on 'data' and the parameters replicated.
  ``intermediates(params, clips, frame_mask)`` returns every intermediate for an explicit (B, T) frame mask.
  """

  def __init__(self, config: ModelConfig, mesh: jax.sharding.Mesh | None = None):
    self.config = config
    module = CascadeClassifier(config)

    def batch_forward(params: Any, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
      skeleton = batch['skeleton']
      mask = batch_frame_mask(batch, config.padding_aware)
      out = module.apply({'params': params}, skeleton, frame_mask=mask, return_intermediates=True)
      return {name: out[name].astype(jnp.float32) for name in BATCH_OUTPUTS}

    def intermediates(params: Any, clips: jax.Array, frame_mask: jax.Array | None) -> dict[str, jax.Array]:
      return module.apply({'params': params}, clips, frame_mask=frame_mask, return_intermediates=True)

    options = partitioning.inference_compiler_options()
    if mesh is None:
      self._batch = jax.jit(batch_forward, compiler_options=options)
    else:
      self._batch = jax.jit(batch_forward, in_shardings=(partitioning.replicated(mesh),
                                                         partitioning.batch_sharded(mesh)),
                            out_shardings=partitioning.batch_sharded(mesh), compiler_options=options)
    self._intermediates = jax.jit(intermediates, compiler_options=options)

  def batch(self, params: Any, batch: dict[str, Any]) -> dict[str, jax.Array]:
    return self._batch(params, batch)

  def intermediates(self, params: Any, clips: Any, frame_mask: Any = None) -> dict[str, np.ndarray]:
    """t1_features, t2_features, fused (B, T, d); pooled (B, d); logits (B, K)."""
    if frame_mask is not None:
      frame_mask = jnp.asarray(frame_mask, bool)
    return {name: np.asarray(value) for name, value in self._intermediates(params, clips, frame_mask).items()}
