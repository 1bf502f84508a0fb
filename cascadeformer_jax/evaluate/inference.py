"""Inference on a user's clips or a dataset split: logits, probabilities, pooled embeddings, anomaly scores."""

import dataclasses
import functools
import json
import pathlib
from typing import Any

import ml_collections
import numpy as np

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.checkpoints import model_sources
from cascadeformer_jax.config import schema
from cascadeformer_jax.run import io_checks
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.data import layouts
from cascadeformer_jax.data import preprocessing as preprocessing_lib
from cascadeformer_jax.data import sources
from cascadeformer_jax.evaluate import anomaly
from cascadeformer_jax.evaluate import evaluators
from cascadeformer_jax.evaluate.forward import ClassifierForward
from cascadeformer_jax.models import ModelConfig


# A clip whose model inputs exceed this many times the largest absolute input value seen in training is flagged.
OUT_OF_RANGE = 10.0


def _as_clip(array: Any, preprocessing: dict[str, Any], name: str, source_layout: layouts.Layout | None = None,
             mapping: Any = None) -> np.ndarray:
  """One input clip in the model's stored layout: mapped from `source_layout` when given, person slots filled."""
  try:
    clip = np.asarray(array, dtype=np.float32)
  except (TypeError, ValueError) as e:
    raise ValueError(f'{name}: not a numeric array ({e})') from None
  target = stored_layout(preprocessing)
  if source_layout is not None and source_layout.joints != target.joints:
    if clip.ndim not in (3, 4) or clip.shape[-2] != source_layout.num_joints:
      raise ValueError(f'{name}: clip of shape {clip.shape} does not have the {source_layout.num_joints} joints of '
                       f'layout {source_layout.name!r} on axis -2')
    clip = layouts.convert(clip, source_layout, target, mapping=mapping)
  clip = preprocessing_lib.fill_person_slots(clip, preprocessing)
  stored = preprocessing_lib.raw_frame_shape(preprocessing)
  persons = int(preprocessing['persons'])
  if clip.ndim != 1 + len(stored) or clip.shape[1:] != stored:
    shape = f'(T, J, C) or (T, {persons}, J, C)' if persons else '(T, J, C)'
    raise ValueError(f'{name}: clip of shape {clip.shape}, expected {shape} with J = {stored[-2]} joints '
                     f'({target.name} layout; other layouts: --layout) and C = {stored[-1]} coordinates for '
                     f'{preprocessing["dataset"]}')
  if clip.shape[0] == 0:
    raise ValueError(f'{name}: empty clip (0 frames)')
  return clip


def stored_layout(preprocessing: dict[str, Any]) -> layouts.Layout:
  """The joint layout of a model's raw clips."""
  stored = preprocessing['stored_layout']
  if stored['name'] in layouts.LAYOUTS and list(layouts.get_layout(stored['name']).joints) == stored['joints']:
    return layouts.get_layout(stored['name'])
  centres = tuple(int(i) for i in preprocessing['data'].get('centre_indices', ()))
  return layouts.Layout(stored['name'], tuple(stored['joints']), tuple(int(p) for p in stored['parents']), centres)


