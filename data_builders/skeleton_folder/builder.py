"""`skeleton_folder`: a user's folder of skeleton clips in any joint layout, as a TFDS dataset (array_record).

Build:
  python -m data_builders.build skeleton_folder --manual_dir=my_dataset --data_dir=DATA

The folder contract is in `folder.py` (dataset.json, labels.csv, .npy / .npz / .json clips). The build checks every
row and clip before writing anything; one error lists every problem.

Naming: a build is identified by the folder's content, not its name or place. Every folder becomes a builder config
named `<name>-<first 16 hex digits of its content fingerprint>` (`folder.content`: dataset.json, labels.csv and
the SHA-256 of every clip), so the dataset lands in `DATA/skeleton_folder/<name>-<fingerprint>/1.0.0/`: folders of
the same name but other content never share or replace a build, and a copied or touched folder finds its build
again. Clip hashes are cached in `DATA/skeleton_folder/.fingerprints/` by (path, size, mtime), with the rows of
every content seen (to say later what changed). The config is made from the folder when building
(`SkeletonFolder.config_for(manual_dir=folder, data_dir=DATA)`) and from a build name or dataset name alone when
reading: a built dataset needs no folder (features and metadata are read back from its directory), e.g.
`data_builders.load_data_source('skeleton_folder', 'train', DATA, config='<name>')` reads the one build of that
name (several: name the build). Builds made before content fingerprints live in `DATA/skeleton_folder/<name>/` and
are read as they are.

Features: `skeleton` (T, max_persons, J, C) float32 (zlib), persons beyond a clip's own zero-padded; `num_persons`
int32 (persons with any non-zero coordinate); `nonfinite_count` int32 (NaN/inf values set to 0 with
`"bad_values": "zero"`); `sample_name` (the clip's path in the folder); `group` (the split rule's column value, or
''); `label` ClassLabel (dataset.json `classes`, else the sorted labels). Metadata: layout name, joints, parents,
centre joints, coords, max_persons, class names, split rule, bad_values, NaN/inf count and the content fingerprint.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from data_builders import _common
from data_builders.skeleton_folder import folder as folder_lib

MANUAL_DOWNLOAD_INSTRUCTIONS = """
Put your clips in a folder (the manual dir):
  my_dataset/
    dataset.json   {"name": "my_dataset", "layout": "coco17", "coords": 2, "max_persons": 1}
    labels.csv     path,label,split          e.g. clips/0001.npy,wave,train
    clips/...      .npy | .npz (array 'skeleton') | .json, shaped (T, J, C) or (T, M, J, C)
Layouts: ntu25, nucla20, penn13, coco17, mediapipe33, openpose25, h36m17, or {"joints": [...], "parents": [...]}.
Then run:
  python -m data_builders.build skeleton_folder --manual_dir=my_dataset --data_dir=DATA_DIR
