"""The one door from the package to the dataset builders (`data_builders`): open a split, read class names, build
on first use, describe a folder dataset. Nothing else in the package imports `data_builders`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_collections

from cascadeformer_jax.data import config as config_lib

# Datasets that need no raw files: built automatically the first time a run reads them. Folder datasets
# (`skeleton_folder`) are built from `data.folder` on first use of each content (builds are keyed by content).
BUILT_ON_FIRST_USE = ('synthetic_actions',)
FOLDER_BUILDER = 'skeleton_folder'


def _builder_config(data_config: ml_collections.ConfigDict) -> Any:
  """The builder config to read: for a folder dataset exactly the build `data.tfds_config` names."""
  if data_config.tfds_name == FOLDER_BUILDER and data_config.tfds_config:
    from data_builders.skeleton_folder import builder as folder_builder  # pylint: disable=g-import-not-at-top

    return folder_builder.SkeletonFolderConfig(name=data_config.tfds_config)
  return data_config.tfds_config or None


def _builder(data_config: ml_collections.ConfigDict):
  import data_builders  # pylint: disable=g-import-not-at-top

  return data_builders.get_builder(data_config.tfds_name, config_lib.resolve_data_dir(data_config),
                                   _builder_config(data_config))


def open_split(data_config: ml_collections.ConfigDict, split: str) -> Any:
  """The TFDS data source of a stored split (`len(src)`, `src[i]` -> dict of numpy arrays).

  Raises:
    data_builders.DatasetNotBuiltError: the dataset is not built; the message gives the build command.
  """
  import data_builders  # pylint: disable=g-import-not-at-top

  return data_builders.load_data_source(data_config.tfds_name, split, config_lib.resolve_data_dir(data_config),
                                        config=_builder_config(data_config))


def class_names(data_config: ml_collections.ConfigDict) -> list[str]:
  """Class names from the builder's metadata (available without the data being built)."""
  names = list(_builder(data_config).info.features['label'].names)
  if len(names) != data_config.num_classes:
    raise ValueError(f'{data_config.tfds_name} has {len(names)} classes, the data config says '
                     f'{data_config.num_classes}')
  return names


def _folder_name(data_config: ml_collections.ConfigDict) -> str:
  """The dataset name of `data.folder` (its dataset.json), checked against `data.tfds_config` when both are set."""
  from data_builders.skeleton_folder import builder as folder_builder  # pylint: disable=g-import-not-at-top
  from data_builders.skeleton_folder import folder as folder_lib  # pylint: disable=g-import-not-at-top

  name = folder_lib.read_dataset_json(data_config.folder).name
  if data_config.tfds_config and not folder_builder.is_build_of(data_config.tfds_config, name):
    raise ValueError(f'data.folder {data_config.folder} holds dataset {name!r} but data.tfds_config is '
                     f'{data_config.tfds_config!r}; leave tfds_config empty')
  return name


def _set(data_config: ml_collections.ConfigDict, **values: Any) -> None:
  """Sets fields of a (possibly locked) data config, adding those it lacks (`identity`)."""
  with data_config.unlocked():
    for key, value in values.items():
      setattr(data_config, key, value)


FINGERPRINT_PREFIX = 'sha256:'


def _ensure_folder_built(data_config: ml_collections.ConfigDict, build: bool, announce: bool) -> None:
  """Finds the build of `data.folder`'s content in the data dir, or builds it (`build`); records it in
  `data.tfds_config` and the content fingerprint in `data.identity`.

  A build is found by content (`skeleton_folder.builder`): another folder of the same name, or an earlier content
  of this one, has its own build and keeps it. A build made before content fingerprints (named after the dataset
  alone) is used while the folder is unchanged since (its path, size and mtime fingerprint).
  """
  import data_builders  # pylint: disable=g-import-not-at-top
  from data_builders.skeleton_folder import builder as folder_builder  # pylint: disable=g-import-not-at-top
  from data_builders.skeleton_folder import folder as folder_lib  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  name = _folder_name(data_config)
  data_dir = config_lib.resolve_data_dir(data_config)
  config = folder_builder.SkeletonFolder.config_for(manual_dir=data_config.folder, data_dir=data_dir)
  found = config.name if folder_builder.is_built(data_dir, config.name) else None
  if found is None and name in folder_builder.builds_of(data_dir, name):
    legacy = data_builders.get_builder(FOLDER_BUILDER, data_dir, folder_builder.SkeletonFolderConfig(name=name))
    if legacy.info.metadata.get('fingerprint') == folder_lib.legacy_fingerprint(data_config.folder):
      found = name
  if found is None:
    if not build:
      raise data_builders.DatasetNotBuiltError(f'{data_config.folder} is not built in {data_dir} yet')
    if announce:
      print(f'{data_config.folder}: building {FOLDER_BUILDER}/{config.name} in {data_dir} ...', flush=True)
    tfds.disable_progress_bar()
    builder = data_builders.build_dataset(FOLDER_BUILDER, data_dir, manual_dir=data_config.folder, config=config,
                                          verbose=False)
    if announce:
      splits = ', '.join(f'{split} {info.num_examples}' for split, info in sorted(builder.info.splits.items()))
      print(f'built {builder.data_path} ({splits} clips)', flush=True)
    found = config.name
  _set(data_config, tfds_config=found, identity=FINGERPRINT_PREFIX + config.content.fingerprint)


