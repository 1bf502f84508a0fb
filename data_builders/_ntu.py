"""What the NTU RGB+D 60 and 120 builders share: sources (raw `.skeleton` files or CTR-GCN npz), the skipped
missing-skeleton samples, CTR-GCN's split order, the example layout and the errors.

A dataset is a subclass of `NtuSkeletonBuilder` that sets the class attributes below (classes, npz file names,
split rules, missing list) and `_select_names` (which sample names belong to it). Parsing and cleaning are
`ntu_rgbd60/ctrgcn.py`, npz reading `ntu_rgbd60/npz.py`: the raw format and CTR-GCN's cleaning are the same for both.
"""

from collections.abc import Callable, Sequence
import dataclasses
from typing import Any, ClassVar

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from data_builders import _common
from data_builders.ntu_rgbd60 import ctrgcn
from data_builders.ntu_rgbd60 import npz

SKELETON_DIR = 'nturgb+d_skeletons'
SOURCES = ('auto', 'raw', 'npz')
HOMEPAGE = 'https://rose1.ntu.edu.sg/dataset/actionRecognition/'


@dataclasses.dataclass(eq=False)
class NtuConfig(tfds.core.BuilderConfig):
  """`benchmark`: the split rule ('xsub' for both datasets, 'xview' for NTU60, 'xset' for NTU120)."""
  benchmark: str = 'xsub'


def skeleton_files(manual_dir: epath.Path) -> dict[str, epath.Path] | None:
  """{sample name: path} of the .skeleton files, or None when the raw folder is absent."""
  for folder in (manual_dir / SKELETON_DIR, manual_dir):
    if folder.is_dir():
      files = {path.stem: path for path in folder.glob('*.skeleton')}
      if files:
        return files
  return None


def check_name_pattern(names: Sequence[str], where: str) -> None:
  bad = [name for name in names if ctrgcn.SAMPLE_NAME_PATTERN.fullmatch(name) is None]
  if bad:
    raise _common.DatasetFormatError(f'{where}: sample name(s) not of the form SsssCcccPpppRrrrAaaa: {bad[:5]}')


class NtuSkeletonBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """CTR-GCN-cleaned NTU RGB+D skeletons (T, 2, 25, 3) from raw .skeleton files or CTR-GCN npz files."""

  DESCRIPTION: ClassVar[str] = ''
  CLASS_NAMES: ClassVar[tuple[str, ...]] = ()
  TWO_PERSON_LABELS: ClassVar[tuple[int, ...]] = ()
  # benchmark -> npz file name / {split: (sample-name field, ids in CTR-GCN order)} / full split sizes.
  NPZ_FILES: ClassVar[dict[str, str]] = {}
  SPLIT_GROUPS: ClassVar[dict[str, dict[str, tuple[str, tuple[int, ...]]]]] = {}
  SPLIT_RULES: ClassVar[dict[str, dict[str, list[int]]]] = {}
  EXPECTED_FULL_SIZES: ClassVar[dict[str, list[int]]] = {}
  EXPECTED_LAYOUT: ClassVar[str] = ''
  # Where CTR-GCN keeps skes_available_name.txt for this dataset (named in the error when it is missing).
  NAME_LIST_ORIGIN: ClassVar[str] = ''
  NAME_LIST_CANDIDATES: ClassVar[tuple[str, ...]] = ('skes_available_name.txt', 'statistics/skes_available_name.txt')
  FULL_MISSING_COUNT: ClassVar[int] = 0
  # Files of the other NTU dataset: when they are found instead of ours, the error says so.
  OTHER_DATASET_FILES: ClassVar[dict[str, str]] = {}
  CITATION: ClassVar[str] = ''
  missing_samples: ClassVar[Callable[[], frozenset[str]]]

  def __init__(self, *, source: str = 'auto', **kwargs):
    """`source`: 'raw' (.skeleton files), 'npz' (CTR-GCN npz) or 'auto' (raw when present, else npz)."""
    if source not in SOURCES:
      raise ValueError(f'{self.name}: unknown source {source!r}; expected one of {SOURCES}')
    self._source = source
    super().__init__(**kwargs)

  @property
  def _label(self) -> str:
    return f'{self.name}/{self.builder_config.name}'

  def _select_names(self, names: list[str], where: str) -> list[str]:
    """The names of this dataset among valid sample names `names` (order kept); may raise DatasetFormatError."""
    raise NotImplementedError

  def _extra_metadata(self) -> dict[str, Any]:
    return {}

  def _check_names(self, names: list[str], where: str) -> list[str]:
    check_name_pattern(names, where)
    return self._select_names(names, where)

  def _info(self) -> tfds.core.DatasetInfo:
    benchmark = self.builder_config.benchmark
    metadata = _common.layout_metadata('ntu25')
    metadata.update({
        'class_names': list(self.CLASS_NAMES),
        'num_classes': len(self.CLASS_NAMES),
        'two_person_labels': list(self.TWO_PERSON_LABELS),
        'benchmark': benchmark,
        'split_rule': self.SPLIT_RULES[benchmark],
        'coordinates': ('Kinect v2 camera space, metres, centred on actor 1 spine_mid (joint 1) of the first frame; '
                        'CTR-GCN denoising; frames of an absent actor are zeros'),
        'skeleton_layout': '(T, 2, 25, 3) = (frame, actor slot, joint, (x, y, z)); unpadded',
        'expected_full_sizes': self.EXPECTED_FULL_SIZES[benchmark],
    })
    metadata.update(self._extra_metadata())
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict({
            'skeleton': tfds.features.Tensor(shape=(None, 2, ctrgcn.NUM_JOINTS, 3), dtype=np.float32,
                                             encoding='zlib'),
            'num_bodies': np.int32,
            'setup': np.int32,
            'camera': np.int32,
            'performer': np.int32,
            'replication': np.int32,
            'sample_name': tfds.features.Text(),
            'label': tfds.features.ClassLabel(names=self.CLASS_NAMES),
        }),
        supervised_keys=('skeleton', 'label'),
        disable_shuffling=True,
        homepage=HOMEPAGE,
        citation=self.CITATION,
        metadata=tfds.core.MetadataDict(metadata),
    )

  def _choose_source(self, manual_dir: epath.Path) -> str:
    npz_path = manual_dir / self.NPZ_FILES[self.builder_config.benchmark]
    if self._source == 'raw' or (self._source == 'auto' and skeleton_files(manual_dir) is not None):
      return 'raw'
    if self._source == 'npz' or npz_path.exists():
      return 'npz'
    entries = sorted(path.name for path in manual_dir.iterdir())
    shown = ', '.join(entries[:8]) + (', ...' if len(entries) > 8 else '') if entries else 'nothing'
    message = (f'{self._label}: found neither .skeleton files nor {npz_path.name} in {manual_dir} (it holds '
               f'{shown}). Expected {self.EXPECTED_LAYOUT}')
    others = [(entry, self.OTHER_DATASET_FILES[entry]) for entry in entries if entry in self.OTHER_DATASET_FILES]
    if others:
      message += (f'. {", ".join(entry for entry, _ in others)} belong(s) to another dataset: build '
                  f'{others[0][1]} from them; {npz_path.name} is missing for {self.name}')
    raise _common.DatasetFormatError(message)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = epath.Path(dl_manager.manual_dir)
    source = self._choose_source(manual_dir)
    self.info.metadata['source'] = source
    if source == 'raw':
      files = skeleton_files(manual_dir)
      ordered = self._raw_split_names(manual_dir, files)
      return {split: self._generate_examples(self._from_skeletons([(name, files[name]) for name in names], split))
              for split, names in ordered.items()}
    return self._npz_splits(manual_dir)

  def _raw_split_names(self, manual_dir: epath.Path,
                       files: dict[str, epath.Path] | None) -> dict[str, list[str]]:
    if files is None:
      raise _common.DatasetFormatError(f'{self.name}: no .skeleton files in {manual_dir / SKELETON_DIR} or '
                                       f'{manual_dir}. Expected {self.EXPECTED_LAYOUT}')
    names = self._check_names(sorted(files), str(manual_dir / SKELETON_DIR))
    missing = self.missing_samples()
    skipped = [name for name in names if name in missing]
    names = [name for name in names if name not in missing]
    _common.logger.warning(
        '%s: skipped %d of %d .skeleton files listed in the official missing-skeleton list '
        '(%d in the full dataset)%s', self.name, len(skipped), len(skipped) + len(names), self.FULL_MISSING_COUNT,
        (': ' + ', '.join(skipped[:10]) + (' ...' if len(skipped) > 10 else '')) if skipped else '')
    self.info.metadata['num_skipped_missing_samples'] = len(skipped)
    self.info.metadata['skipped_missing_samples'] = skipped
    return self._log_split(self._split_order(names), str(manual_dir / SKELETON_DIR))

  def _split_order(self, names: list[str]) -> dict[str, list[str]]:
    return ctrgcn.split_order(names, self.SPLIT_GROUPS[self.builder_config.benchmark])

  def _log_split(self, ordered: dict[str, list[str]], source: str) -> dict[str, list[str]]:
    _common.logger.info('%s: %d train / %d test clips', self._label, len(ordered['train']), len(ordered['test']))
    _common.check_splits_not_empty(ordered, self._label, source, self.builder_config.description)
    return ordered

  def _generate_examples(self, examples):
    """Yields the (key, example) pairs of one split, made by `_from_skeletons` or `_from_npz`."""
    yield from examples

  def _from_skeletons(self, items: list[tuple[str, epath.Path]], split: str):
    for name, path in _common.progress(items, f'{self._label}: {split} .skeleton files'):
      try:
        text = path.read_bytes().decode('ascii')
      except UnicodeDecodeError as e:
        raise _common.DatasetFormatError(f'{path}: not an ASCII .skeleton text file ({e})') from e
      try:
        skeleton, num_bodies = ctrgcn.clip_from_skeleton_text(text)
      except ctrgcn.SkeletonFormatError as e:
        raise _common.DatasetFormatError(f'{path}: {e}') from e
      yield name, self._example(name, skeleton, num_bodies)

  def _sample_names(self, manual_dir: epath.Path) -> tuple[list[str], str]:
    """Names of the available samples in CTR-GCN order, and where they came from."""
    for candidate in self.NAME_LIST_CANDIDATES:
      path = manual_dir / candidate
      if path.exists():
        names = ctrgcn.read_sample_list(path.read_text())
        if not names:
          raise _common.DatasetFormatError(f'{path}: no sample names (SsssCcccPpppRrrrAaaa) found')
        return self._check_names(names, str(path)), str(path)
    files = skeleton_files(manual_dir)
    if files is not None:
      missing = self.missing_samples()
      names = [name for name in self._check_names(sorted(files), str(manual_dir / SKELETON_DIR))
               if name not in missing]
      return names, f'{manual_dir / SKELETON_DIR} minus the missing-skeleton list'
    raise _common.DatasetFormatError(
        f'{self.name}: the npz rows need their sample names: put CTR-GCN\'s skes_available_name.txt '
        f'({self.NAME_LIST_ORIGIN}) into {manual_dir} (or provide the {SKELETON_DIR} folder)')

  def _npz_splits(self, manual_dir: epath.Path):
    path = manual_dir / self.NPZ_FILES[self.builder_config.benchmark]
    if not path.exists():
      raise _common.DatasetFormatError(f'{self._label}: {path} does not exist. Expected {self.EXPECTED_LAYOUT}')
    names, names_source = self._sample_names(manual_dir)
    ordered = self._log_split(self._split_order(names), names_source)
    num_classes = len(self.CLASS_NAMES)
    try:
      arrays = {}
      for split in ('train', 'test'):
        x = npz.load_member(str(path), f'x_{split}')
        y = npz.load_member(str(path), f'y_{split}')
        if x.ndim != 3 or x.shape[2] != 150:
          raise _common.DatasetFormatError(f'{path}: x_{split} should have shape (N, T, 150), got {x.shape}')
        if y.ndim == 2 and y.shape[1] != num_classes:
          raise _common.DatasetFormatError(
              f'{path}: y_{split} has {y.shape[1]} one-hot columns but {self.name} has {num_classes} classes; '
              'is this the npz of the other NTU dataset?')
        try:
          labels = ctrgcn.labels_from_npz(y)
        except ValueError as e:
          raise _common.DatasetFormatError(f'{path}: y_{split}: {e}') from e
        if len(labels) != len(x):
          raise _common.DatasetFormatError(f'{path}: x_{split} has {len(x)} rows but y_{split} has {len(labels)}')
        if len(x) != len(ordered[split]):
          raise _common.DatasetFormatError(
              f'{path}: x_{split} has {len(x)} rows but {names_source} gives {len(ordered[split])} {split} samples '
              f'for {self.builder_config.name}; the npz and the sample names do not belong together')
        expected = np.array([ctrgcn.parse_sample_name(name)['action'] - 1 for name in ordered[split]])
        mismatch = np.flatnonzero(labels != expected)
        if mismatch.size:
          row = int(mismatch[0])
          raise _common.DatasetFormatError(
              f'{path}: y_{split} row {row} has label {labels[row]} but the sample name for that row, '
              f'{ordered[split][row]} (from {names_source}), has label {expected[row]} ({mismatch.size} rows differ)')
        arrays[split] = x
    except npz.NpzError as e:
      raise _common.DatasetFormatError(str(e)) from e
    self.info.metadata['npz_file'] = path.name
    return {split: self._generate_examples(self._from_npz(arrays[split], ordered[split], split, path))
            for split in arrays}

  def _from_npz(self, rows: np.ndarray, names: list[str], split: str, path: epath.Path):
    description = f'{self._label}: {split} rows of {path.name}'
    for index in _common.progress(range(len(names)), description):
      try:
        skeleton, num_bodies = ctrgcn.clip_from_npz_row(rows[index])
      except ValueError as e:
        raise _common.DatasetFormatError(f'{path}: x_{split} row {index} ({names[index]}): {e}') from e
      yield names[index], self._example(names[index], skeleton, num_bodies)

  @staticmethod
  def _example(name: str, skeleton: np.ndarray, num_bodies: int) -> dict[str, Any]:
    ids = ctrgcn.parse_sample_name(name)
    return {
        'skeleton': skeleton,
        'num_bodies': num_bodies,
        'setup': ids['setup'],
        'camera': ids['camera'],
        'performer': ids['performer'],
        'replication': ids['replication'],
        'sample_name': name,
        'label': ids['action'] - 1,
    }
