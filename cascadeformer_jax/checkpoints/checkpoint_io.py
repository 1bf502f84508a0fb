"""Model directories: parameters (Orbax) plus the architecture (JSON) that they belong to.

A model directory is what conversion writes and what users share::

    <dir>/model.json     {"format": ..., "model": <ModelConfig>, "contents": [...], "source": {...},
                          "preprocessing": {...}}
    <dir>/classifier/    Orbax checkpoint {'params': CascadeClassifier params}      (if present)
    <dir>/pretrained/    Orbax checkpoint {'params': T1 + pretraining head params}   (if present)

"preprocessing" (data/preprocessing.py) is what inference needs: the dataset, class names, joint layout and the
test-time transform with its settings. Directories of format 1 have none; a trained one still has its recipe in
``source.recipe``, from which :func:`stored_preprocessing` rebuilds it.
"""

import json
import os
import pathlib
import shutil
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from cascadeformer_jax.data import preprocessing as preprocessing_lib
from cascadeformer_jax.run import io_checks
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models.pretraining import pretraining_module

io_checks.drain_orbax_event_loops()

FORMAT = 'cascadeformer_jax.model_dir/2'
# Older formats this version still reads.
READABLE_FORMATS = ('cascadeformer_jax.model_dir/1', FORMAT)
METADATA_FILE = 'model.json'
CLASSIFIER = 'classifier'
PRETRAINED = 'pretrained'
KINDS = (CLASSIFIER, PRETRAINED)

# Fields that do not change the parameters: a model directory can be loaded with other values for them.
RUNTIME_FIELDS = frozenset({
    't1_dropout', 't2_dropout', 'spatial_dropout', 'cross_attn_dropout', 'head_dropout', 'spatial_heads',
    'cross_attn_heads', 'num_heads', 'pooling', 'attention_padding_mask', 'dtype'})
# Fields of the pretraining head only: a classifier can be loaded with any values for them.
PRETRAINING_HEAD_FIELDS = frozenset({'decoder', 'decoder_patch', 'decoder_layers', 'target_width', 'target_levels'})


class ModelDirError(ValueError):
  """A model directory is missing, incomplete, or does not fit the requested model."""


def is_model_dir(path: str | os.PathLike) -> bool:
  return (pathlib.Path(path) / METADATA_FILE).is_file()


def module_for(kind: str, config: ModelConfig):
  if kind == CLASSIFIER:
    return CascadeClassifier(config)
  if kind == PRETRAINED:
    return pretraining_module(config)
  raise ValueError(f'unknown model kind {kind!r}; expected one of {KINDS}')


def abstract_params(kind: str, config: ModelConfig, num_frames: int | None = None) -> Any:
  """Shapes and dtypes of the parameters of a model kind, without allocating them."""
  num_frames = min(num_frames or config.pos_len, config.pos_len)
  x = jax.ShapeDtypeStruct((1, num_frames, config.num_joints, config.coords), np.float32)
  variables = jax.eval_shape(module_for(kind, config).init, jax.random.key(0), x)
  return variables['params']


def check_params_shapes(params: Any, expected: Any, where: str) -> None:
  """Raises ModelDirError naming the first parameter whose path or shape differs from ``expected``."""
  got = {jax.tree_util.keystr(k): tuple(np.shape(v)) for k, v in jax.tree_util.tree_leaves_with_path(params)}
  want = {jax.tree_util.keystr(k): tuple(v.shape) for k, v in jax.tree_util.tree_leaves_with_path(expected)}
  for name in sorted(want):
    if name not in got:
      raise ModelDirError(f'{where}: parameter {name} is missing')
    if got[name] != want[name]:
      raise ModelDirError(f'{where}: parameter {name} has shape {got[name]}, the model expects {want[name]}')
  extra = sorted(set(got) - set(want))
  if extra:
    raise ModelDirError(f'{where}: unexpected parameters {extra[:5]} ({len(extra)} in all)')