def _built_identity(data_config: ml_collections.ConfigDict) -> str | None:
  """What a built dataset holds, from its metadata: a folder build's content fingerprint, or a builder's name,
  version and split sizes. None when it is not built (or is a folder build from before content fingerprints)."""
  import data_builders  # pylint: disable=g-import-not-at-top

  try:
    builder = data_builders.built_builder(data_config.tfds_name, config_lib.resolve_data_dir(data_config),
                                          _builder_config(data_config))
  except data_builders.DatasetNotBuiltError:
    return None
  if data_config.tfds_name == FOLDER_BUILDER:
    fingerprint = builder.info.metadata.get('content_fingerprint')
    return FINGERPRINT_PREFIX + fingerprint if fingerprint else None
  splits = ', '.join(f'{split} {info.num_examples}' for split, info in sorted(builder.info.splits.items()))
  return f'{builder.info.full_name}: {splits}'


def record_identity(data_config: ml_collections.ConfigDict) -> None:
  """Sets `data.identity` (part of the stage recipes) from the built dataset; leaves it unset when the dataset is
  not built. A folder dataset with `data.folder` gets it from the folder (`ensure_built`)."""
  if data_config.tfds_name == FOLDER_BUILDER and data_config.get('folder'):
    return
  identity = _built_identity(data_config)
  if identity is not None:
    _set(data_config, identity=identity)


def describe_identity_change(data_config: ml_collections.ConfigDict, old: str, new: str) -> str:
  """Words for a changed `data.identity`: for a folder dataset, which rows changed (from the manifests its
  fingerprints keep in the data dir), else the two identities."""
  if data_config.tfds_name != FOLDER_BUILDER or not (old.startswith(FINGERPRINT_PREFIX) and
                                                     new.startswith(FINGERPRINT_PREFIX)):
    return f'dataset {data_config.name!r} changed since it was trained: {old!r} -> {new!r}'
  from data_builders.skeleton_folder import builder as folder_builder  # pylint: disable=g-import-not-at-top
  from data_builders.skeleton_folder import folder as folder_lib  # pylint: disable=g-import-not-at-top

  where = f' (data.folder {data_config.folder})' if data_config.get('folder') else ''
  cache = folder_builder.cache_dir(config_lib.resolve_data_dir(data_config))
  manifests = [folder_lib.read_manifest(cache, value[len(FINGERPRINT_PREFIX):]) for value in (old, new)]
  if None in manifests:
    what = 'its content differs (the rows it was trained on are not recorded in the data dir)'
  else:
    what = folder_lib.describe_changes(*manifests)
  short = lambda value: value[len(FINGERPRINT_PREFIX):][:12]
  return (f'dataset {data_config.name!r}{where} changed since it was trained: {what} '
          f'(content {short(old)} -> {short(new)})')


def resolve_folder(data_config: ml_collections.ConfigDict) -> None:
  """Fills a folder dataset's data config from the built dataset's metadata (in place): tfds_config (the build of
  the folder's content) and name, identity, num_classes, num_joints, num_coords, max_persons, joint_layout,
  joint_names, parents and centre_indices (the layout's centre, or `generic.centre_joints` by name). A no-op for
  other datasets.

  Raises:
    data_builders.DatasetNotBuiltError: the folder dataset is not built (run `ensure_built` first).
    ValueError: a centre joint that the layout does not have; several builds of a dataset named by tfds_config alone.
  """
  if data_config.tfds_name != FOLDER_BUILDER:
    return
  if data_config.folder:
    _ensure_folder_built(data_config, build=False, announce=False)
  else:
    from data_builders.skeleton_folder import builder as folder_builder  # pylint: disable=g-import-not-at-top

    _set(data_config, tfds_config=folder_builder.resolve_build(config_lib.resolve_data_dir(data_config),
                                                               data_config.tfds_config))
    identity = _built_identity(data_config)
    if identity is not None:
      _set(data_config, identity=identity)
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
  when its content is not built yet; real datasets are built by the user. Records what the data is
  (`data.identity`, and a folder's build in `data.tfds_config`) when it is built.

  Only process 0 builds; the other processes wait for it (a no-op in a single-process run).
  """
  folder = data_config.tfds_name == FOLDER_BUILDER and bool(data_config.get('folder'))
  if data_config.tfds_name not in BUILT_ON_FIRST_USE and not folder:
    record_identity(data_config)
    return
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  failure = None
  try:
    if folder:
      if jax.process_index() == 0:
        _ensure_folder_built(data_config, build=True, announce=announce)
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
  except Exception as e:  # pylint: disable=broad-exception-caught
    failure = e
  if jax.process_count() > 1:
    # Every process learns whether process 0 built the dataset: after a failure a barrier would wait for ever.
    import numpy as np  # pylint: disable=g-import-not-at-top

    built = multihost_utils.process_allgather(np.array([failure is None], np.int32))
    if not np.all(built):
      raise failure or RuntimeError(f'building {data_config.tfds_name} failed on process 0 (see its log)')
  elif failure is not None:
    raise failure
  if folder:
    if jax.process_index() != 0:
      _ensure_folder_built(data_config, build=False, announce=False)
  else:
    record_identity(data_config)


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
