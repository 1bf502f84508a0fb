"""NTU RGB+D 60 skeletons with the CTR-GCN cleaning, configs `xsub` and `xview`.

Build (either source; both give identical examples for the same clips):
  python -m data_builders.build ntu_rgbd60 --config=xsub --manual_dir=DIR --data_dir=DATA
* raw:  DIR/nturgb+d_skeletons/S001C001P001R001A001.skeleton ... (56,880 files of nturgbd_skeletons_s001_to_s017.zip)
  -> parsed and cleaned like CTR-GCN (`ctrgcn.py`): the 302 samples of the official missing-skeleton list (shipped
  with this package) are skipped and counted, bodies denoised by length / spread / motion, two actor slots ordered
  by motion, centred on actor 1's spine_mid of the first frame;
* npz:  DIR/NTU60_CS.npz (xsub) or DIR/NTU60_CV.npz (xview) made by CTR-GCN's `seq_transformation.py`, plus the
  sample names (`DIR/skes_available_name.txt` from CTR-GCN `data/ntu/statistics/`, or the .skeleton folder) to
  attach names/ids to the rows, whose order is CTR-GCN's. Rows are unpadded (T = 1 + last non-zero frame).
`--source=auto` (default) uses the raw folder when present, else the npz.

Stored per clip: `skeleton` (T, 2, 25, 3) float32 (slot 1 zeros for single-actor clips), `num_bodies` (non-empty
actor slots), setup/camera/performer/replication ids, `sample_name`, `label` (action - 1). Example order = the row
order of CTR-GCN's npz. x-sub: 40,091 train / 16,487 test; x-view: 37,646 / 18,932.

Cost (`python benchmarks/build_datasets.py`, 2-core machine): the 5 fixture clips build in 0.05 s per config and
take 265 KiB (mostly the 128 KiB minimum block of each array_record file). Full NTU60, extrapolated from 300
realistic `.skeleton` files (mean 79 frames, 18 % two-person): parsing + cleaning 3.3 ms and the whole build 4.8 ms
per file, i.e. ~5 min per config from raw files plus reading the text (~14 GiB by the same estimate); 1.4 ms per row
from the npz, i.e. ~1.5 min plus reading the 7-10 GB npz; ~27 KiB per clip (zlib), i.e. ~1.5 GiB per config.
"""

import dataclasses
import importlib.resources
from typing import Any

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from data_builders import _common
from data_builders import skeletons
from data_builders.ntu_rgbd60 import ctrgcn
from data_builders.ntu_rgbd60 import npz

CLASS_NAMES = (
    'drink_water', 'eat_meal_or_snack', 'brushing_teeth', 'brushing_hair', 'drop', 'pickup', 'throw',
    'sitting_down', 'standing_up', 'clapping', 'reading', 'writing', 'tear_up_paper', 'wear_jacket',
    'take_off_jacket', 'wear_a_shoe', 'take_off_a_shoe', 'wear_on_glasses', 'take_off_glasses', 'put_on_a_hat_or_cap',
    'take_off_a_hat_or_cap', 'cheer_up', 'hand_waving', 'kicking_something', 'reach_into_pocket',
    'hopping_one_foot_jumping', 'jump_up', 'make_a_phone_call_or_answer_phone', 'playing_with_phone_or_tablet',
    'typing_on_a_keyboard', 'pointing_to_something_with_finger', 'taking_a_selfie', 'check_time_from_watch',
    'rub_two_hands_together', 'nod_head_or_bow', 'shake_head', 'wipe_face', 'salute', 'put_the_palms_together',
    'cross_hands_in_front_say_stop', 'sneeze_or_cough', 'staggering', 'falling', 'touch_head_headache',
    'touch_chest_stomachache_or_heart_pain', 'touch_back_backache', 'touch_neck_neckache',
    'nausea_or_vomiting_condition', 'use_a_fan_or_feeling_warm', 'punching_or_slapping_other_person',
    'kicking_other_person', 'pushing_other_person', 'pat_on_back_of_other_person',
    'point_finger_at_the_other_person', 'hugging_other_person', 'giving_something_to_other_person',
    'touch_other_persons_pocket', 'handshaking', 'walking_towards_each_other', 'walking_apart_from_each_other',
)
SKELETON_DIR = 'nturgb+d_skeletons'
NPZ_FILES = {'xsub': 'NTU60_CS.npz', 'xview': 'NTU60_CV.npz'}
NAME_LIST_CANDIDATES = ('skes_available_name.txt', 'statistics/skes_available_name.txt')
MISSING_LIST_RESOURCE = 'samples_with_missing_skeletons.txt'
SOURCES = ('auto', 'raw', 'npz')

