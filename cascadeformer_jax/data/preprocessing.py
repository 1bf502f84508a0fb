"""What a trained model needs to turn raw clips into its inputs, stored with the model.

A model directory keeps this description in its ``model.json`` under ``"preprocessing"``, and an export keeps it as
``preprocessing.json``::

    format          FORMAT
    dataset         the dataset it was trained on (data.name)
    class_names     the classes, in the order of the logits
    stored_layout   the joints of a raw clip: {"name", "joints", "parents"}
    persons         person slots of a raw frame: 0 (frames are (J, C)), else frames are (persons, J, C)
    model_parents   the parent of every joint in the order the model sees them (bone representations)
    input_shape     (T, J, C) of one model input (Penn Action: T is the longest clip)
    data            every data setting that is part of the training recipe (the test-time transform, its
                    parameters, the representation, frames and person selection among them)
    largest_training_input
                    the largest absolute model-input value over (up to SAMPLED_CLIPS evenly spaced) training clips
                    under the test-time transform; clips far beyond it are flagged at inference (absent: unknown)

:func:`prepare_clip` applies the test-time transform with NumPy alone: this module and the transforms it calls
import neither JAX nor ml_collections, so a deployment can prepare inputs without them. The functions that build a
description from, or compare it with, an experiment's data config import the config code when called.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np

from cascadeformer_jax.config import schema
from cascadeformer_jax.data import examples
from cascadeformer_jax.data import transforms

FORMAT = 'cascadeformer_jax.preprocessing/1'
SAMPLED_CLIPS = 2048


class PreprocessingMismatchError(ValueError):
  """A config contradicts the preprocessing a model was trained with."""


def _plain(value: Any) -> Any:
  """JSON-compatible: tuples become lists, as after a round trip through JSON."""
  return json.loads(json.dumps(value, default=str))


def _person_slots(data: Mapping[str, Any]) -> int:
  """Person slots of a stored frame: 2 for NTU-style datasets, max_persons for folders, else 0 (no axis)."""
  if data['layout'] == 'ntu':
    return 2
  if data['layout'] == 'generic':
    return int(data['max_persons'])
  return 0


def _recipe_data(data: Mapping[str, Any], prefix: str = 'data') -> dict[str, Any]:
  """The data settings without the free ones (paths, worker counts), which never change a model's input."""
  kept = {}
  for key, value in data.items():
    path = f'{prefix}.{key}'
    if isinstance(value, Mapping):
      kept[key] = _recipe_data(value, path)
    elif schema.scope(path) != schema.FREE:
      kept[key] = _plain(value)
  return kept


def describe(data_config: Any, class_names: Sequence[str] | None) -> dict[str, Any]:
  """The preprocessing of a model trained on ``data_config`` (a resolved experiment ``config.data``)."""
  from cascadeformer_jax.data import config as config_lib  # pylint: disable=g-import-not-at-top

  layout = config_lib.stored_layout(data_config)
  data = _recipe_data(data_config.to_dict())
  return {
      'format': FORMAT,
      'dataset': data_config.name,
      'class_names': None if class_names is None else [str(name) for name in class_names],
      'stored_layout': {'name': layout.name, 'joints': list(layout.joints), 'parents': list(layout.parents)},
      'persons': _person_slots(data),
      'model_parents': [int(p) for p in config_lib.joint_parents(data_config)],
      'input_shape': list(config_lib.model_input_shape(data_config)),
      'data': data,
  }


def largest_training_input(data_config: Any, split: str | None = None) -> float:
  """The largest absolute model-input value of the training clips under the test-time transform (over at most
  SAMPLED_CLIPS of them, evenly spaced)."""
  from cascadeformer_jax.data import config as config_lib  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.data import sources  # pylint: disable=g-import-not-at-top

  split = split or data_config.train_split
  source = sources.open_split(data_config, split)
  indices = np.unique(np.linspace(0, len(source) - 1, min(len(source), SAMPLED_CLIPS)).astype(int))
  settings, parents = data_config.to_dict(), config_lib.joint_parents(data_config)
  largest = 0.0
  for start in range(0, len(indices), 256):
    chunk = indices[start:start + 256]
    processed = examples.process_examples([source[int(i)] for i in chunk], settings, parents, None, False,
                                          [f'{split} example {i}' for i in chunk])
    for clip, length in zip(processed['skeleton'], processed['length']):
      largest = max(largest, float(np.abs(clip[:length]).max(initial=0.0)))
  return largest


def from_recipe(recipe: Mapping[str, Any]) -> dict[str, Any] | None:
  """The preprocessing of a model directory written before it was stored, from its stage recipe ({dotted field:
  value}, which holds every data field of the recipe); None if the recipe has no data fields. Class names are
  unknown there (None): the dataset's apply."""
  data: dict[str, Any] = {}
  for path, value in recipe.items():
    if not path.startswith('data.'):
      continue
    *parents, leaf = path.split('.')[1:]
    node = data
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  if 'layout' not in data or 'name' not in data:
    return None
  return describe(data_config(data), None)


