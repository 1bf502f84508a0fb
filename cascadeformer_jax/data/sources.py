"""The one door from the package to the dataset builders (`data_builders`): open a split, read class names, build
on first use, describe a folder dataset. Nothing else in the package imports `data_builders`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_collections

from cascadeformer_jax.data import config as config_lib

# Datasets that need no raw files: built automatically the first time a run reads them. Folder datasets
# (`skeleton_folder`) are built from `data.folder` on first use, and again when the folder has changed.
BUILT_ON_FIRST_USE = ('synthetic_actions',)
FOLDER_BUILDER = 'skeleton_folder'


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


def _folder_name(data_config: ml_collections.ConfigDict) -> str:
  """The dataset name of `data.folder` (its dataset.json), checked against `data.tfds_config` when both are set."""
  from data_builders.skeleton_folder import folder as folder_lib  # pylint: disable=g-import-not-at-top

  name = folder_lib.read_dataset_json(data_config.folder).name
  if data_config.tfds_config and data_config.tfds_config != name:
    raise ValueError(f'data.folder {data_config.folder} holds dataset {name!r} but data.tfds_config is '
                     f'{data_config.tfds_config!r}; leave tfds_config empty')
  return name


def _ensure_folder_built(data_config: ml_collections.ConfigDict, announce: bool) -> None:
  """Builds `data.folder` when it is not built in the data dir, or rebuilds it when the folder changed since."""
  import data_builders  # pylint: disable=g-import-not-at-top
  from data_builders.skeleton_folder import folder as folder_lib  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  name = _folder_name(data_config)
  data_dir = config_lib.resolve_data_dir(data_config)
  try:
    built = data_builders.get_builder(FOLDER_BUILDER, data_dir, name)
    stale = built.info.metadata.get('fingerprint') != folder_lib.fingerprint(data_config.folder)
  except data_builders.DatasetNotBuiltError:
    built, stale = None, False
  if built is not None and not stale:
    return
  if announce:
    what = 'changed since it was built; rebuilding' if stale else 'building'
    print(f'{data_config.folder}: {what} {FOLDER_BUILDER}/{name} in {data_dir} ...', flush=True)
  tfds.disable_progress_bar()
  builder = data_builders.build_dataset(FOLDER_BUILDER, data_dir, manual_dir=data_config.folder, overwrite=stale,
                                        verbose=False)
  if announce:
    splits = ', '.join(f'{split} {info.num_examples}' for split, info in sorted(builder.info.splits.items()))
    print(f'built {builder.data_path} ({splits} clips)', flush=True)


def resolve_folder(data_config: ml_collections.ConfigDict) -> None:
  """Fills a folder dataset's data config from the built dataset's metadata (in place): tfds_config and name,
  num_classes, num_joints, num_coords, max_persons, joint_layout, joint_names, parents and centre_indices (the
  layout's centre, or `generic.centre_joints` by name). A no-op for other datasets.

  Raises:
    data_builders.DatasetNotBuiltError: the folder dataset is not built (run `ensure_built` first).
    ValueError: a centre joint that the layout does not have.
  """
  if data_config.tfds_name != FOLDER_BUILDER:
    return
  if data_config.folder:
    data_config.tfds_config = _folder_name(data_config)
  metadata = _builder(data_config).info.metadata
  joints = tuple(metadata['joint_names'])
  centre_names = tuple(data_config.generic.centre_joints)
  missing = [joint for joint in centre_names if joint not in joints]
  if missing:
    raise ValueError(f'data config: generic.centre_joints {missing} are not joints of layout '
                     f'{metadata["layout_name"]!r} {list(joints)}')
  data_config.name = metadata['dataset_name']
  data_config.num_classes = int(metadata['num_classes'])
  data_config.num_joints = int(metadata['num_joints'])
  data_config.num_coords = int(metadata['coords'])
  data_config.max_persons = int(metadata['max_persons'])
  data_config.joint_layout = metadata['layout_name']
  data_config.joint_names = joints
  data_config.parents = tuple(int(p) for p in metadata['parents'])
  data_config.centre_indices = (tuple(joints.index(joint) for joint in centre_names) if centre_names
                                else tuple(int(j) for j in metadata['centre_joints']))


def ensure_built(data_config: ml_collections.ConfigDict, announce: bool = True) -> None:
  """Builds a dataset that needs no raw files the first time it is used, and a folder dataset (`data.folder`)
  when it is not built or its folder changed; real datasets are built by the user.

  Only process 0 builds; the other processes wait for it (a no-op in a single-process run).
  """
  folder = data_config.tfds_name == FOLDER_BUILDER and bool(data_config.get('folder'))
  if data_config.tfds_name not in BUILT_ON_FIRST_USE and not folder:
    return
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  if folder:
    if jax.process_index() == 0:
      _ensure_folder_built(data_config, announce)
  elif jax.process_index() == 0 and not _builder(data_config).is_prepared():
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


# Example fields that name a clip, in order of preference (NTU, N-UCLA, synthetic_actions: sample_name; Penn: video_id).
SAMPLE_ID_FIELDS = ('sample_name', 'video_id')


def sample_ids(data_config: ml_collections.ConfigDict, split: str, indices: Sequence[int]) -> list[str]:
  """Names of the clips at `indices` of a split's stored examples ('holdout' indexes the training split).

  A dataset without a name field gets '<stored split>/<index>', unique and stable as long as the built dataset is.
  """
  stored = data_config.train_split if split == 'holdout' else split
  source = open_split(data_config, stored)
  indices = [int(i) for i in indices]
  if not indices:
    return []
  first = source[indices[0]]
  field = next((name for name in SAMPLE_ID_FIELDS if name in first), None)
  if field is None:
    return [f'{stored}/{i}' for i in indices]
  names = []
  for start in range(0, len(indices), 256):
    chunk = indices[start:start + 256]
    examples = source.__getitems__(chunk) if hasattr(source, '__getitems__') else [source[i] for i in chunk]
    names.extend(value.decode() if isinstance(value, bytes) else str(value)
                 for value in (example[field] for example in examples))
  return names


def one_shot_protocol(data_config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The dataset's official one-shot protocol (builder metadata: NTU RGB+D 120 only).

  Raises:
    ValueError: the dataset has none.
  """
  protocol = _builder(data_config).info.metadata.get('one_shot_protocol')
  if not protocol:
    raise ValueError(f'{data_config.name} ({data_config.tfds_name}) has no official one-shot protocol; '
                     'ntu_rgbd120 (ntu120_xsub, ntu120_xset) has')
  return dict(protocol)
