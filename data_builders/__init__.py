"""TFDS dataset builders of cascadeformer-jax (array_record files, no TensorFlow needed).

Builders (name -> class in `BUILDERS`): `penn_action`, `n_ucla`, `ntu_rgbd60` (configs `xsub`, `xview`),
`ntu_rgbd120` (configs `xsub`, `xset`), `synthetic_actions` (configs `default`, `tiny`; the project's default
dataset, needs no download) and `skeleton_folder` (a user's folder of clips in any joint layout; one config per
folder content, named after its dataset.json and content fingerprint, e.g. `--config=my_dataset` when reading).

Build:  python -m data_builders.build <name> [--config=...] --manual_dir=RAW --data_dir=DATA
        or `build_dataset(name, data_dir, manual_dir=..., config=...)` from Python.
Read:   `load_data_source(name, split, data_dir, config=None)` -> a TFDS data source: `len(src)`, `src[i]` -> dict of
        numpy arrays (Text features as bytes, ClassLabel as int); `get_builder(...).info.metadata` holds joint
        names, skeleton edges and class names. A dataset built by an older version of its builder that the builder
        still lists in SUPPORTED_VERSIONS is read as it is (same examples; see RELEASE_NOTES), with a warning.

Joint names and skeleton trees come from one table, `cascadeformer_jax.data.layouts`, a module that imports only
NumPy; importing or running the builders imports nothing else of `cascadeformer_jax` but its `run` room.
"""

import logging
import sys
from typing import Any

from etils import epath
import tensorflow_datasets as tfds

from data_builders import _common
from data_builders import n_ucla
from data_builders import ntu_rgbd60
from data_builders import ntu_rgbd120
from data_builders import penn_action
from data_builders import skeleton_folder
from data_builders import synthetic_actions
from data_builders._common import DatasetFormatError
from data_builders._common import DatasetNotBuiltError

BUILDERS: dict[str, type[tfds.core.GeneratorBasedBuilder]] = {
    'penn_action': penn_action.PennAction,
    'n_ucla': n_ucla.NUcla,
    'ntu_rgbd60': ntu_rgbd60.NtuRgbd60,
    'ntu_rgbd120': ntu_rgbd120.NtuRgbd120,
    'synthetic_actions': synthetic_actions.SyntheticActions,
    'skeleton_folder': skeleton_folder.SkeletonFolder,
}
FILE_FORMAT = 'array_record'
# Folders of older dataset versions already reported as read (one warning per folder and process).
_warned_older_versions: set[str] = set()

__all__ = [
    'BUILDERS', 'DatasetFormatError', 'DatasetNotBuiltError', 'build_command', 'build_dataset', 'built_builder',
    'get_builder',
    'load_data_source', 'n_ucla', 'ntu_rgbd60', 'ntu_rgbd120', 'penn_action', 'skeleton_folder',
    'synthetic_actions',
]


def _builder_class(name: str) -> type[tfds.core.GeneratorBasedBuilder]:
  try:
    return BUILDERS[name]
  except KeyError:
    raise ValueError(f'unknown dataset {name!r}; available: {sorted(BUILDERS)}') from None


def _config_name(config: str | tfds.core.BuilderConfig | None) -> str | None:
  return config.name if isinstance(config, tfds.core.BuilderConfig) else config


def get_builder(name: str, data_dir: epath.PathLike, config: str | tfds.core.BuilderConfig | None = None,
                **builder_kwargs: Any) -> tfds.core.GeneratorBasedBuilder:
  """The builder of dataset `name` (optionally a config name or object) rooted at `data_dir`, array_record format.

  `builder_kwargs` go to the builder class (e.g. `source='npz'` for `ntu_rgbd60` / `ntu_rgbd120`).
  """
  builder_class = _builder_class(name)
  if config is None and builder_class.BUILDER_CONFIGS:
    config = builder_class.BUILDER_CONFIGS[0].name
  if hasattr(builder_class, 'config_for') and not isinstance(config, tfds.core.BuilderConfig):
    config = builder_class.config_for(name=config, data_dir=data_dir)  # folder datasets: read back by name
  return builder_class(data_dir=str(data_dir), config=config, file_format=FILE_FORMAT, **builder_kwargs)


def build_command(name: str, data_dir: epath.PathLike | None = None,
                  config: str | tfds.core.BuilderConfig | None = None) -> str:
  """The shell command that builds a dataset."""
  parts = ['python -m data_builders.build', name]
  config_name = _config_name(config)
  if config_name and not hasattr(_builder_class(name), 'config_for'):
    parts.append(f'--config={config_name}')
  if _builder_class(name).MANUAL_DOWNLOAD_INSTRUCTIONS:
    parts.append('--manual_dir=<folder with the raw files>')
  parts.append(f'--data_dir={data_dir if data_dir is not None else "<data dir>"}')
  return ' '.join(parts)


def _remove_empty_dirs(path: epath.Path, stop: epath.Path) -> None:
  """Removes `path` and its empty parents up to (excluding) `stop` when they are empty."""
  while path != stop and path.is_dir() and not any(path.iterdir()):
    path.rmdir()
    path = path.parent


