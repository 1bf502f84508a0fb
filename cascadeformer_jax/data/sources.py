"""The one door from the package to the dataset builders (`data_builders`): open a split, read class names, build
on first use. Nothing else in the package imports `data_builders`.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from cascadeformer_jax.data import config as config_lib

# Datasets that need no raw files: built automatically the first time a run reads them.
BUILT_ON_FIRST_USE = ('synthetic_actions',)


def _builder(data_config: ml_collections.ConfigDict):
  import data_builders  # pylint: disable=g-import-not-at-top

  return data_builders.get_builder(data_config.tfds_name, config_lib.resolve_data_dir(data_config),
                                   data_config.tfds_config or None)


def open_split(data_config: ml_collections.ConfigDict, split: str) -> Any:
  """The TFDS data source of a stored split (`len(src)`, `src[i]` -> dict of numpy arrays).

  Raises:
    data_builders.DatasetNotBuiltError: the dataset is not built; the message gives the build command.
  """
  import data_builders  # pylint: disable=g-import-not-at-top

  return data_builders.load_data_source(data_config.tfds_name, split, config_lib.resolve_data_dir(data_config),
                                        config=data_config.tfds_config or None)


def class_names(data_config: ml_collections.ConfigDict) -> list[str]:
  """Class names from the builder's metadata (available without the data being built)."""
  names = list(_builder(data_config).info.features['label'].names)
  if len(names) != data_config.num_classes:
    raise ValueError(f'{data_config.tfds_name} has {len(names)} classes, the data config says '
                     f'{data_config.num_classes}')
  return names


def ensure_built(data_config: ml_collections.ConfigDict, announce: bool = True) -> None:
  """Builds a dataset that needs no raw files the first time it is used; real datasets are built by the user.

  Only process 0 builds; the other processes wait for it (a no-op in a single-process run).
  """
  if data_config.tfds_name not in BUILT_ON_FIRST_USE:
    return
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  if jax.process_index() == 0 and not _builder(data_config).is_prepared():
    import data_builders  # pylint: disable=g-import-not-at-top
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    data_dir = config_lib.resolve_data_dir(data_config)
    if announce:
      print(f'building {data_config.tfds_name} in {data_dir} (once, about 15 s) ...', flush=True)
    tfds.disable_progress_bar()
    builder = data_builders.build_dataset(data_config.tfds_name, data_dir, config=data_config.tfds_config or None,
                                          verbose=False)
    if announce:
      print(f'built {builder.data_path}', flush=True)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices('ensure_dataset')
