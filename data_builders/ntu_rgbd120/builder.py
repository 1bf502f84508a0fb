"""NTU RGB+D 120 skeletons with the CTR-GCN cleaning, configs `xsub` and `xset`.

Build (either source; both give identical examples for the same clips):
  python -m data_builders.build ntu_rgbd120 --config=xsub --manual_dir=DIR --data_dir=DATA
* raw:  DIR/nturgb+d_skeletons/S001C001P001R001A001.skeleton ... S032C003P106R002A120.skeleton (114,480 files: both
  nturgbd_skeletons_s001_to_s017.zip and nturgbd_skeletons_s018_to_s032.zip extracted into the same folder) -> parsed
  and cleaned exactly as ntu_rgbd60 (CTR-GCN's `data/ntu120` scripts are those of `data/ntu`); the 535 samples of
  the official NTU120 missing-skeleton list (shipped with this package; it contains the 302 of NTU60) are skipped;
* npz:  DIR/NTU120_CSub.npz (xsub) or DIR/NTU120_CSet.npz (xset) made by CTR-GCN's `data/ntu120/seq_transformation.py`,
  plus the sample names (`DIR/skes_available_name.txt` from CTR-GCN `data/ntu120/statistics/`, or the .skeleton
  folder). Rows are unpadded (T = 1 + last non-zero frame).
`--source=auto` (default) uses the raw folder when present, else the npz.

Splits (CTR-GCN order): x-sub trains on 53 of the 106 performers, x-set on the even setup ids (S002, ..., S032) and
tests on the odd ones. Stored per clip as ntu_rgbd60: `skeleton` (T, 2, 25, 3) float32, `num_bodies`,
setup/camera/performer/replication ids, `sample_name`, `label` (action - 1, 0-119). Actions A050-A060 and A106-A120
(labels 49-59, 105-119) are two-person actions. The metadata also holds the official one-shot protocol (20
evaluation classes and their exemplars; the other 100 classes are the auxiliary training set).
"""

import dataclasses
import importlib.resources
import json
import re

import tensorflow_datasets as tfds

from data_builders import _common
from data_builders import _ntu
from data_builders.ntu_rgbd60 import ctrgcn

MISSING_LIST_RESOURCE = 'samples_with_missing_skeletons.txt'
CLASS_NAMES_RESOURCE = 'class_names.txt'
ONE_SHOT_RESOURCE = 'one_shot_protocol.json'
NPZ_FILES = {'xsub': 'NTU120_CSub.npz', 'xset': 'NTU120_CSet.npz'}
NUM_SETUPS = 32
NUM_PERFORMERS = 106
NUM_ACTIONS = 120
XSUB_TRAIN_PERFORMERS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49,
                         50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93,
                         94, 95, 97, 98, 100, 103)
XSUB_TEST_PERFORMERS = tuple(p for p in range(1, NUM_PERFORMERS + 1) if p not in XSUB_TRAIN_PERFORMERS)
XSET_TRAIN_SETUPS = tuple(range(2, NUM_SETUPS + 1, 2))
XSET_TEST_SETUPS = tuple(range(1, NUM_SETUPS + 1, 2))
SPLIT_GROUPS = {
    'xsub': {'train': ('performer', XSUB_TRAIN_PERFORMERS), 'test': ('performer', XSUB_TEST_PERFORMERS)},
    'xset': {'train': ('setup', XSET_TRAIN_SETUPS), 'test': ('setup', XSET_TEST_SETUPS)},
}
TWO_PERSON_LABELS = tuple(range(49, 60)) + tuple(range(105, 120))

EXPECTED_LAYOUT = (f'either MANUAL_DIR/{_ntu.SKELETON_DIR}/S001C001P001R001A001.skeleton ... S032C003P106R002A120'
                   '.skeleton (raw files of setups S001-S032), or MANUAL_DIR/NTU120_CSub.npz (xsub) / '
                   'MANUAL_DIR/NTU120_CSet.npz (xset) with MANUAL_DIR/skes_available_name.txt (CTR-GCN files)')
MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
NTU RGB+D 120 must be requested at https://rose1.ntu.edu.sg/dataset/actionRecognition/ . Either
* raw skeletons: extract both `nturgbd_skeletons_s001_to_s017.zip` (the NTU RGB+D 60 part) and
  `nturgbd_skeletons_s018_to_s032.zip` (the extension) into the manual folder, giving
  MANUAL_DIR/{_ntu.SKELETON_DIR}/S001C001P001R001A001.skeleton ... (114,480 files). The official list of the 535
  samples with missing skeletons ships with this package.
* or the CTR-GCN preprocessed files: copy `NTU120_CSub.npz` (xsub) and/or `NTU120_CSet.npz` (xset) from CTR-GCN's
  `data/ntu120/` into MANUAL_DIR, together with `skes_available_name.txt` from CTR-GCN's `data/ntu120/statistics/`.
Then run: python -m data_builders.build ntu_rgbd120 --config=xsub --manual_dir=MANUAL_DIR --data_dir=DATA_DIR
(and again with --config=xset). Add --source=raw or --source=npz to choose when both are present.
"""


def _read_resource(name: str) -> str:
  return importlib.resources.files(__package__).joinpath(name).read_text(encoding='utf-8')


def missing_samples() -> frozenset[str]:
  """The 535 NTU RGB+D 120 samples of the official missing-skeleton list (shipped with the package)."""
  return frozenset(ctrgcn.read_sample_list(_read_resource(MISSING_LIST_RESOURCE)))


def _snake_case(description: str) -> str:
  """'eat meal/snack' -> 'eat_meal_or_snack' (the NTU60 builder's naming)."""
  text = description.lower().replace('/', ' or ').replace("'", '').replace('\u2019', '')
  return '_'.join(re.findall(r'[a-z0-9]+', text))


def _class_descriptions() -> tuple[str, ...]:
  """The official action names A001-A120 of the packaged `class_names.txt` (tab-separated code and name)."""
  rows = [line.split('\t', 1) for line in _read_resource(CLASS_NAMES_RESOURCE).splitlines() if line.strip()]
  codes = [code for code, _ in rows]
  if codes != [f'A{a:03d}' for a in range(1, NUM_ACTIONS + 1)]:
    raise RuntimeError(f'{CLASS_NAMES_RESOURCE}: expected codes A001-A120 in order')
  return tuple(name.strip() for _, name in rows)


CLASS_DESCRIPTIONS = _class_descriptions()
CLASS_NAMES = tuple(_snake_case(description) for description in CLASS_DESCRIPTIONS)


def one_shot_protocol() -> dict[str, list]:
  """The official one-shot protocol: {'evaluation_classes': 20 action ids (1-based), 'exemplars': 20 sample names,
  'evaluation_labels': 0-based labels, 'auxiliary_labels': the other 100 labels}."""
  protocol = json.loads(_read_resource(ONE_SHOT_RESOURCE))
  evaluation = [int(action) for action in protocol['evaluation_classes']]
  labels = [action - 1 for action in evaluation]
  return {'evaluation_classes': evaluation, 'exemplars': list(protocol['exemplars']), 'evaluation_labels': labels,
          'auxiliary_labels': [label for label in range(NUM_ACTIONS) if label not in labels]}


def is_ntu120_sample(name: str) -> bool:
  ids = ctrgcn.parse_sample_name(name)
  return 1 <= ids['setup'] <= NUM_SETUPS and 1 <= ids['action'] <= NUM_ACTIONS


@dataclasses.dataclass(eq=False)
class NtuRgbd120Config(_ntu.NtuConfig):
  """`benchmark`: 'xsub' (split by performer) or 'xset' (split by setup id parity)."""
  benchmark: str = 'xsub'


class NtuRgbd120(_ntu.NtuSkeletonBuilder):
  """NTU RGB+D 120, CTR-GCN-cleaned skeletons (T, 2, 25, 3), from raw .skeleton files or CTR-GCN npz files."""

  name = 'ntu_rgbd120'
  VERSION = tfds.core.Version('1.0.1')
  SUPPORTED_VERSIONS = [tfds.core.Version('1.0.0')]  # readable; only VERSION is built
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: CTR-GCN cleaning, raw and npz sources, one-shot protocol metadata.',
      '1.0.1': ('Metadata: `edges` are the ntu25 tree of cascadeformer_jax.data.layouts (CTR-GCN pairs, root '
                'spine_shoulder), the tree of the bone features; examples identical to 1.0.0.'),
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      NtuRgbd120Config(name='xsub', benchmark='xsub', description='cross-subject: train performers '
                       + ', '.join(map(str, XSUB_TRAIN_PERFORMERS))),
      NtuRgbd120Config(name='xset', benchmark='xset', description='cross-setup: train even setup ids, test odd'),
  ]
  DESCRIPTION = __doc__
  CLASS_NAMES = CLASS_NAMES
  TWO_PERSON_LABELS = TWO_PERSON_LABELS
  NPZ_FILES = NPZ_FILES
  SPLIT_GROUPS = SPLIT_GROUPS
  SPLIT_RULES = {
      'xsub': {'train_performers': list(XSUB_TRAIN_PERFORMERS), 'test_performers': list(XSUB_TEST_PERFORMERS)},
      'xset': {'train_setups': list(XSET_TRAIN_SETUPS), 'test_setups': list(XSET_TEST_SETUPS)},
  }
  # Counts of the literature (CTR-GCN): 113,945 samples after removing the 535.
  EXPECTED_FULL_SIZES = {'xsub': [63026, 50919], 'xset': [54468, 59477]}
  EXPECTED_LAYOUT = EXPECTED_LAYOUT
  NAME_LIST_ORIGIN = 'data/ntu120/statistics/'
  FULL_MISSING_COUNT = 535
  OTHER_DATASET_FILES = {'NTU60_CS.npz': 'ntu_rgbd60', 'NTU60_CV.npz': 'ntu_rgbd60'}
  CITATION = ('@article{liu2019ntu, title={NTU RGB+D 120: A Large-Scale Benchmark for 3D Human Activity '
              'Understanding}, author={Liu, Jun and Shahroudy, Amir and Perez, Mauricio and Wang, Gang and Duan, '
              'Ling-Yu and Kot, Alex C.}, journal={IEEE TPAMI}, year={2020}}')
  missing_samples = staticmethod(missing_samples)

  def _extra_metadata(self):
    return {'class_descriptions': list(CLASS_DESCRIPTIONS), 'one_shot_protocol': one_shot_protocol()}

  def _select_names(self, names: list[str], where: str) -> list[str]:
    """NTU120 names among `names`; refuses a folder that holds only one of the two parts (S001-S017, S018-S032)."""
    kept = [name for name in names if is_ntu120_sample(name)]
    if len(kept) < len(names):
      _common.logger.info('ntu_rgbd120: ignoring %d samples of %s outside NTU120 (setup > 32 or action > 120)',
                          len(names) - len(kept), where)
    setups = {ctrgcn.parse_sample_name(name)['setup'] for name in kept}
    if kept and max(setups) <= ctrgcn.NTU60_MAX_SETUP:
      raise _common.DatasetFormatError(
          f'{where}: all {len(kept)} samples are NTU RGB+D 60 samples (setups S001-S017); the NTU120 extension '
          '(setups S018-S032, nturgbd_skeletons_s018_to_s032.zip, actions A061-A120) is missing. '
          'Build ntu_rgbd60 for NTU RGB+D 60 alone')
    if kept and min(setups) > ctrgcn.NTU60_MAX_SETUP:
      raise _common.DatasetFormatError(
          f'{where}: all {len(kept)} samples are from the NTU120 extension (setups S018-S032); the NTU RGB+D 60 '
          'part (setups S001-S017, nturgbd_skeletons_s001_to_s017.zip) is missing')
    return kept