def read_clips(path: str, preprocessing: dict[str, Any], layout: Any = None,
               mapping: Any = None) -> tuple[list[str], list[np.ndarray]]:
  """Reads clips from .npy / .npz / .json (see cascadeformer_jax.predict) and checks their shapes.

  Args:
    path: the input file.
    preprocessing: the model's preprocessing (data/preprocessing.py: its stored layout and shape).
    layout: the joint layout of the clips when it is not the dataset's (a name or an explicit layout); they are
      mapped with `layouts.convert`.
    mapping: `layouts.convert`'s mapping (e.g. 'original_partition_order', or {target joint: source joint(s)}).
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'{path}: no such input file')
  source_layout = layouts.get_layout(layout) if layout else None
  joints = source_layout.num_joints if source_layout is not None else None
  suffix = path.suffix.lower()
  stored = preprocessing_lib.raw_frame_shape(preprocessing, joints)
  ndim = 1 + len(stored)
  if suffix in ('.npy', '.npz'):
    # np.load guesses the format from the first bytes and blames pickles for anything it does not recognise.
    with path.open('rb') as f:
      head = f.read(6)
    expected = (b'\x93NUMPY', 'a NumPy .npy file (numpy.save)') if suffix == '.npy' else (b'PK', 'a NumPy .npz '
                                                                                           'archive (numpy.savez)')
    if not head.startswith(expected[0]):
      raise ValueError(f'{path}: not {expected[1]}: it does not start with that format\'s signature')
  if suffix == '.npy':
    try:
      array = np.load(path, allow_pickle=False)
    except ValueError as e:
      raise ValueError(f'{path}: cannot read ({e})') from None
    stacked = array.ndim == ndim + 1 or (preprocessing['persons'] and array.ndim == ndim and
                                         array.shape[1:] != stored)
    items = [(f'{path.name}[{i}]', a) for i, a in enumerate(array)] if stacked else [(path.name, array)]
  elif suffix == '.npz':
    try:
      with np.load(path, allow_pickle=False) as archive:
        items = [(f'{path.name}:{key}', archive[key]) for key in archive.files]
    except ValueError as e:
      raise ValueError(f'{path}: cannot read ({e})') from None
  elif suffix == '.json':
    try:
      content = json.loads(path.read_text())
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: invalid JSON ({e})') from None
    if isinstance(content, dict):
      if not isinstance(content.get('clips'), list) or not all(isinstance(c, list) for c in content['clips']):
        found = type(content['clips']).__name__ if 'clips' in content else 'no "clips" key'
        raise ValueError(f'{path}: "clips" must be a list of clips, each a nested list of coordinates '
                         f'(found {found})')
      items = [(f'{path.name}[{i}]', c) for i, c in enumerate(content['clips'])]
    else:
      items = [(path.name, content)]
  else:
    raise ValueError(f'{path}: unsupported input type {suffix!r} (use .npy, .npz or .json)')
  if not items:
    raise ValueError(f'{path}: no clips')
  return [name for name, _ in items], [_as_clip(a, preprocessing, name, source_layout, mapping) for name, a in items]


@dataclasses.dataclass
class Predictor:
  """A classifier plus the evaluation preprocessing of its inputs."""

  model_config: ModelConfig
  params: Any
  preprocessing: dict[str, Any]
  data_config: ml_collections.ConfigDict
  class_names: list[str]
  batch_size: int
  location: str = ''

  @classmethod
  def load(cls, init_from: str, config: ml_collections.ConfigDict | None = None,
           model_config: ModelConfig | None = None) -> 'Predictor':
    """The classifier at ``init_from`` with its stored preprocessing.

    With ``config`` (an experiment config), its data settings must agree with the stored ones; it supplies the
    free settings (data_dir, the evaluation batch size) and the preprocessing of a model that stores none (a
    directory converted before model directories kept it).
    """
    loaded = model_sources.load(init_from, (checkpoint_io.CLASSIFIER,), model_config)
    return cls.for_model(loaded, config)

  @classmethod
  def for_model(cls, loaded: model_sources.LoadedModel,
                config: ml_collections.ConfigDict | None = None) -> 'Predictor':
    stored = loaded.preprocessing
    if stored is None and config is None:
      raise checkpoint_io.ModelDirError(
          f'{loaded.location}: the model does not store its preprocessing (converted before model directories '
          'kept it); pass --config=<the config it was trained with>')
    if config is not None:
      preprocessing_lib.check_agrees(stored, config.data, loaded.location)
    data_config = config.data if config is not None else preprocessing_lib.data_config(stored)
    names = (stored or {}).get('class_names') or sources.class_names(data_config)
    preprocessing = stored if stored is not None else preprocessing_lib.describe(data_config, names)
    preprocessing = dict(preprocessing, class_names=list(names))
    batch_size = config.eval.batch_size if config is not None else schema.BY_PATH['eval.batch_size'].default
    return cls(loaded.config, loaded.params, preprocessing, data_config, list(names), batch_size, loaded.location)

  @functools.cached_property
  def _forward(self) -> ClassifierForward:
    return ClassifierForward(self.model_config)

  def predict_raw(self, clips: list[np.ndarray], names: list[str]) -> dict[str, Any]:
    """Preprocesses stored-layout clips as the evaluation split is (Penn clips padded to their length bucket),
    then classifies them one by one."""
    logits, features, peaks = [], [], []
    for name, clip in zip(names, clips):
      skeleton, length = preprocessing_lib.prepare_clip(clip, self.preprocessing, name)
      out = self._forward.batch(self.params, {'skeleton': skeleton[None], 'lengths': np.array([length], np.int32)})
      logits.append(np.asarray(out['logits'])[0])
      features.append(np.asarray(out['pooled'])[0])
      peaks.append(float(np.abs(skeleton[:length]).max(initial=0.0)))
    return {'names': list(names), 'logits': np.stack(logits), 'features': np.stack(features), 'labels': None,
            'input_peaks': np.array(peaks)}

  def describe(self) -> str:
    """Which model and settings the numbers come from, in one line."""
    data = self.preprocessing['data']
    return (f'model {self.location}: {self.preprocessing["dataset"]}, {len(self.class_names)} classes, '
            f'representation {data["representation"]}, {self.preprocessing["input_shape"][0]} frames')

  def predict_split(self, split: str, batch_size: int | None = None) -> dict[str, Any]:
    """Logits and pooled embeddings of every clip of a dataset split (with their labels), computed exactly as
    evaluation computes them."""
    mesh = partitioning.make_mesh()
    evaluator = evaluators.ClassifierEvaluator(self.model_config, self.data_config, split,
                                               batch_size or self.batch_size, mesh)
    predicted = evaluator.predict(partitioning.replicate(self.params, mesh))
    return {'names': [f'{split}[{i}]' for i in predicted['index']], 'logits': predicted['logits'],
            'features': predicted['pooled'], 'labels': predicted['label']}


def top_k(outputs: dict[str, Any], class_names: list[str], k: int) -> list[list[tuple[str, float]]]:
  probabilities = anomaly.softmax(outputs['logits'].astype(np.float64))
  order = np.argsort(-probabilities, axis=-1, kind='stable')[:, :max(1, min(k, len(class_names)))]
  return [[(class_names[c], float(p[c])) for c in row] for row, p in zip(order, probabilities)]


def read_bank(path: str) -> dict[str, np.ndarray]:
  """A feature bank (``--features_output`` of a training split), checked: finite embeddings, one label each."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'{path}: no such feature bank (make one with --split=train --features_output=...)')
  try:
    with np.load(path, allow_pickle=False) as archive:
      bank = {key: archive[key] for key in archive.files}
  except (ValueError, OSError) as e:
    raise ValueError(f'{path}: not a feature bank written by --features_output ({e})') from None
  features = bank.get('features')
  if features is None or features.ndim != 2 or not len(features):
    raise ValueError(f'{path}: a feature bank needs a non-empty (clips, dims) "features" array (found '
                     f'{sorted(bank)})')
  bad_rows = np.flatnonzero(~np.isfinite(features).all(axis=1))
  if len(bad_rows):
    raise ValueError(f'{path}: "features" row {int(bad_rows[0])} is not finite (NaN or infinite); '
                     f'{len(bad_rows)} of its {len(features)} rows are not')
  if 'labels' in bank and len(bank['labels']) != len(features):
    raise ValueError(f'{path}: {len(bank["labels"])} "labels" for {len(features)} "features" rows')
  return bank


