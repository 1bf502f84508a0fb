"""Where a model comes from: the one resolver of every place a user can point at.

  model directory          ``model.json`` + Orbax ``classifier/`` and/or ``pretrained/`` (what convert and training
                           write)
  training work directory  its selected classifier, else its final classifier, else its pretrained T1
                           (:meth:`cascadeformer_jax.run.workdir.Workdir.model_dirs`)
  published folder         the ``<Prefix>_*.pt`` files of the published checkpoints, converted in memory
  ``hf:<folder>``          a folder of the published Hugging Face repository, downloaded through the Hub's cache
                           and converted once into a cached model directory (convert/hub.py)

The API (``cfx.load_classifier``), evaluation (``--config.init_from``), ``predict`` and ``convert`` all load through
:func:`load`.
"""

import dataclasses
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.run import workdir as workdir_lib
from cascadeformer_jax.checkpoints import hub
from cascadeformer_jax.checkpoints import published
from cascadeformer_jax.checkpoints.convert import published_preprocessing
from cascadeformer_jax.checkpoints.convert import read_published_folder
from cascadeformer_jax.models import ModelConfig

HF_PREFIX = 'hf:'


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  """A model's kind ('classifier' or 'pretrained'), architecture, parameters, where they were found, and the
  preprocessing of its inputs (data/preprocessing.py; None when unknown)."""

  kind: str
  config: ModelConfig
  params: Any
  location: str
  preprocessing: dict[str, Any] | None = None


def published_folder(source: str) -> pathlib.Path:
  """The local published folder that ``hf:<folder>`` (downloaded, see convert/hub.py) or a plain path names."""
  return hub.download_published_folder(source)


def _model_dirs(path: pathlib.Path) -> list[pathlib.Path]:
  """The model directories a path stands for: itself, or those of a work directory."""
  if checkpoint_io.is_model_dir(path):
    return [path]
  return [candidate for candidate in workdir_lib.Workdir(path).model_dirs() if checkpoint_io.is_model_dir(candidate)]


def _check_overrides(overrides: dict[str, Any]) -> None:
  not_runtime = sorted(set(overrides) - checkpoint_io.RUNTIME_FIELDS)
  if not_runtime:
    raise ValueError(f'{not_runtime} change the parameter shapes and cannot be overridden at load time; '
                     f'runtime fields are {sorted(checkpoint_io.RUNTIME_FIELDS)}')


def load(source: str | os.PathLike, kinds: tuple[str, ...] = (checkpoint_io.CLASSIFIER,),
         config: ModelConfig | None = None, *, overrides: dict[str, Any] | None = None,
         any_pretraining_head: bool = False) -> LoadedModel:
  """Loads the first of ``kinds`` that ``source`` holds (the order of ``kinds`` wins over the order of places).

  Args:
    source: a model directory, a training work directory, a published ``.pt`` folder or ``hf:<folder>``.
    kinds: acceptable model kinds in order of preference, among 'classifier' and 'pretrained'.
    config: the architecture to build; None = the stored one (model directories) or the published model whose
      sizes match the weights. A stored model must have the same parameter shapes; runtime fields may differ.
    overrides: runtime ModelConfig fields applied after loading (e.g. ``cross_attn_heads=4``).
    any_pretraining_head: load a pretrained model whatever its pretraining head is (callers that use T1 only).

  Raises:
    FileNotFoundError: ``source`` does not exist.
    checkpoint_io.ModelDirError / convert.CheckpointError: it holds none of ``kinds`` or does not fit ``config``.
  """
  overrides = dict(overrides or {})
  _check_overrides(overrides)
  text = os.fspath(source)
  if text.startswith(HF_PREFIX) and not pathlib.Path(text[len(HF_PREFIX):]).is_dir() and jax.process_count() == 1:
    # Converted once, then loaded from the cached model directory.
    directory = hub.published_model_dir(text, config)
    metadata = checkpoint_io.read_model_dir_metadata(directory)
    for kind in kinds:
      if kind in metadata['contents']:
        model_config, params = checkpoint_io.load_model_dir(directory, kind, config, any_pretraining_head)
        preprocessing = checkpoint_io.stored_preprocessing(metadata)
        if preprocessing is None:  # Cached by a version that did not store it: the published dataset's.
          preprocessing = published_preprocessing(published.scan_folder(published_folder(text)))
        return LoadedModel(kind, model_config.replace(**overrides), params, text, preprocessing)
    raise checkpoint_io.ModelDirError(f'{text}: holds no {" or ".join(kinds)} model')
  path = published_folder(text)
  if not path.exists():
    raise FileNotFoundError(f'{text}: no such model directory, work directory or published checkpoint folder')
  if not text.startswith(HF_PREFIX):
    model_dirs = _model_dirs(path)
    for kind in kinds:
      for directory in model_dirs:
        metadata = checkpoint_io.read_model_dir_metadata(directory)
        if kind in metadata['contents']:
          model_config, params = checkpoint_io.load_model_dir(directory, kind, config, any_pretraining_head)
          return LoadedModel(kind, model_config.replace(**overrides), params, str(directory),
                             checkpoint_io.stored_preprocessing(metadata))
    if model_dirs or (path / workdir_lib.CONFIG_FILE).is_file():
      where = ', '.join(str(d.relative_to(path)) if d != path else str(d) for d in model_dirs) or 'none finished'
      raise checkpoint_io.ModelDirError(
          f'{path}: no {" or ".join(kinds)} model there (model directories: {where})')
  model_config, params, folder = read_published_folder(path, config, kinds=kinds)
  kind = next(kind for kind in kinds if kind in params)
  return LoadedModel(kind, model_config.replace(**overrides), jax.tree.map(jnp.asarray, params[kind]),
                     str(folder.path), published_preprocessing(folder))