def save_model_dir(path: str | os.PathLike, config: ModelConfig, params_by_kind: dict[str, Any],
                   source: dict[str, Any] | None = None,
                   preprocessing: dict[str, Any] | None = None) -> pathlib.Path:
  """Writes a model directory. ``params_by_kind`` maps 'classifier' / 'pretrained' to parameter trees;
  ``preprocessing`` is data/preprocessing.py's description of the model's inputs (None: unknown).

  A value may also be a function returning the tree: it is called only when that kind is written and the tree
  is dropped afterwards, so only one model is in memory at a time. In a multi-process job every process must
  call this (Orbax coordinates the writes).
  """
  path = pathlib.Path(path).absolute()
  if not params_by_kind:
    raise ValueError('nothing to save: params_by_kind is empty')
  unknown = sorted(set(params_by_kind) - set(KINDS))
  if unknown:
    raise ValueError(f'unknown model kinds {unknown}; expected {KINDS}')
  for kind in KINDS:
    if (path / kind).exists():
      raise ModelDirError(f'{path / kind} already exists; choose an empty output directory')
  multihost_utils.sync_global_devices(f'save_model_dir_checked:{path}')
  # Folders are created in the calling thread: created asynchronously, a failure leaves Orbax's other save threads
  # waiting for a signal that never comes (minutes, and the process cannot exit meanwhile).
  checkpointer = ocp.StandardCheckpointer(
      async_options=ocp.options.AsyncOptions(create_directories_asynchronously=False))
  failure = None
  try:
    with io_checks.checked_write('model directory', path):
      for kind, params in params_by_kind.items():
        params = params() if callable(params) else params
        check_params_shapes(params, abstract_params(kind, config), f'{kind} parameters')
        checkpointer.save(path / kind, {'params': params})
        checkpointer.wait_until_finished()
        del params
  except io_checks.WriteError as e:
    failure = e
  finally:
    try:
      with io_checks.checked_write('model directory', path):
        checkpointer.close()  # Waits for Orbax's last metadata write, which a full disk fails too.
    except io_checks.WriteError as e:
      failure = failure or e
  # Every process learns of a failure anywhere before the barrier below, which would otherwise wait for ever.
  if not io_checks.all_processes_succeeded(failure is None):
    raise failure or io_checks.WriteError(f'could not write the model directory {path}: another process failed')
  metadata = {
      'format': FORMAT,
      'model': config.to_dict(),
      'contents': sorted(params_by_kind),
      'source': source or {},
      'preprocessing': preprocessing,
  }
  if jax.process_index() == 0:
    # Written last: a directory without model.json is never mistaken for a complete one.
    with io_checks.checked_write('model directory', path):
      (path / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + '\n')
  multihost_utils.sync_global_devices(f'save_model_dir_done:{path}')
  return path


def remove_model_dir(path: str | os.PathLike) -> None:
  """Deletes a model directory (model.json first, so a half-deleted one is never taken as complete)."""
  path = pathlib.Path(path)
  if not path.exists():
    return
  (path / METADATA_FILE).unlink(missing_ok=True)
  shutil.rmtree(path)


def replace_model_dir(path: str | os.PathLike, config: ModelConfig, params_by_kind: dict[str, Any],
                      source: dict[str, Any] | None = None,
                      preprocessing: dict[str, Any] | None = None) -> pathlib.Path:
  """Writes a model directory next to ``path`` and then moves it into place, replacing any old one.

  An interrupted call leaves either the old directory or the new one, never a mix. Every process calls it.
  """
  path = pathlib.Path(path).absolute()
  staging = path.with_name(path.name + '.tmp')
  if jax.process_index() == 0:
    remove_model_dir(staging)
  multihost_utils.sync_global_devices(f'replace_model_dir_clean:{path}')
  save_model_dir(staging, config, params_by_kind, source, preprocessing)
  if jax.process_index() == 0:
    remove_model_dir(path)
    staging.rename(path)
  multihost_utils.sync_global_devices(f'replace_model_dir_done:{path}')
  return path


def read_model_dir_metadata(path: str | os.PathLike) -> dict[str, Any]:
  path = pathlib.Path(path)
  metadata_path = path / METADATA_FILE
  if not metadata_path.is_file():
    raise ModelDirError(f'{path}: not a model directory (no {METADATA_FILE})')
  try:
    metadata = json.loads(metadata_path.read_text())
  except json.JSONDecodeError as e:
    raise ModelDirError(f'{metadata_path}: invalid JSON ({e})') from None
  if not isinstance(metadata, dict) or metadata.get('format') not in READABLE_FORMATS:
    found = metadata.get('format') if isinstance(metadata, dict) else None
    raise ModelDirError(f'{metadata_path}: unknown format {found!r}, expected {FORMAT!r}')
  return metadata