def check_output_file(path: str, flag: str) -> None:
  """Raises WriteError, before any work, when ``path`` cannot be written."""
  target = pathlib.Path(path)
  if target.is_dir():
    raise io_checks.WriteError(f'{flag}={path}: is a folder, not a file')
  io_checks.check_writable(target.absolute().parent, f'folder of {flag}')


def clip_warnings(clips: list[np.ndarray], input_peaks: np.ndarray, preprocessing: dict[str, Any]) -> list[list[str]]:
  """Per clip, why its prediction should not be trusted: a constant clip (no motion, e.g. all zeros), or model
  inputs (``input_peaks``: the largest absolute input value of each clip, from `Predictor.predict_raw`) far outside
  what the model saw in training (above `OUT_OF_RANGE` x the largest absolute value of its training inputs, when the
  model stores it)."""
  largest = preprocessing.get('largest_training_input')
  found = []
  for clip, peak in zip(clips, input_peaks):
    reasons = []
    if not np.any(clip != clip[:1]):
      reasons.append('constant clip: every frame is the same (no motion)')
    if largest and peak > OUT_OF_RANGE * largest:
      reasons.append(f'out of range: inputs reach {peak:.3g}, more than {OUT_OF_RANGE:g}x the largest in '
                     f'training ({largest:.3g})')
    found.append(reasons)
  return found


def scores_for(outputs: dict[str, Any], bank: dict[str, np.ndarray] | None, k: int) -> dict[str, np.ndarray]:
  if bank is not None and len(bank['features']) < k:
    raise ValueError(f'--knn={k} is larger than the feature bank ({len(bank["features"])} clips)')
  if bank is not None and bank['features'].shape[1:] != outputs['features'].shape[1:]:
    raise ValueError(f'the feature bank has {bank["features"].shape[1]}-dimensional embeddings, the model gives '
                     f'{outputs["features"].shape[1]}')
  return anomaly.anomaly_scores(outputs['logits'], outputs['features'],
                                None if bank is None else bank['features'],
                                None if bank is None else bank.get('labels'), k)


def records(outputs, top, scores, class_names) -> list[dict[str, Any]]:
  probabilities = anomaly.softmax(outputs['logits'].astype(np.float64))
  result = []
  for i, name in enumerate(outputs['names']):
    record = {'name': name, 'top_k': [{'class': c, 'probability': p} for c, p in top[i]],
              'logits': outputs['logits'][i].tolist(),
              'probabilities': dict(zip(class_names, probabilities[i].tolist()))}
    if outputs.get('labels') is not None:
      record['label'] = class_names[int(outputs['labels'][i])]
    if scores:
      record['anomaly_scores'] = {key: _finite_or_none(value[i]) for key, value in scores.items()}
    if outputs.get('warnings') is not None:
      record['warnings'] = outputs['warnings'][i]
    result.append(record)
  return result


def _finite_or_none(value: Any) -> float | None:
  """A JSON number, or null for NaN/inf (which JSON cannot hold)."""
  value = float(value)
  return value if np.isfinite(value) else None


def write_features(path: str, outputs: dict[str, Any]) -> None:
  arrays = {'features': outputs['features'], 'logits': outputs['logits'], 'names': np.array(outputs['names'])}
  if outputs.get('labels') is not None:
    arrays['labels'] = outputs['labels']
  np.savez(path, **arrays)