A small example folder: python -m data_builders.skeleton_folder.example --output=my_dataset --layout=coco17
"""


# Hex digits of the content fingerprint in a build's name.
BUILD_KEY_LENGTH = 16
FINGERPRINT_DIR = '.fingerprints'
_CONTENT_NAMED = re.compile(f'.+-[0-9a-f]{{{BUILD_KEY_LENGTH}}}')


def build_name(dataset_name: str, fingerprint: str) -> str:
  """The builder config (and folder) name of a content: `<dataset name>-<16 hex digits of its fingerprint>`."""
  return f'{dataset_name}-{fingerprint[:BUILD_KEY_LENGTH]}'


def is_build_of(build: str, dataset_name: str) -> bool:
  """Whether `build` names a build of the dataset `dataset_name` (content-named, or the name alone)."""
  return build == dataset_name or re.fullmatch(re.escape(dataset_name) + f'-[0-9a-f]{{{BUILD_KEY_LENGTH}}}',
                                               build) is not None


def cache_dir(data_dir: epath.PathLike) -> epath.Path:
  """Where clip hashes and content manifests are kept in a data dir."""
  return epath.Path(data_dir) / SkeletonFolder.name / FINGERPRINT_DIR


def is_built(data_dir: epath.PathLike, build: str) -> bool:
  """Whether the build is complete in `data_dir` (without TFDS's warning about a missing one)."""
  return (epath.Path(data_dir) / SkeletonFolder.name / build / str(SkeletonFolder.VERSION) /
          'dataset_info.json').exists()


def builds_of(data_dir: epath.PathLike, dataset_name: str) -> list[str]:
  """The complete builds of `dataset_name` in `data_dir`, sorted."""
  root = epath.Path(data_dir) / SkeletonFolder.name
  if not root.is_dir():
    return []
  return sorted(entry.name for entry in root.iterdir()
                if is_build_of(entry.name, dataset_name) and any((v / 'dataset_info.json').exists()
                                                                 for v in entry.iterdir() if v.is_dir()))


def resolve_build(data_dir: epath.PathLike, name: str) -> str:
  """The build that `name` means: a content-named build, else the one build of the dataset `name` (`name` when it
  has none).

  Raises:
    ValueError: several builds of the dataset `name` (naming them).
  """
  if _CONTENT_NAMED.fullmatch(name) and (epath.Path(data_dir) / SkeletonFolder.name / name).exists():
    return name
  found = builds_of(data_dir, name)
  if len(found) > 1:
    raise ValueError(f'{data_dir} holds {len(found)} builds of folder dataset {name!r} (different content): '
                     f'{", ".join(found)}; give the folder (data.folder) or one of these names')
  return found[0] if found else name


@dataclasses.dataclass(eq=False)
class SkeletonFolderConfig(tfds.core.BuilderConfig):
  """One folder dataset: `name` = the build's name; `folder` = the folder and `content` = what it holds (both empty
  when only reading)."""
  folder: str = ''
  content: folder_lib.Content | None = None


class SkeletonFolder(tfds.core.GeneratorBasedBuilder):
  """A folder of skeleton clips (see the module docstring)."""

  name = 'skeleton_folder'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = []

  @classmethod
  def config_for(cls, name: str | None = None, manual_dir: epath.PathLike | None = None,
                 data_dir: epath.PathLike | None = None) -> SkeletonFolderConfig:
    """The config of a folder (named after its dataset.json and content; clip hashes cached in `data_dir`) or, for
    reading a built dataset, of a build or dataset name (`resolve_build` in `data_dir`)."""
    if manual_dir is not None:
      spec = folder_lib.read_dataset_json(manual_dir)
      if name is not None and not is_build_of(name, spec.name):
        raise _common.DatasetFormatError(f'{manual_dir}/{folder_lib.DATASET_FILE} names the dataset {spec.name!r}, '
                                         f'not {name!r}')
      content = folder_lib.content(manual_dir, cache_dir(data_dir) if data_dir is not None else None)
      return SkeletonFolderConfig(name=build_name(spec.name, content.fingerprint), folder=str(manual_dir),
                                  content=content, description=spec.description or None)
    if not name:
      raise ValueError('skeleton_folder needs the folder (manual_dir) or the name of a built dataset (config)')
    return SkeletonFolderConfig(name=resolve_build(data_dir, name) if data_dir is not None else name)

  def _create_builder_config(self, builder_config, version):
    # Every folder brings its own config; TFDS would warn about a "custom data configuration" each time.
    if isinstance(builder_config, SkeletonFolderConfig):
      return builder_config
    return super()._create_builder_config(builder_config, version)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    if config is None:
      raise ValueError('skeleton_folder needs a config: SkeletonFolder.config_for(manual_dir=<folder>) or the name '
                       'of a built dataset')
    if not config.folder:
      return self._info_from_directory()
    spec = folder_lib.read_dataset_json(config.folder)
    class_names = folder_lib.class_names_from_labels(config.folder, spec)
    layout = spec.layout
    metadata = {
        'dataset_name': spec.name,
        'layout_name': layout.name,
        'layout_spec': spec.layout_spec,
        'joint_names': list(layout.joints),
        'parents': list(layout.parents),
        'centre_joints': list(layout.centre_joints),
        'num_joints': layout.num_joints,
        'coords': spec.coords,
        'max_persons': spec.max_persons,
        'class_names': list(class_names),
        'num_classes': len(class_names),
        'split_rule': spec.split_rule.to_dict() if spec.split_rule else None,
        'bad_values': spec.bad_values,
        'skeleton_layout': f'(T, {spec.max_persons}, {layout.num_joints}, {spec.coords}) = (frame, person, joint, '
                           'coordinate); persons beyond a clip\'s own are zeros',
        'content_fingerprint': (config.content or folder_lib.content(config.folder)).fingerprint,
    }
    return tfds.core.DatasetInfo(
        builder=self,
        description=spec.description or f'Skeleton clips of the folder dataset {spec.name!r} ({layout.name} layout).',
        features=self._features(spec.max_persons, layout.num_joints, spec.coords, class_names),
        supervised_keys=('skeleton', 'label'),
        disable_shuffling=True,
        metadata=tfds.core.MetadataDict(metadata),
    )

  @staticmethod
  def _features(max_persons: int, num_joints: int, coords: int, class_names) -> tfds.features.FeaturesDict:
    return tfds.features.FeaturesDict({
        'skeleton': tfds.features.Tensor(shape=(None, max_persons, num_joints, coords), dtype=np.float32,
                                         encoding='zlib'),
        'num_persons': np.int32,
        'nonfinite_count': np.int32,
        'sample_name': tfds.features.Text(),
        'group': tfds.features.Text(),
        'label': tfds.features.ClassLabel(names=list(class_names)),
    })

  def _info_from_directory(self) -> tfds.core.DatasetInfo:
    """The info of an already built dataset (features from its directory; metadata is restored by TFDS)."""
    data_path = epath.Path(self.data_path)
    if not (data_path / 'features.json').exists():
      raise _common.DatasetNotBuiltError(
          f'folder dataset {self.builder_config.name!r} is not built in {self._data_dir_root} (no {data_path}). '
          'Build it with:\n  python -m data_builders.build skeleton_folder --manual_dir=<the folder> '
          f'--data_dir={self._data_dir_root}')
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeatureConnector.from_config(str(data_path)),
        supervised_keys=('skeleton', 'label'),
        disable_shuffling=True,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # the folder comes with the config
    config = self.builder_config
    if not config.folder:
      raise ValueError(f'skeleton_folder/{config.name}: building needs the folder (manual_dir)')
    spec, rows, class_names = folder_lib.check_folder(config.folder)
    if (list(class_names) != list(self.info.features['label'].names) or
        (config.content is not None and folder_lib.files_digest(epath.Path(config.folder))[0] !=
         config.content.files_digest)):
      raise _common.DatasetFormatError(f'{config.folder}: {folder_lib.DATASET_FILE} or {folder_lib.LABELS_FILE} '
                                       'changed while building; run the build again')
    total_bad = sum(row.nonfinite for row in rows)
    if total_bad:
      affected = sum(1 for row in rows if row.nonfinite)
      _common.logger.warning('skeleton_folder/%s: %d NaN/inf values in %d clips set to 0 ("bad_values": "zero")',
                             spec.name, total_bad, affected)
    self.info.metadata['nonfinite_values'] = total_bad
    splits: dict[str, list[folder_lib.Row]] = {}
    for row in rows:
      splits.setdefault(row.split, []).append(row)
    sizes = ', '.join(f'{split} {len(items)}' for split, items in sorted(splits.items()))
    _common.logger.info('skeleton_folder/%s: %s clips, %d classes', spec.name, sizes, len(class_names))
    return {split: self._generate_examples(spec, items, class_names, split) for split, items in splits.items()}

  def _generate_examples(self, spec: folder_lib.DatasetSpec, rows: list[folder_lib.Row], class_names, split: str):
    folder = epath.Path(self.builder_config.folder)
    content = self.builder_config.content
    hashes = {path: sha for path, _, _, sha in content.rows} if content is not None else {}
    label_index = {name: index for index, name in enumerate(class_names)}
    for row in _common.progress(rows, f'skeleton_folder/{spec.name}: writing {split}'):
      # The build is named after the content it was asked for: a clip replaced meanwhile fails it.
      if hashes and folder_lib.clip_sha256(folder / row.path) != hashes.get(row.path):
        raise _common.DatasetFormatError(f'{folder / row.path} changed while building; run the build again')
      skeleton, count = folder_lib.check_clip(folder_lib.load_clip(folder / row.path), spec)
      example: dict[str, Any] = {
          'skeleton': skeleton,
          'num_persons': row.num_persons,
          'nonfinite_count': count,
          'sample_name': row.path,
          'group': row.group,
          'label': label_index[row.label],
      }
      yield row.path, example
