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

import tensorflow_datasets as tfds

from data_builders import _common
from data_builders import _ntu
from data_builders.ntu_rgbd60 import ctrgcn

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
SKELETON_DIR = _ntu.SKELETON_DIR
NPZ_FILES = {'xsub': 'NTU60_CS.npz', 'xview': 'NTU60_CV.npz'}
NAME_LIST_CANDIDATES = ('skes_available_name.txt', 'statistics/skes_available_name.txt')
MISSING_LIST_RESOURCE = 'samples_with_missing_skeletons.txt'
SOURCES = _ntu.SOURCES

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
class NtuRgbd60Config(_ntu.NtuConfig):
  """`benchmark`: 'xsub' (split by performer) or 'xview' (split by camera)."""
  benchmark: str = 'xsub'


NTU120_FILES = {'NTU120_CSub.npz': 'ntu_rgbd120', 'NTU120_CSet.npz': 'ntu_rgbd120'}


class NtuRgbd60(_ntu.NtuSkeletonBuilder):
  """NTU RGB+D 60, CTR-GCN-cleaned skeletons (T, 2, 25, 3), from raw .skeleton files or CTR-GCN npz files."""

  name = 'ntu_rgbd60'
  VERSION = tfds.core.Version('1.0.1')
  SUPPORTED_VERSIONS = [tfds.core.Version('1.0.0')]  # readable; only VERSION is built
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: CTR-GCN cleaning, raw and npz sources.',
      '1.0.1': ('Metadata: `edges` are the ntu25 tree of cascadeformer_jax.data.layouts (CTR-GCN pairs, root '
                'spine_shoulder), the tree of the bone features; examples identical to 1.0.0.'),
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      NtuRgbd60Config(name='xsub', benchmark='xsub', description='cross-subject: train performers '
                      + ', '.join(map(str, ctrgcn.XSUB_TRAIN_PERFORMERS))),
      NtuRgbd60Config(name='xview', benchmark='xview', description='cross-view: train cameras 2, 3; test camera 1'),
  ]
  DESCRIPTION = __doc__
  CLASS_NAMES = CLASS_NAMES
  TWO_PERSON_LABELS = tuple(range(49, 60))
  NPZ_FILES = NPZ_FILES
  SPLIT_GROUPS = {benchmark: ctrgcn.split_groups(benchmark) for benchmark in ctrgcn.BENCHMARKS}
  SPLIT_RULES = {
      'xsub': {'train_performers': list(ctrgcn.XSUB_TRAIN_PERFORMERS),
               'test_performers': list(ctrgcn.XSUB_TEST_PERFORMERS)},
      'xview': {'train_cameras': list(ctrgcn.XVIEW_TRAIN_CAMERAS), 'test_cameras': list(ctrgcn.XVIEW_TEST_CAMERAS)},
  }
  EXPECTED_FULL_SIZES = {'xsub': [40091, 16487], 'xview': [37646, 18932]}
  EXPECTED_LAYOUT = EXPECTED_LAYOUT
  NAME_LIST_ORIGIN = 'data/ntu/statistics/'
  NAME_LIST_CANDIDATES = NAME_LIST_CANDIDATES
  FULL_MISSING_COUNT = 302
  OTHER_DATASET_FILES = NTU120_FILES
  CITATION = ('@inproceedings{shahroudy2016ntu, title={NTU RGB+D: A Large Scale Dataset for 3D Human Activity '
              'Analysis}, author={Shahroudy, Amir and Liu, Jun and Ng, Tian-Tsong and Wang, Gang}, '
              'booktitle={CVPR}, year={2016}}')
  missing_samples = staticmethod(missing_samples)

  def _select_names(self, names: list[str], where: str) -> list[str]:
    """Valid NTU60 names among `names` (order kept); logs NTU120-only ones, refuses a folder of only those."""
    kept = [name for name in names if ctrgcn.is_ntu60_sample(name)]
    if names and not kept:
      raise _common.DatasetFormatError(
          f'{where}: all {len(names)} samples belong to the NTU RGB+D 120 extension (setups S018-S032 or actions '
          'A061-A120); the NTU RGB+D 60 samples (setups S001-S017, nturgbd_skeletons_s001_to_s017.zip) are missing. '
          'Build ntu_rgbd120 from a folder holding both parts')
    if len(kept) < len(names):
      _common.logger.info('ntu_rgbd60: ignoring %d samples of %s outside NTU60 (setup > 17 or action > 60, i.e. the '
                          'NTU120 extension)', len(names) - len(kept), where)
    return kept
