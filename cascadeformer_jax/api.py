"""A few-line way to run published, converted or trained CascadeFormer weights.

    import cascadeformer_jax as cfx
    model = cfx.load_classifier('BEST_N_UCLA_1_1')        # published .pt folder, model directory or work directory
    logits = model(clips)                                   # preprocessed (B, T, J, C) -> (B, K)
    logits = model.predict_raw(raw_clips)                   # raw clips in the stored layout -> (B, K)
    model.class_names                                       # the classes of the logits
    pretrained = cfx.load_pretrained('BEST_N_UCLA_1_1')
    reconstruction = pretrained.reconstruct(masked_clips)   # (B, T, J, C) -> (B, T, J, C)
"""

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.config import configuration
from cascadeformer_jax.checkpoints import model_sources
from cascadeformer_jax.data import preprocessing as preprocessing_lib
from cascadeformer_jax.data import sources
from cascadeformer_jax.data import transforms
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.evaluate.forward import ClassifierForward
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models import batch_frame_mask
from cascadeformer_jax.models.pretraining import pretraining_module


def _as_clips(clips: Any, config: ModelConfig) -> jax.Array:
  clips = np.asarray(clips, dtype=np.float32)
  if clips.ndim == 3:
    clips = clips[None]
  expected = (config.num_joints, config.coords)
  if clips.ndim != 4 or clips.shape[2:] != expected:
    raise ValueError(f'clips must have shape (B, T, {expected[0]}, {expected[1]}) or (T, {expected[0]}, '
                     f'{expected[1]}), got {clips.shape}')
  if clips.shape[1] == 0:
    raise ValueError('clips have no frames')
  if not np.all(np.isfinite(clips)):
    raise ValueError('clips contain NaN or infinite coordinates')
  return jnp.asarray(clips)


@dataclasses.dataclass(frozen=True)
class Classifier:
  """A CascadeFormer classifier with its parameters. Call it on preprocessed clips (B, T, J, C) to get logits
  (B, K); :meth:`predict_raw` takes raw clips and applies the model's stored test-time preprocessing first."""

  config: ModelConfig
  params: Any
  preprocessing: dict[str, Any] | None = None  # data/preprocessing.py; None when the model does not store it

  @property
  def class_names(self) -> list[str] | None:
    return None if self.preprocessing is None else self.preprocessing.get('class_names')

  def prepare(self, clips: Any) -> tuple[np.ndarray, np.ndarray]:
    """Raw clips in the model's stored layout ((T, ...) or a list of them, lengths may differ) -> the model inputs
    (B, T', J, C') as evaluation prepares them (zero-padded to the longest) and their real frame counts (B,)."""
    if self.preprocessing is None:
      raise ValueError('this model does not store its preprocessing (converted before model directories kept '
                       'it): prepare the clips yourself, or load it with config=<the config it was trained with>')
    if isinstance(clips, np.ndarray) and clips.ndim == 2 + len(preprocessing_lib.raw_frame_shape(self.preprocessing)):
      clips = list(clips)
    elif not isinstance(clips, (list, tuple)):
      clips = [clips]
    prepared = [preprocessing_lib.prepare_clip(clip, self.preprocessing, f'clip {i}') for i, clip in enumerate(clips)]
    frames = max(len(inputs) for inputs, _ in prepared)
    inputs = np.stack([transforms.pad_time(inputs, frames) for inputs, _ in prepared])
    return inputs, np.array([length for _, length in prepared], np.int32)

  def predict_raw(self, clips: Any) -> np.ndarray:
    """Raw clips in the model's stored layout -> logits (B, K), with the stored test-time preprocessing."""
    inputs, lengths = self.prepare(clips)
    return self(inputs, batch_frame_mask({'skeleton': inputs, 'lengths': lengths}, self.config.padding_aware))

  @functools.cached_property
  def _forward(self) -> ClassifierForward:
    return ClassifierForward(self.config)

  def intermediates(self, clips: Any, frame_mask: Any = None) -> dict[str, np.ndarray]:
    """t1_features, t2_features, fused (B, T, d); pooled (B, d); logits (B, K)."""
    return self._forward.intermediates(self.params, _as_clips(clips, self.config), frame_mask)

  def __call__(self, clips: Any, frame_mask: Any = None) -> np.ndarray:
    return self.intermediates(clips, frame_mask)['logits']

  def predict_proba(self, clips: Any, frame_mask: Any = None) -> np.ndarray:
    return np.asarray(jax.nn.softmax(self(clips, frame_mask), axis=-1))


@dataclasses.dataclass(frozen=True)
class Pretrained:
  """A pretrained T1 with its pretraining head (a reconstruction decoder unless trained otherwise)."""

  config: ModelConfig
  params: Any

  @functools.cached_property
  def _module(self):
    return pretraining_module(self.config)

  @functools.cached_property
  def _reconstruct(self):
    return jax.jit(lambda params, x: self._module.apply({'params': params}, x),
                   compiler_options=partitioning.inference_compiler_options())

  @functools.cached_property
  def _encode(self):
    return jax.jit(lambda params, x: self._module.apply({'params': params}, x, method='encode'),
                   compiler_options=partitioning.inference_compiler_options())

  def reconstruct(self, clips: Any) -> np.ndarray:
    """(B, T, J, C) (masked slots set to 0) -> reconstruction (B, T, J, C)."""
    if self.config.decoder == 'features':
      raise ValueError('this T1 was pretrained by feature prediction: it has no reconstruction decoder; '
                       'use encode()')
    return np.asarray(self._reconstruct(self.params, _as_clips(clips, self.config)))

  def encode(self, clips: Any) -> np.ndarray:
    """(B, T, J, C) -> T1 features (B, T, d)."""
    return np.asarray(self._encode(self.params, _as_clips(clips, self.config)))


def _load(source: str | os.PathLike, kind: str, config: Any,
          overrides: dict[str, Any]) -> model_sources.LoadedModel:
  if isinstance(config, (str, os.PathLike)):
    config = configuration.load_config_file(config)
  model_config = None if config is None else configuration.model_config(config)
  loaded = model_sources.load(source, (kind,), model_config, overrides=overrides)
  if loaded.preprocessing is None and isinstance(config, ml_collections.ConfigDict) and 'data' in config:
    # A model that does not store its preprocessing: the experiment config's.
    configuration.resolve_dataset(config, announce=False)
    loaded = dataclasses.replace(loaded, preprocessing=preprocessing_lib.describe(
        config.data, sources.class_names(config.data)))
  return loaded


def load_classifier(source: str | os.PathLike, config: Any = None, **overrides) -> Classifier:
  """Loads a classifier from a model directory, a training work directory, a published ``.pt`` folder or
  ``hf:<folder>``.

  Args:
    source: where the model is (see cascadeformer_jax/checkpoints/model_sources.py).
    config: architecture (ModelConfig, experiment config, or config file path); None = the stored one, or the
      published model whose sizes match the weights.
    **overrides: runtime ModelConfig fields, e.g. ``cross_attn_heads=4`` for the original Penn/N-UCLA
      evaluation.
  """
  loaded = _load(source, checkpoint_io.CLASSIFIER, config, overrides)
  return Classifier(loaded.config, loaded.params, loaded.preprocessing)


def load_pretrained(source: str | os.PathLike, config: Any = None, **overrides) -> Pretrained:
  """Loads the pretrained T1 + its pretraining head from the same sources as ``load_classifier``."""
  loaded = _load(source, checkpoint_io.PRETRAINED, config, overrides)
  return Pretrained(loaded.config, loaded.params)