def stored_preprocessing(metadata: dict[str, Any]) -> dict[str, Any] | None:
  """The preprocessing a model directory's metadata describes: stored (format 2), else rebuilt from the recipe
  of the training stage that wrote it; None when unknown (a directory converted before format 2)."""
  if metadata.get('preprocessing'):
    return metadata['preprocessing']
  recipe = metadata.get('source', {}).get('recipe')
  return preprocessing_lib.from_recipe(recipe) if recipe else None


def resolve_config(stored: ModelConfig, requested: ModelConfig | None, where: str,
                   kind: str | None = None) -> ModelConfig:
  """The config to build a stored model with: ``requested`` if its parameter shapes agree with ``stored``."""
  if requested is None:
    return stored
  ignored = RUNTIME_FIELDS | (PRETRAINING_HEAD_FIELDS if kind == CLASSIFIER else frozenset())
  stored_values, requested_values = stored.to_dict(), requested.to_dict()
  differences = [f'{name}: stored {stored_values[name]!r}, requested {requested_values[name]!r}'
                 for name in stored_values
                 if name not in ignored and stored_values[name] != requested_values[name]]
  if differences:
    raise ModelDirError(f'{where} holds a different architecture than the config asks for: '
                        + '; '.join(differences))
  return requested


def load_model_dir(path: str | os.PathLike, kind: str, config: ModelConfig | None = None,
                   any_pretraining_head: bool = False,
                   sharding: jax.sharding.Sharding | None = None) -> tuple[ModelConfig, Any]:
  """Restores ``kind`` ('classifier' or 'pretrained') from a model directory.

  Args:
    path: the model directory.
    kind: which model to restore.
    config: optional config to build the model with; it must have the stored architecture but may change
      runtime fields (head counts, dropouts, pooling, dtype).
    any_pretraining_head: take the pretraining head (decoder fields) from the directory, whatever ``config``
      says (for callers that only use T1).
    sharding: where the parameters are restored (default: this process's first device). An explicit target
      lets a directory written on other devices (a CPU conversion, N GPUs) load on this machine's.

  Returns:
    (config, params) with params as JAX arrays on ``sharding``.
  """
  path = pathlib.Path(path).absolute()
  metadata = read_model_dir_metadata(path)
  if kind not in metadata.get('contents', []):
    raise ModelDirError(f'{path} holds no {kind} model (it holds {metadata.get("contents")})')
  try:
    stored = ModelConfig.from_dict(metadata['model'])
  except (KeyError, TypeError, ValueError) as e:
    raise ModelDirError(f'{path / METADATA_FILE}: invalid model config ({e})') from None
  if config is not None and any_pretraining_head:
    config = config.replace(**{name: getattr(stored, name) for name in PRETRAINING_HEAD_FIELDS})
  config = resolve_config(stored, config, str(path), kind)
  expected = abstract_params(kind, config)
  sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), expected)
  checkpointer = ocp.StandardCheckpointer()
  try:
    try:
      item_metadata = checkpointer.metadata(path / kind).item_metadata
    except (FileNotFoundError, ValueError) as e:
      raise _damaged(path, kind, e) or ModelDirError(f'{path / kind}: unreadable checkpoint ({e})') from None
    if item_metadata is None or 'params' not in item_metadata.tree:
      # Orbax logs why it could not read the metadata instead of raising it; a restore says which file it is.
      try:
        checkpointer.restore(path / kind, {'params': target})
        damaged = None
      except Exception as e:  # pylint: disable=broad-exception-caught
        damaged = _damaged(path, kind, e)
      raise damaged or ModelDirError(f'{path / kind}: unreadable checkpoint (missing or incomplete)')
    stored_tree = item_metadata.tree
    check_params_shapes(stored_tree['params'], expected, str(path / kind))
    try:
      restored = checkpointer.restore(path / kind, {'params': target})
    except Exception as e:  # pylint: disable=broad-exception-caught
      damaged = _damaged(path, kind, e)
      if damaged is None:
        raise
      raise damaged from None
  finally:
    checkpointer.close()
  return config, restored['params']


def _damaged(path: pathlib.Path, kind: str, error: BaseException) -> ModelDirError | None:
  """One line naming the file of ``path``'s ``kind`` checkpoint that is truncated, damaged or missing (None if
  ``error`` is not about such a file)."""
  damage = io_checks.unreadable_file(error, path / kind)
  if damage is None:
    return None
  file, reason = damage
  return ModelDirError(f'{file}: {reason} (the {kind} model of {path} is damaged; write or copy it again)')
