"""Penn Action (2326 videos, 13 2D joints, 15 classes) from the per-video `labels/NNNN.mat` files.

Build:
  python -m data_builders.build penn_action --manual_dir=DIR --data_dir=DATA
with `DIR/Penn_Action/labels/0001.mat ... 2326.mat` (the frames are not needed).

Every clip keeps the raw annotation: pixel coordinates in the native Penn joint order, the visibility flags (occluded
joints are *not* zeroed here; that belongs to the input pipeline), the per-frame boxes and the image size. The split
follows the `train` field of each file (1 = train, -1 = test): 1258 / 1068 clips.

Cost (`python benchmarks/build_datasets.py`, 2-core machine): the 3 fixture clips build in 0.1 s and take 261 KiB
(two array_record files of the 128 KiB minimum block plus ~5 KiB of metadata). The full dataset stores 133 bytes per
frame: about 21 MiB for ~163k frames (assuming ~70 frames per video), built in well under a minute.
"""

from typing import Any

from etils import epath
import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from data_builders import _common

CLASS_NAMES = (
    'baseball_pitch', 'baseball_swing', 'bench_press', 'bowl', 'clean_and_jerk', 'golf_swing', 'jump_rope',
    'jumping_jacks', 'pullup', 'pushup', 'situp', 'squat', 'strum_guitar', 'tennis_forehand', 'tennis_serve',
)
NUM_JOINTS = 13
REQUIRED_FIELDS = ('action', 'pose', 'x', 'y', 'visibility', 'train', 'bbox', 'dimensions')