def build_dataset(name: str, data_dir: epath.PathLike, manual_dir: epath.PathLike | None = None,
                  config: str | tfds.core.BuilderConfig | None = None, overwrite: bool = False,
                  verbose: bool = True, **builder_kwargs: Any) -> tfds.core.GeneratorBasedBuilder:
  """Builds (downloads nothing, writes array_record files) and returns the builder.

  Args:
    name: a key of BUILDERS.
    data_dir: root of the TFDS data dir; the dataset goes to `data_dir/name/config/version/`.
    manual_dir: folder holding the raw files (see the builder's MANUAL_DOWNLOAD_INSTRUCTIONS); unused by
      `synthetic_actions`.
    config: config name or BuilderConfig object (default: the first config).
    overwrite: rebuild even when the dataset exists.
    verbose: log progress lines (logger 'data_builders', INFO) to stderr when logging is not configured.
    **builder_kwargs: passed to the builder class (e.g. `source='raw'` for ntu_rgbd60).

  Raises:
    DatasetFormatError: bad raw input (the message names the file). A failed build leaves no dataset behind: TFDS
      writes into a temporary `incomplete.*` folder that is deleted on error, and the empty folders it created are
      removed here.
  """
  builder_class = _builder_class(name)
  data_root = epath.Path(data_dir)
  existed = (data_root / name).exists()  # before a folder's config caches its clip hashes there
  if builder_class.MANUAL_DOWNLOAD_INSTRUCTIONS:
    if manual_dir is None:
      raise ValueError(f'{name} needs manual_dir (the folder with the raw files):\n'
                       f'{builder_class.MANUAL_DOWNLOAD_INSTRUCTIONS}')
    manual_path = epath.Path(manual_dir)
    if not manual_path.is_dir() or not any(manual_path.iterdir()):
      problem = 'is empty' if manual_path.is_dir() else 'does not exist or is not a folder'
      raise DatasetFormatError(f'{name}: manual_dir {manual_path} {problem}.\n'
                               f'{builder_class.MANUAL_DOWNLOAD_INSTRUCTIONS}')
    if hasattr(builder_class, 'config_for') and not isinstance(config, tfds.core.BuilderConfig):
      config = builder_class.config_for(name=config, manual_dir=manual_path, data_dir=data_dir)
  handler = None
  previous_propagate = _common.logger.propagate
  if verbose and not _common.logger.handlers and not logging.getLogger().handlers:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(message)s', '%H:%M:%S'))
    _common.logger.addHandler(handler)
    _common.logger.propagate = False  # TFDS may configure the root logger meanwhile; avoid duplicate lines
  previous_level = _common.logger.level
  if verbose and (previous_level == logging.NOTSET or previous_level > logging.INFO):
    _common.logger.setLevel(logging.INFO)
  builder = get_builder(name, data_dir, config, **builder_kwargs)
  modes = tfds.download.GenerateMode
  mode = modes.FORCE_REDOWNLOAD if overwrite else modes.REUSE_DATASET_IF_EXISTS
  download_config = tfds.download.DownloadConfig(
      manual_dir=str(manual_dir) if manual_dir is not None else None, download_mode=mode)
  try:
    builder.download_and_prepare(download_config=download_config)
  except BaseException:
    # TFDS already deleted its incomplete.* folder; drop what else this call created (empty folders, the
    # `<name>/.config/` note of the config) so nothing looks half-built.
    if not existed:
      (data_root / name).rmtree(missing_ok=True)
    else:
      _remove_empty_dirs(epath.Path(builder.data_path).parent, data_root)
    for leftover in ('downloads/extracted', 'downloads'):
      _remove_empty_dirs(data_root / leftover, data_root)
    raise
  finally:
    _common.logger.setLevel(previous_level)
    if handler is not None:
      _common.logger.removeHandler(handler)
      _common.logger.propagate = previous_propagate
  return builder


def built_builder(name: str, data_dir: epath.PathLike,
                  config: str | tfds.core.BuilderConfig | None) -> tfds.core.GeneratorBasedBuilder:
  """The builder of the built dataset: its current VERSION, else the newest built one of its SUPPORTED_VERSIONS.

  Older versions hold the same examples (see the builder's RELEASE_NOTES); reading one logs a warning once.
  """
  builder = get_builder(name, data_dir, config)
  if builder.is_prepared():
    return builder
  for version in sorted((tfds.core.Version(str(v)) for v in _builder_class(name).SUPPORTED_VERSIONS), reverse=True):
    older = get_builder(name, data_dir, config, version=version)
    if older.is_prepared():
      if str(older.data_path) not in _warned_older_versions:
        _warned_older_versions.add(str(older.data_path))
        note = builder.RELEASE_NOTES.get(str(builder.info.version), '')
        _common.logger.warning('reading %s in %s, built by an older version of its builder (same examples); the '
                               'current version is %s (%s) Build it with: %s', older.info.full_name, data_dir,
                               builder.info.version, note, build_command(name, data_dir, config))
      return older
  raise DatasetNotBuiltError(
      f'dataset {builder.info.full_name} is not built in {data_dir} (no complete {builder.data_path}). '
      f'Build it with:\n  {build_command(name, data_dir, config)}')


def load_data_source(name: str, split: str, data_dir: epath.PathLike,
                     config: str | tfds.core.BuilderConfig | None = None):
  """The TFDS data source of a built dataset split: `len(src)`, `src[i]` -> dict of numpy arrays.

  Reads the builder's current version or, when only that is missing, the newest built version it still supports
  (`SUPPORTED_VERSIONS`; the same examples, older metadata).

  Raises:
    DatasetNotBuiltError: the dataset is not (completely) built in `data_dir`; the message gives the build command.
    ValueError: unknown dataset or split.
  """
  builder = built_builder(name, data_dir, config)
  if split not in builder.info.splits:
    raise ValueError(f'{builder.info.full_name} has no split {split!r}; available: {sorted(builder.info.splits)}')
  return builder.as_data_source(split=split)
