"""Northwestern-UCLA Multiview Action3D (N-UCLA) from the per-sample `all_sqe/*.json` files of CTR-GCN/SkateFormer.

Build:
  python -m data_builders.build n_ucla --manual_dir=DIR --data_dir=DATA
with `DIR/all_sqe/aAA_sSS_eEE_vVV.json` (1484 files; `DIR` itself holding the .json files also works).

Each file holds `skeletons`: a (T, 20, 3) list of Kinect v1 camera coordinates in metres. They are stored unchanged
(float32, native joint order, no centring). Action, subject, episode and view come from the file name; an optional
`label` key (1-based) must agree with the action id. Cross-view split: train = views 1 and 2 (1020 clips), test =
view 3 (464 clips).

Cost (`python benchmarks/build_datasets.py`, 2-core machine): the 4 fixture clips build in 0.04 s and take 261 KiB
(mostly the 128 KiB minimum block of each array_record file). The full dataset stores 240 bytes per frame: about
13 MiB for its ~58k frames (mean lengths 43 / 31 frames), built in seconds.
"""

import json
import re
from typing import Any

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from data_builders import _common

ACTION_IDS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
CLASS_NAMES = (
    'pick_up_with_one_hand', 'pick_up_with_two_hands', 'drop_trash', 'walk_around', 'sit_down', 'stand_up',
    'donning', 'doffing', 'throw', 'carry',
)
NUM_JOINTS = 20
TRAIN_VIEWS = (1, 2)
TEST_VIEWS = (3,)
SAMPLE_NAME_PATTERN = re.compile(r'a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})')

