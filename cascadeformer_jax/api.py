"""A few-line way to run published or converted CascadeFormer weights.

    import cascadeformer_jax as cfx
    model = cfx.load_classifier('BEST_N_UCLA_1_1')        # published .pt folder or a model directory
    logits = model(clips)                                   # (B, T, J, C) -> (B, K)
    pretrained = cfx.load_pretrained('BEST_N_UCLA_1_1')
    reconstruction = pretrained.reconstruct(masked_clips)   # (B, T, J, C) -> (B, T, J, C)
"""

import dataclasses
import functools
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cascadeformer_jax import checkpoint_io
from cascadeformer_jax import configuration
from cascadeformer_jax.convert.convert import read_published_folder
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models.pretraining import pretraining_module
from cascadeformer_jax.train import partitioning


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
  """A CascadeFormer classifier with its parameters. Call it on clips (B, T, J, C) to get logits (B, K)."""

  config: ModelConfig
  params: Any

  @functools.cached_property
  def _apply(self):
    module = CascadeClassifier(self.config)
    return jax.jit(lambda params, x, frame_mask: module.apply(
        {'params': params}, x, frame_mask=frame_mask, return_intermediates=True),
                   compiler_options=partitioning.inference_compiler_options())

  def intermediates(self, clips: Any, frame_mask: Any = None) -> dict[str, np.ndarray]:
    """t1_features, t2_features, fused (B, T, d); pooled (B, d); logits (B, K)."""
    x = _as_clips(clips, self.config)
    if frame_mask is not None:
      frame_mask = jnp.asarray(frame_mask, bool)
    return {k: np.asarray(v) for k, v in self._apply(self.params, x, frame_mask).items()}

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


def _load(path: str | os.PathLike, kind: str, config: Any, overrides: dict[str, Any]
          ) -> tuple[ModelConfig, Any]:
  not_runtime = sorted(set(overrides) - checkpoint_io.RUNTIME_FIELDS)
  if not_runtime:
    raise ValueError(f'{not_runtime} change the parameter shapes and cannot be overridden at load time; '
                     f'runtime fields are {sorted(checkpoint_io.RUNTIME_FIELDS)}')
  model_config = None if config is None else configuration.model_config(config)
  path = pathlib.Path(path)
  if checkpoint_io.is_model_dir(path):
    model_config, params = checkpoint_io.load_model_dir(path, kind, model_config)
    return model_config.replace(**overrides), params
  model_config, params, _ = read_published_folder(path, model_config, kinds=(kind,))
  if kind not in params:
    raise FileNotFoundError(f'{path}: no files of a {kind} model')
  return model_config.replace(**overrides), jax.tree.map(jnp.asarray, params[kind])


def load_classifier(path: str | os.PathLike, config: Any = None, **overrides) -> Classifier:
  """Loads a classifier from a published ``.pt`` folder or a model directory.

  Args:
    path: the folder.
    config: architecture (ModelConfig, experiment config, or config file path); None = from the model
      directory, or the published model whose sizes match the weights.
    **overrides: runtime ModelConfig fields, e.g. ``cross_attn_heads=4`` for the original Penn/N-UCLA
      evaluation.
  """
  return Classifier(*_load(path, checkpoint_io.CLASSIFIER, config, overrides))


def load_pretrained(path: str | os.PathLike, config: Any = None, **overrides) -> Pretrained:
  """Loads the pretrained T1 + decoder from a published ``.pt`` folder or a model directory."""
  return Pretrained(*_load(path, checkpoint_io.PRETRAINED, config, overrides))
