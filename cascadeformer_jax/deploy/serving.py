"""The function a deployment runs, and its inputs and outputs.

    skeleton  float32 (batch, frames, J, C)  clips prepared by `data.preprocessing.prepare_clip`, zero-padded to a
                                             common frame count
    lengths   int32 (batch,)                 the real frames of each clip (padding-aware models only)
    logits    float32 (batch, K)             the output

``batch`` is always dynamic. ``frames`` is dynamic (at most the positional table's length) for padding-aware
models and for datasets whose prepared clips differ in length (Penn Action's length buckets); otherwise it is the
model's frame count, so that a clip that was not prepared is refused instead of classified.
"""

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import ModelConfig

SKELETON = 'skeleton'
LENGTHS = 'lengths'
LOGITS = 'logits'
BATCH = 'batch'
FRAMES = 'frames'


@dataclasses.dataclass(frozen=True)
class Signature:
  """Inputs and outputs of an exported classifier. ``frames`` None: any frame count up to ``max_frames``."""

  frames: int | None
  max_frames: int
  joints: int
  coords: int
  num_classes: int
  takes_lengths: bool

  @property
  def input_names(self) -> tuple[str, ...]:
    return (SKELETON, LENGTHS) if self.takes_lengths else (SKELETON,)

  def describe(self) -> dict[str, Any]:
    """Names, dtypes and shapes (symbolic dimensions by name), as written to export.json."""
    frames = FRAMES if self.frames is None else self.frames
    inputs = [{'name': SKELETON, 'dtype': 'float32', 'shape': [BATCH, frames, self.joints, self.coords]}]
    if self.takes_lengths:
      inputs.append({'name': LENGTHS, 'dtype': 'int32', 'shape': [BATCH]})
    return {'inputs': inputs, 'outputs': [{'name': LOGITS, 'dtype': 'float32', 'shape': [BATCH, self.num_classes]}],
            'max_frames': self.max_frames}

  def abstract_inputs(self) -> tuple[jax.ShapeDtypeStruct, ...]:
    """The inputs with symbolic dimensions (one scope, so that both inputs share ``batch``)."""
    if self.frames is None:
      batch, frames = jax.export.symbolic_shape(f'{BATCH}, {FRAMES}', constraints=(f'{FRAMES} <= {self.max_frames}',))
    else:
      (batch,), frames = jax.export.symbolic_shape(BATCH), self.frames
    skeleton = jax.ShapeDtypeStruct((batch, frames, self.joints, self.coords), jnp.float32)
    if not self.takes_lengths:
      return (skeleton,)
    return skeleton, jax.ShapeDtypeStruct((batch,), jnp.int32)

  def sample_inputs(self, batch: int, frames: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random clips (and decreasing real lengths, the first clip unpadded) of ``frames`` frames."""
    rng = np.random.default_rng(seed)
    inputs = {SKELETON: rng.standard_normal((batch, frames, self.joints, self.coords)).astype(np.float32)}
    if self.takes_lengths:
      inputs[LENGTHS] = np.maximum(1, frames - (frames * np.arange(batch)) // max(batch, 2)).astype(np.int32)
    return inputs


def fixed_frames(preprocessing: Mapping[str, Any]) -> int | None:
  """The frame count of every prepared clip, or None where it depends on the clip (Penn Action's buckets)."""
  data = preprocessing['data']
  if data['layout'] == 'penn' and data['penn']['padding'] != 'fixed':
    return None
  return int(preprocessing['input_shape'][0])


def signature(model_config: ModelConfig, preprocessing: Mapping[str, Any]) -> Signature:
  frames = fixed_frames(preprocessing)
  if model_config.padding_aware:
    frames = None
  max_frames = model_config.pos_len if frames is None else frames
  return Signature(frames, max_frames, model_config.num_joints, model_config.coords, model_config.num_classes,
                   model_config.padding_aware)


def serving_function(model_config: ModelConfig, params: Any) -> Callable[..., jax.Array]:
  """(skeleton[, lengths]) -> logits, with the parameters as constants and the evaluation forward's semantics:
  padding-aware models keep the frames beyond each clip's length out of attention and pooling."""
  model = CascadeClassifier(model_config)
  params = jax.tree.map(jnp.asarray, params)  # NumPy parameters cannot be sliced by a symbolic frame count

  def classify(skeleton: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
    frame_mask = None
    if model_config.padding_aware:
      # iota, not arange + indexing, so that a symbolic frame count traces to plain ops.
      frame_mask = jax.lax.broadcasted_iota(jnp.int32, skeleton.shape[:2], 1) < jnp.expand_dims(lengths, 1)
    return model.apply({'params': params}, skeleton, frame_mask=frame_mask).astype(jnp.float32)

  if model_config.padding_aware:
    return classify
  return lambda skeleton: classify(skeleton)