def data_config(preprocessing_or_data: Mapping[str, Any]):
  """The experiment ``config.data`` a stored preprocessing stands for (its dataset's defaults, then the stored
  settings), from a description or from its ``data`` part."""
  from cascadeformer_jax.data import config as config_lib  # pylint: disable=g-import-not-at-top

  data = preprocessing_or_data.get('data', preprocessing_or_data)
  name = data['name'] if data['name'] in config_lib.DATASETS else config_lib.FOLDER
  config = config_lib.default_data_config(name)
  for key, value in data.items():
    if isinstance(value, Mapping) and key in config:
      config[key].update(_tupled(value))
    else:
      config[key] = _tupled(value)
  return config


def _tupled(value: Any) -> Any:
  """Lists back to the tuples the data configs hold."""
  if isinstance(value, Mapping):
    return {key: _tupled(v) for key, v in value.items()}
  if isinstance(value, list):
    return tuple(_tupled(v) for v in value)
  return value


def mismatches(preprocessing: Mapping[str, Any], given_data: Any, fields: Sequence[str]) -> list[str]:
  """'field: stored → given' for each of ``fields`` whose value in ``given_data`` (an experiment config.data)
  contradicts the stored one. A field that either side lacks is not a contradiction."""
  stored = {'data': preprocessing['data']}
  given = {'data': given_data.to_dict() if hasattr(given_data, 'to_dict') else dict(given_data)}
  found = []
  for field in fields:
    old, new = schema.get_field(stored, field), schema.get_field(given, field)
    if old is schema.ABSENT or new is schema.ABSENT:
      continue
    if _plain(old) != _plain(new):
      found.append(f'{field}: {schema.show(_tupled(_plain(old)))} → {schema.show(_tupled(_plain(new)))}')
  return found


def check_agrees(preprocessing: Mapping[str, Any] | None, given_data: Any, where: str,
                 fields: Sequence[str] = schema.DATASET_FIELDS + schema.MODEL_INPUT_FIELDS) -> None:
  """Refuses, in one line, a config whose settings contradict what the model at ``where`` was trained with."""
  if preprocessing is None:
    return
  found = mismatches(preprocessing, given_data, fields)
  if found:
    raise PreprocessingMismatchError(
        f'{where} was trained with other settings (stored → given): {"; ".join(found)}. Leave them out to use the '
        "model's own, or use a model trained with them")


def raw_frame_shape(preprocessing: Mapping[str, Any], num_joints: int | None = None) -> tuple[int, ...]:
  """Shape of one raw frame: (J, C), or (persons, J, C); ``num_joints`` = another layout's joint count."""
  data = preprocessing['data']
  frame = (len(preprocessing['stored_layout']['joints']) if num_joints is None else num_joints,
           int(data['num_coords']))
  persons = int(preprocessing['persons'])
  return (persons,) + frame if persons else frame


def fill_person_slots(clip: np.ndarray, preprocessing: Mapping[str, Any]) -> np.ndarray:
  """A (T, J, C) clip, or one with fewer persons than the model's slots, with the missing slots zero-filled."""
  persons = int(preprocessing['persons'])
  frame = raw_frame_shape(preprocessing)[-2:]
  if persons and clip.ndim == 3 and clip.shape[1:] == frame:
    clip = clip[:, None]
  if persons and clip.ndim == 4 and clip.shape[2:] == frame and 0 < clip.shape[1] < persons:
    empty = np.zeros((clip.shape[0], persons - clip.shape[1]) + clip.shape[2:], clip.dtype)
    clip = np.concatenate([clip, empty], axis=1)
  return clip


def prepare_clip(clip: np.ndarray, preprocessing: Mapping[str, Any], name: str = 'clip') -> tuple[np.ndarray, int]:
  """One raw clip in the stored layout → (model input (T, J, C'), real frames), as evaluation prepares it.

  Penn Action inputs are zero-padded to the length bucket of the clip, as evaluation pads its batches (a bounded
  number of compiled shapes).

  Raises:
    ValueError: the clip has the wrong shape or cannot be prepared (one line naming ``name``).
  """
  clip = fill_person_slots(np.asarray(clip, dtype=np.float32), preprocessing)
  expected = raw_frame_shape(preprocessing)
  if clip.ndim != 1 + len(expected) or clip.shape[1:] != expected:
    raise ValueError(f'{name}: clip of shape {clip.shape}, expected (T,) + {expected} '
                     f'({preprocessing["stored_layout"]["name"]} layout)')
  if clip.shape[0] == 0:
    raise ValueError(f'{name}: empty clip (0 frames)')
  data = preprocessing['data']
  raw = {'skeleton': clip, 'label': 0, 'visibility': np.ones(clip.shape[:2], bool),
         'image_size': np.array([1, 1], np.int32), 'sample_name': name.encode()}
  try:
    example = examples.process_example(raw, data, np.asarray(preprocessing['model_parents'], np.int64), None,
                                       False, name)
  except examples.BadExampleError as e:
    raise ValueError(str(e)) from None
  skeleton, length = example['skeleton'], int(example['length'])
  if data['layout'] == 'penn':
    penn = data['penn']
    frames = (int(data['max_frames']) if penn['padding'] == 'fixed' else
              transforms.padded_length(len(skeleton), tuple(penn.get('length_buckets', ())), penn['pad_multiple']))
    skeleton = transforms.pad_time(skeleton, frames)
  return skeleton, length
