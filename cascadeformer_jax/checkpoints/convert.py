"""Published PyTorch folder -> model directory (Orbax parameters + architecture)."""

import hashlib
import os
import pathlib
from typing import Any

import jax.numpy as jnp

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.checkpoints import published
from cascadeformer_jax.checkpoints.torch_pickle import CheckpointError
from cascadeformer_jax.data import config as data_config_lib
from cascadeformer_jax.data import preprocessing as preprocessing_lib
from cascadeformer_jax.data import sources
from cascadeformer_jax.models import presets
from cascadeformer_jax.models.config import ModelConfig


def read_published_folder(checkpoint_dir: str | os.PathLike, config: ModelConfig | None = None,
                          kinds: tuple[str, ...] = checkpoint_io.KINDS
                          ) -> tuple[ModelConfig, dict[str, Any], published.PublishedFolder]:
  """Converts the files of a published folder in memory.

  Args:
    checkpoint_dir: folder with the ``<Prefix>_*.pt`` files.
    config: the architecture; None = the published model whose sizes match the weights.
    kinds: which models to convert, among 'classifier' and 'pretrained'; kinds whose files are absent are
      skipped (at least one must be present).

  Returns:
    (config, {kind: params}, folder).
  """
  folder = published.scan_folder(checkpoint_dir)
  if config is None:
    config = published.published_config(folder)
  params = {}
  if checkpoint_io.CLASSIFIER in kinds and folder.has_classifier:
    params[checkpoint_io.CLASSIFIER] = published.classifier_params(folder, config)
  if checkpoint_io.PRETRAINED in kinds and folder.has_pretrained:
    params[checkpoint_io.PRETRAINED] = published.pretrained_params(folder, config)
  if not params:
    wanted = ' and '.join(kinds)
    raise CheckpointError(f'{folder.path}: holds the files of no {wanted} model '
                          f'(found {sorted(p.name for p in folder.files.values())})')
  return config, params, folder


def published_preprocessing(folder: published.PublishedFolder) -> dict[str, Any] | None:
  """The preprocessing of the published model in ``folder`` (its dataset's evaluation settings); None when the
  weights match no published model. NTU60 cross-subject and cross-view models share it."""
  info = folder.t1_info()
  match = presets.match_published(info.form, info.joint_features, info.d_model, info.num_layers)
  if match is None:
    return None
  data_config = data_config_lib.default_data_config(*match)
  return preprocessing_lib.describe(data_config, sources.class_names(data_config))


def convert_folder(checkpoint_dir: str | os.PathLike, output_dir: str | os.PathLike,
                   config: ModelConfig | None = None, preprocessing: dict[str, Any] | None = None) -> pathlib.Path:
  """Converts a published folder into a model directory with the classifier and the pretrained T1.

  The two models are converted and written one after the other; tensors are read through memory maps, so the
  memory needed is about one copy of the larger model. ``preprocessing`` (data/preprocessing.py) defaults to the
  evaluation settings of the published model's dataset.
  """
  folder = published.scan_folder(checkpoint_dir)
  if config is None:
    config = published.published_config(folder)
  params = {}
  if folder.has_classifier:
    params[checkpoint_io.CLASSIFIER] = lambda: _to_jax_in_place(published.classifier_params(folder, config))
  if folder.has_pretrained:
    params[checkpoint_io.PRETRAINED] = lambda: _to_jax_in_place(published.pretrained_params(folder, config))
  source = {
      'checkpoint_dir': str(folder.path.absolute()),
      'files': {role: {'name': path.name, 'bytes': path.stat().st_size, 'sha256': file_sha256(path)}
                for role, path in sorted(folder.files.items())},
  }
  if preprocessing is None:
    preprocessing = published_preprocessing(folder)
  return checkpoint_io.save_model_dir(output_dir, config, params, source, preprocessing)


def _to_jax_in_place(tree: dict) -> dict:
  """Replaces each NumPy leaf by a JAX array as it goes, so the two copies of a model never coexist."""
  for key, value in tree.items():
    tree[key] = _to_jax_in_place(value) if isinstance(value, dict) else jnp.asarray(value)
  return tree


def file_sha256(path: pathlib.Path) -> str:
  """Hex SHA-256 of a file, read in 1 MiB blocks."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()