EXPECTED_LAYOUT = 'MANUAL_DIR/all_sqe/a01_s01_e00_v01.json ... (one JSON file per sample)'
MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Download `all_sqe.zip` (the N-UCLA skeletons prepared by CTR-GCN; linked from the CTR-GCN README,
https://github.com/Uason-Chen/CTR-GCN#northwestern-ucla) and extract it into the manual folder:
  {EXPECTED_LAYOUT}
(`unzip all_sqe.zip -d MANUAL_DIR`). Then run:
  python -m data_builders.build n_ucla --manual_dir=MANUAL_DIR --data_dir=DATA_DIR
"""


def parse_sample_name(name: str) -> dict[str, int]:
  """'a05_s04_e02_v03' -> {'action': 5, 'subject': 4, 'episode': 2, 'view': 3} (raises ValueError)."""
  match = SAMPLE_NAME_PATTERN.fullmatch(name)
  if match is None:
    raise ValueError(f'sample name {name!r} does not look like aAA_sSS_eEE_vVV')
  action, subject, episode, view = (int(group) for group in match.groups())
  return {'action': action, 'subject': subject, 'episode': episode, 'view': view}


def read_sample_file(path: epath.PathLike) -> tuple[str, dict[str, Any]]:
  """Reads one `all_sqe/aAA_sSS_eEE_vVV.json` file.

  Returns:
    (split, example) with `skeleton` (T, 20, 3) float32, `view`, `subject`, `episode` (int), `sample_name` and
    `label` (index into CLASS_NAMES).

  Raises:
    DatasetFormatError: bad file name, unknown action or view, unreadable JSON, missing/malformed `skeletons`,
      `label` disagreeing with the file name.
  """
  path = epath.Path(path)
  sample_name = path.stem
  try:
    ids = parse_sample_name(sample_name)
  except ValueError as e:
    raise _common.DatasetFormatError(f'{path}: {e}') from e
  if ids['action'] not in ACTION_IDS:
    raise _common.DatasetFormatError(f'{path}: action id a{ids["action"]:02d} is not one of the 10 N-UCLA actions '
                                     f'{["a%02d" % a for a in ACTION_IDS]}')
  if ids['view'] not in TRAIN_VIEWS + TEST_VIEWS:
    raise _common.DatasetFormatError(f'{path}: view v{ids["view"]:02d} is not 1, 2 or 3')
  label = ACTION_IDS.index(ids['action'])

  try:
    content = json.loads(path.read_text())
  except (ValueError, UnicodeDecodeError) as e:
    raise _common.DatasetFormatError(f'{path}: not valid JSON ({e})') from e
  if not isinstance(content, dict) or 'skeletons' not in content:
    found = sorted(content) if isinstance(content, dict) else type(content).__name__
    raise _common.DatasetFormatError(f'{path}: expected a JSON object with key "skeletons", found {found}')
  try:
    skeleton = np.asarray(content['skeletons'], dtype=np.float64)
  except (ValueError, TypeError) as e:
    raise _common.DatasetFormatError(f'{path}: "skeletons" is not a (T, 20, 3) numeric array ({e})') from e
  if skeleton.ndim != 3 or skeleton.shape[1:] != (NUM_JOINTS, 3) or skeleton.shape[0] == 0:
    raise _common.DatasetFormatError(f'{path}: "skeletons" should have shape (T >= 1, 20, 3), got {skeleton.shape}')
  if not np.all(np.isfinite(skeleton)):
    raise _common.DatasetFormatError(f'{path}: "skeletons" contains NaN or infinite values')
  if 'label' in content:
    file_label = content['label']
    if isinstance(file_label, bool) or not isinstance(file_label, (int, float)) or file_label != label + 1:
      raise _common.DatasetFormatError(f'{path}: "label" is {file_label!r} but the file name says action '
                                       f'a{ids["action"]:02d} (label {label + 1}, 1-based)')

  example = {
      'skeleton': skeleton.astype(np.float32),
      'view': ids['view'],
      'subject': ids['subject'],
      'episode': ids['episode'],
      'sample_name': sample_name,
      'label': label,
  }
  return ('train' if ids['view'] in TRAIN_VIEWS else 'test'), example


class NUcla(tfds.core.GeneratorBasedBuilder):
  """N-UCLA skeletons (T, 20, 3) in the native Kinect v1 joint order, cross-view split."""

  name = 'n_ucla'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release: all_sqe JSON files, cross-view split.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    metadata = _common.layout_metadata('nucla20')
    metadata.update({
        'class_names': list(CLASS_NAMES),
        'num_classes': len(CLASS_NAMES),
        'action_ids': [f'a{a:02d}' for a in ACTION_IDS],
        'coordinates': 'Kinect v1 camera space, metres, native joint order (not reordered, not centred)',
        'skeleton_layout': '(T, 20, 3) = (frame, joint, (x, y, z))',
        'split_rule': 'cross-view: train = views 1, 2 (1020), test = view 3 (464)',
    })
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            'skeleton': tfds.features.Tensor(shape=(None, NUM_JOINTS, 3), dtype=np.float32),
            'view': np.int32,
            'subject': np.int32,
            'episode': np.int32,
            'sample_name': tfds.features.Text(),
            'label': tfds.features.ClassLabel(names=CLASS_NAMES),
        }),
        supervised_keys=('skeleton', 'label'),
        disable_shuffling=True,
        homepage='https://wangjiangb.github.io/my_data.html',
        citation=('@inproceedings{wang2014cross, title={Cross-view Action Modeling, Learning and Recognition}, '
                  'author={Wang, Jiang and Nie, Xiaohan and Xia, Yin and Wu, Ying and Zhu, Song-Chun}, '
                  'booktitle={CVPR}, year={2014}}'),
        metadata=tfds.core.MetadataDict(metadata),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    folder, files = _common.find_files(dl_manager.manual_dir, ('all_sqe', ''), '*.json', 'n_ucla', EXPECTED_LAYOUT)
    splits: dict[str, list[dict[str, Any]]] = {'train': [], 'test': []}
    for path in _common.progress(files, 'n_ucla: reading all_sqe/*.json'):
      split, example = read_sample_file(path)
      splits[split].append(example)
    _common.logger.info('n_ucla: %d train / %d test clips (full dataset: 1020 / 464)', len(splits['train']),
                        len(splits['test']))
    _common.check_splits_not_empty(splits, 'n_ucla', str(folder), 'views 1, 2 -> train, view 3 -> test')
    return {split: self._generate_examples(examples, split) for split, examples in splits.items()}

  def _generate_examples(self, examples: list[dict[str, Any]], split: str):
    for example in _common.progress(examples, f'n_ucla: writing {split}'):
      yield example['sample_name'], example