EXPECTED_LAYOUT = (f'either MANUAL_DIR/{SKELETON_DIR}/S001C001P001R001A001.skeleton ... (raw files), or '
                   'MANUAL_DIR/NTU60_CS.npz (xsub) / MANUAL_DIR/NTU60_CV.npz (xview) with '
                   'MANUAL_DIR/skes_available_name.txt (CTR-GCN files)')
MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
NTU RGB+D 60 must be requested at https://rose1.ntu.edu.sg/dataset/actionRecognition/ . Either
* raw skeletons: download `nturgbd_skeletons_s001_to_s017.zip` and extract it into the manual folder, giving
  MANUAL_DIR/{SKELETON_DIR}/S001C001P001R001A001.skeleton ... (56,880 files; `unzip nturgbd_skeletons_s001_to_s017.zip
  -d MANUAL_DIR`). The official list of the 302 samples with missing skeletons ships with this package.
* or the CTR-GCN preprocessed files: copy `NTU60_CS.npz` (xsub) and/or `NTU60_CV.npz` (xview) from CTR-GCN's
  `data/ntu/` into MANUAL_DIR, together with `skes_available_name.txt` from CTR-GCN's `data/ntu/statistics/` (it
  names the rows).
Then run: python -m data_builders.build ntu_rgbd60 --config=xsub --manual_dir=MANUAL_DIR --data_dir=DATA_DIR
(and again with --config=xview). Add --source=raw or --source=npz to choose when both are present.
"""


def missing_samples() -> frozenset[str]:
  """The 302 NTU RGB+D 60 samples of the official missing-skeleton list (shipped with the package)."""
  text = importlib.resources.files(__package__).joinpath(MISSING_LIST_RESOURCE).read_text()
  return frozenset(ctrgcn.read_sample_list(text))


@dataclasses.dataclass(eq=False)
class NtuRgbd60Config(tfds.core.BuilderConfig):
  """`benchmark`: 'xsub' (split by performer) or 'xview' (split by camera)."""
  benchmark: str = 'xsub'


def _skeleton_files(manual_dir: epath.Path) -> dict[str, epath.Path] | None:
  """{sample name: path} of the .skeleton files, or None when the raw folder is absent."""
  for folder in (manual_dir / SKELETON_DIR, manual_dir):
    if folder.is_dir():
      files = {path.stem: path for path in folder.glob('*.skeleton')}
      if files:
        return files
  return None


def _check_names(names: list[str], where: str) -> list[str]:
  """Valid NTU60 names among `names` (order kept); rejects malformed names, logs NTU120-only ones."""
  bad = [name for name in names if ctrgcn.SAMPLE_NAME_PATTERN.fullmatch(name) is None]
  if bad:
    raise _common.DatasetFormatError(f'{where}: sample name(s) not of the form SsssCcccPpppRrrrAaaa: {bad[:5]}')
  kept = [name for name in names if ctrgcn.is_ntu60_sample(name)]
  if len(kept) < len(names):
    _common.logger.info('ntu_rgbd60: ignoring %d samples of %s outside NTU60 (setup > 17 or action > 60, i.e. the '
                        'NTU120 extension)', len(names) - len(kept), where)
  return kept


class NtuRgbd60(tfds.core.GeneratorBasedBuilder):
  """NTU RGB+D 60, CTR-GCN-cleaned skeletons (T, 2, 25, 3), from raw .skeleton files or CTR-GCN npz files."""

  name = 'ntu_rgbd60'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: CTR-GCN cleaning, raw and npz sources.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      NtuRgbd60Config(name='xsub', benchmark='xsub', description='cross-subject: train performers '
                      + ', '.join(map(str, ctrgcn.XSUB_TRAIN_PERFORMERS))),
      NtuRgbd60Config(name='xview', benchmark='xview', description='cross-view: train cameras 2, 3; test camera 1'),
  ]

  def __init__(self, *, source: str = 'auto', **kwargs):
    """`source`: 'raw' (.skeleton files), 'npz' (CTR-GCN npz) or 'auto' (raw when present, else npz)."""
    if source not in SOURCES:
      raise ValueError(f'ntu_rgbd60: unknown source {source!r}; expected one of {SOURCES}')
    self._source = source
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    metadata = skeletons.layout_metadata(skeletons.KINECT_V2_JOINTS, skeletons.KINECT_V2_EDGES)
    metadata.update({
        'class_names': list(CLASS_NAMES),
        'num_classes': len(CLASS_NAMES),
        'two_person_labels': list(range(49, 60)),
        'benchmark': self.builder_config.benchmark,
        'split_rule': {
            'xsub': {'train_performers': list(ctrgcn.XSUB_TRAIN_PERFORMERS),
                     'test_performers': list(ctrgcn.XSUB_TEST_PERFORMERS)},
            'xview': {'train_cameras': list(ctrgcn.XVIEW_TRAIN_CAMERAS),
                      'test_cameras': list(ctrgcn.XVIEW_TEST_CAMERAS)},
        }[self.builder_config.benchmark],
        'coordinates': ('Kinect v2 camera space, metres, centred on actor 1 spine_mid (joint 1) of the first frame; '
                        'CTR-GCN denoising; frames of an absent actor are zeros'),
        'skeleton_layout': '(T, 2, 25, 3) = (frame, actor slot, joint, (x, y, z)); unpadded',
        'expected_full_sizes': {'xsub': [40091, 16487], 'xview': [37646, 18932]}[self.builder_config.benchmark],
    })
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            'skeleton': tfds.features.Tensor(shape=(None, 2, ctrgcn.NUM_JOINTS, 3), dtype=np.float32,
                                             encoding='zlib'),
            'num_bodies': np.int32,
            'setup': np.int32,
            'camera': np.int32,
            'performer': np.int32,
            'replication': np.int32,
            'sample_name': tfds.features.Text(),
            'label': tfds.features.ClassLabel(names=CLASS_NAMES),
        }),
        supervised_keys=('skeleton', 'label'),
        disable_shuffling=True,
        homepage='https://rose1.ntu.edu.sg/dataset/actionRecognition/',
        citation=('@inproceedings{shahroudy2016ntu, title={NTU RGB+D: A Large Scale Dataset for 3D Human Activity '
                  'Analysis}, author={Shahroudy, Amir and Liu, Jun and Ng, Tian-Tsong and Wang, Gang}, '
                  'booktitle={CVPR}, year={2016}}'),
        metadata=tfds.core.MetadataDict(metadata),
    )

  def _choose_source(self, manual_dir: epath.Path) -> str:
    npz_path = manual_dir / NPZ_FILES[self.builder_config.benchmark]
    if self._source == 'raw' or (self._source == 'auto' and _skeleton_files(manual_dir) is not None):
      return 'raw'
    if self._source == 'npz' or npz_path.exists():
      return 'npz'
    entries = sorted(path.name for path in manual_dir.iterdir())
    shown = ', '.join(entries[:8]) + (', ...' if len(entries) > 8 else '') if entries else 'nothing'
    raise _common.DatasetFormatError(f'ntu_rgbd60/{self.builder_config.name}: found neither .skeleton files nor '
                                     f'{npz_path.name} in {manual_dir} (it holds {shown}). Expected {EXPECTED_LAYOUT}')

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = epath.Path(dl_manager.manual_dir)
    source = self._choose_source(manual_dir)
    self.info.metadata['source'] = source
    if source == 'raw':
      files = _skeleton_files(manual_dir)
      ordered = self._raw_split_names(manual_dir, files)
      return {split: self._generate_examples(self._from_skeletons([(name, files[name]) for name in names], split))
              for split, names in ordered.items()}
    return self._npz_splits(manual_dir)

  def _raw_split_names(self, manual_dir: epath.Path,
                       files: dict[str, epath.Path] | None) -> dict[str, list[str]]:
    if files is None:
      raise _common.DatasetFormatError(f'ntu_rgbd60: no .skeleton files in {manual_dir / SKELETON_DIR} or '
                                       f'{manual_dir}. Expected {EXPECTED_LAYOUT}')
    names = _check_names(sorted(files), str(manual_dir / SKELETON_DIR))
    missing = missing_samples()
    skipped = [name for name in names if name in missing]
    names = [name for name in names if name not in missing]
    _common.logger.warning(
        'ntu_rgbd60: skipped %d of %d .skeleton files listed in the official missing-skeleton list '
        '(302 in the full dataset)%s', len(skipped), len(skipped) + len(names),
        (': ' + ', '.join(skipped[:10]) + (' ...' if len(skipped) > 10 else '')) if skipped else '')
    self.info.metadata['num_skipped_missing_samples'] = len(skipped)
    self.info.metadata['skipped_missing_samples'] = skipped
    return self._log_split(ctrgcn.ctrgcn_split_order(names, self.builder_config.benchmark),
                           str(manual_dir / SKELETON_DIR))

  def _log_split(self, ordered: dict[str, list[str]], source: str) -> dict[str, list[str]]:
    _common.logger.info('ntu_rgbd60/%s: %d train / %d test clips', self.builder_config.name, len(ordered['train']),
                        len(ordered['test']))
    _common.check_splits_not_empty(ordered, f'ntu_rgbd60/{self.builder_config.name}', source,
                                   self.builder_config.description)
    return ordered

  def _generate_examples(self, examples):
    """Yields the (key, example) pairs of one split, made by `_from_skeletons` or `_from_npz`."""
    yield from examples

  def _from_skeletons(self, items: list[tuple[str, epath.Path]], split: str):
    for name, path in _common.progress(items, f'ntu_rgbd60/{self.builder_config.name}: {split} .skeleton files'):
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
    for candidate in NAME_LIST_CANDIDATES:
      path = manual_dir / candidate
      if path.exists():
        names = ctrgcn.read_sample_list(path.read_text())
        if not names:
          raise _common.DatasetFormatError(f'{path}: no sample names (SsssCcccPpppRrrrAaaa) found')
        return _check_names(names, str(path)), str(path)
    files = _skeleton_files(manual_dir)
    if files is not None:
      missing = missing_samples()
      names = [name for name in _check_names(sorted(files), str(manual_dir / SKELETON_DIR)) if name not in missing]
      return names, f'{manual_dir / SKELETON_DIR} minus the missing-skeleton list'
    raise _common.DatasetFormatError(
        f'ntu_rgbd60: the npz rows need their sample names: put CTR-GCN\'s skes_available_name.txt '
        f'(data/ntu/statistics/) into {manual_dir} (or provide the {SKELETON_DIR} folder)')

  def _npz_splits(self, manual_dir: epath.Path):
    path = manual_dir / NPZ_FILES[self.builder_config.benchmark]
    if not path.exists():
      raise _common.DatasetFormatError(f'ntu_rgbd60/{self.builder_config.name}: {path} does not exist. '
                                       f'Expected {EXPECTED_LAYOUT}')
    names, names_source = self._sample_names(manual_dir)
    ordered = self._log_split(ctrgcn.ctrgcn_split_order(names, self.builder_config.benchmark), names_source)
    try:
      arrays = {}
      for split in ('train', 'test'):
        x = npz.load_member(str(path), f'x_{split}')
        y = npz.load_member(str(path), f'y_{split}')
        if x.ndim != 3 or x.shape[2] != 150:
          raise _common.DatasetFormatError(f'{path}: x_{split} should have shape (N, T, 150), got {x.shape}')
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
    description = f'ntu_rgbd60/{self.builder_config.name}: {split} rows of {path.name}'
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