EXPECTED_LAYOUT = 'MANUAL_DIR/Penn_Action/labels/0001.mat ... 2326.mat'
MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Download Penn_Action.tar.gz from the Penn Action page (https://dreamdragon.github.io/PennAction/) and extract it
into the manual folder, so that the label files are at
  {EXPECTED_LAYOUT}
(`tar -xzf Penn_Action.tar.gz -C MANUAL_DIR`; only `Penn_Action/labels/` is read, the frames may be deleted).
Then run: python -m data_builders.build penn_action --manual_dir=MANUAL_DIR --data_dir=DATA_DIR
"""


def _text_field(mat: dict[str, Any], key: str, path: epath.Path) -> str:
  value = np.asarray(mat[key])
  if value.dtype.kind != 'U' or value.size != 1:
    raise _common.DatasetFormatError(f'{path}: field {key!r} should be a MATLAB char string, got '
                                     f'{value.dtype} array of shape {value.shape}')
  return str(value.reshape(-1)[0]).strip()


def _scalar_field(mat: dict[str, Any], key: str, path: epath.Path) -> float:
  value = np.asarray(mat[key])
  if value.size != 1 or value.dtype.kind not in 'fiub':
    raise _common.DatasetFormatError(f'{path}: field {key!r} should be a numeric scalar, got {value.dtype} array '
                                     f'of shape {value.shape}')
  return float(value.reshape(-1)[0])


def _matrix_field(mat: dict[str, Any], key: str, columns: int, path: epath.Path) -> np.ndarray:
  value = np.asarray(mat[key])
  if value.dtype.kind not in 'fiub':
    raise _common.DatasetFormatError(f'{path}: field {key!r} should be numeric, got dtype {value.dtype}')
  if value.size == 0:
    return np.zeros((0, columns), value.dtype)
  if value.ndim != 2 or value.shape[1] != columns:
    raise _common.DatasetFormatError(f'{path}: field {key!r} should have shape (T, {columns}), got {value.shape}')
  return value


def read_label_file(path: epath.PathLike) -> tuple[str, dict[str, Any]]:
  """Reads one `labels/NNNN.mat` file.

  Args:
    path: the .mat file.

  Returns:
    (split, example): split is 'train' or 'test'; the example has `skeleton` (T, 13, 2) float32 pixels (x, y),
    `visibility` (T, 13) bool, `bbox` (N, 4) float32, `image_size` (2,) int32 = (H, W), `pose`, `video_id` and
    `label` (index into CLASS_NAMES).

  Raises:
    DatasetFormatError: unreadable/truncated file, missing or malformed field, unknown action, bad `train` value.
  """
  path = epath.Path(path)
  try:
    with path.open('rb') as f:
      mat = scipy.io.loadmat(f)
  except Exception as e:  # scipy raises many types for truncated/garbled files.
    raise _common.DatasetFormatError(f'{path}: cannot read as a MATLAB .mat file ({type(e).__name__}: {e})') from e
  missing = [key for key in REQUIRED_FIELDS if key not in mat]
  if missing:
    found = sorted(key for key in mat if not key.startswith('__'))
    raise _common.DatasetFormatError(f'{path}: missing field(s) {missing}; found {found}')

  action = _text_field(mat, 'action', path)
  if action not in CLASS_NAMES:
    raise _common.DatasetFormatError(f'{path}: unknown action {action!r}; expected one of {list(CLASS_NAMES)}')
  pose = _text_field(mat, 'pose', path)
  x = _matrix_field(mat, 'x', NUM_JOINTS, path)
  y = _matrix_field(mat, 'y', NUM_JOINTS, path)
  visibility = _matrix_field(mat, 'visibility', NUM_JOINTS, path)
  if not x.shape == y.shape == visibility.shape:
    raise _common.DatasetFormatError(f'{path}: fields x, y, visibility disagree in shape: {x.shape}, {y.shape}, '
                                     f'{visibility.shape}')
  bbox = _matrix_field(mat, 'bbox', 4, path)
  dimensions = np.asarray(mat['dimensions'], dtype=np.float64).reshape(-1)
  if dimensions.size < 2:
    raise _common.DatasetFormatError(f'{path}: field \'dimensions\' should be [H, W, nframes], got {dimensions}')
  train = _scalar_field(mat, 'train', path)
  if train not in (1.0, -1.0):
    raise _common.DatasetFormatError(f'{path}: field \'train\' should be 1 (train) or -1 (test), got {train}')

  example = {
      'skeleton': np.stack([x, y], axis=-1).astype(np.float32),
      'visibility': visibility.astype(bool),
      'bbox': bbox.astype(np.float32),
      'image_size': dimensions[:2].astype(np.int32),
      'pose': pose,
      'video_id': path.stem,
      'label': CLASS_NAMES.index(action),
  }
  return ('train' if train == 1.0 else 'test'), example


class PennAction(tfds.core.GeneratorBasedBuilder):
  """Penn Action skeletons (T, 13, 2) in raw pixels with visibility, boxes and image size."""

  name = 'penn_action'
  VERSION = tfds.core.Version('1.0.1')
  SUPPORTED_VERSIONS = [tfds.core.Version('1.0.0')]  # readable; only VERSION is built
  RELEASE_NOTES = {
      '1.0.0': 'Initial release: raw annotations from labels/*.mat.',
      '1.0.1': ('Metadata: `edges` are the penn13 tree of cascadeformer_jax.data.layouts (no hip-to-hip edge), '
                'the tree of the bone features; examples identical to 1.0.0.'),
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    metadata = _common.layout_metadata('penn13')
    metadata.update({
        'class_names': list(CLASS_NAMES),
        'num_classes': len(CLASS_NAMES),
        'coordinates': 'image pixels (x right, y down), not normalised; occluded joints keep their raw values',
        'skeleton_layout': '(T, 13, 2) = (frame, joint, (x, y))',
        'bbox_layout': '(N, 4), probably [x1, y1, x2, y2] per frame (column order unverified)',
        'split_rule': "field `train` of each .mat: 1 -> train, -1 -> test (official 1258 / 1068)",
    })
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            'skeleton': tfds.features.Tensor(shape=(None, NUM_JOINTS, 2), dtype=np.float32),
            'visibility': tfds.features.Tensor(shape=(None, NUM_JOINTS), dtype=np.bool_),
            'bbox': tfds.features.Tensor(shape=(None, 4), dtype=np.float32),
            'image_size': tfds.features.Tensor(shape=(2,), dtype=np.int32),
            'pose': tfds.features.Text(),
            'video_id': tfds.features.Text(),
            'label': tfds.features.ClassLabel(names=CLASS_NAMES),
        }),
        supervised_keys=('skeleton', 'label'),
        disable_shuffling=True,
        homepage='https://dreamdragon.github.io/PennAction/',
        citation=('@inproceedings{zhang2013actemes, title={From Actemes to Action: A Strongly-supervised '
                  'Representation for Detailed Action Understanding}, author={Zhang, Weiyu and Zhu, Menglong and '
                  'Derpanis, Konstantinos G.}, booktitle={ICCV}, year={2013}}'),
        metadata=tfds.core.MetadataDict(metadata),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    folder, files = _common.find_files(dl_manager.manual_dir, ('Penn_Action/labels', 'labels', ''), '*.mat',
                                       'penn_action', EXPECTED_LAYOUT)
    # Reading the files here (they are small) splits them by their `train` field and catches bad files before
    # anything is written.
    splits: dict[str, list[dict[str, Any]]] = {'train': [], 'test': []}
    for path in _common.progress(files, 'penn_action: reading labels/*.mat'):
      split, example = read_label_file(path)
      splits[split].append(example)
    _common.logger.info('penn_action: %d train / %d test clips', len(splits['train']), len(splits['test']))
    _common.check_splits_not_empty(splits, 'penn_action', str(folder), 'field `train`: 1 -> train, -1 -> test')
    return {split: self._generate_examples(examples, split) for split, examples in splits.items()}

  def _generate_examples(self, examples: list[dict[str, Any]], split: str):
    for example in _common.progress(examples, f'penn_action: writing {split}'):
      yield example['video_id'], example
