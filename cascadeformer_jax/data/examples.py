"""Checks one stored example and turns it into one model input clip (per dataset family).

A stored example is the dict a TFDS data source yields (the feature contract of the builders in
`data_builders/`): `skeleton` plus `label` and, for Penn Action, `visibility` and `image_size`.
`process_example` returns
  skeleton: float32 (T, J, C') — person selected, joints in model order, representation applied;
  label: int32 (); length: int32 () real frames (Penn, folder datasets with temporal 'pad') or T;
  nonfinite_count: int32 () coordinates that were NaN/inf and set to 0 (only with `bad_values='zero'`; with
  'error' they raise).

Settings are the plain dict `data_config.to_dict()` so that worker processes can pickle them.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from cascadeformer_jax.data import generic
from cascadeformer_jax.data import transforms

_NAME_KEYS = ('sample_name', 'video_id')


class BadExampleError(ValueError):
  """A stored example that cannot be turned into a finite model input."""


def describe_example(raw: Mapping[str, Any], where: str) -> str:
  """`where` plus the example's sample name when it has one, for error messages."""
  for key in _NAME_KEYS:
    if isinstance(raw, Mapping) and key in raw:
      name = raw[key]
      if isinstance(name, (bytes, np.bytes_)):
        name = name.decode('utf-8', 'replace')
      return f"{where} ('{name}')"
  return where


def get_field(raw: Mapping[str, Any], key: str, where: str) -> Any:
  """`raw[key]`, or BadExampleError naming `where` and the key when it is missing."""
  if not isinstance(raw, Mapping):
    raise BadExampleError(f'{where}: expected a dict of arrays, got {type(raw).__name__}')
  if key not in raw:
    raise BadExampleError(f'{where}: missing key {key!r} (keys: {sorted(raw)})')
  return raw[key]


def _skeleton(raw: Mapping[str, Any], trailing_shape: tuple[int, ...], where: str,
              dtype=np.float32) -> np.ndarray:
  array = np.asarray(get_field(raw, 'skeleton', where))
  expected = '(T, ' + ', '.join(str(d) for d in trailing_shape) + ')'
  if array.ndim != 1 + len(trailing_shape) or tuple(array.shape[1:]) != trailing_shape:
    raise BadExampleError(f"{where}: 'skeleton' has shape {array.shape}, expected {expected}")
  if not np.issubdtype(array.dtype, np.number):
    raise BadExampleError(f"{where}: 'skeleton' has non-numeric dtype {array.dtype}")
  if array.shape[0] == 0:
    raise BadExampleError(f"{where}: 'skeleton' is an empty clip (0 frames)")
  return array.astype(dtype, copy=False)


def _label(raw: Mapping[str, Any], num_classes: int, where: str) -> np.int32:
  label = np.asarray(get_field(raw, 'label', where))
  if label.shape != () or not np.issubdtype(label.dtype, np.integer):
    raise BadExampleError(f"{where}: 'label' must be an integer scalar, got {label!r}")
  if not 0 <= int(label) < num_classes:
    raise BadExampleError(f"{where}: 'label' {int(label)} is outside [0, {num_classes})")
  return np.int32(label)


def _check_finite(x: np.ndarray, policy: str, where: str, key: str = 'skeleton'
                  ) -> tuple[np.ndarray, int]:
  if np.isfinite(x).all():
    return x, 0
  if policy == 'zero':
    return transforms.replace_nonfinite(x)
  count = int((~np.isfinite(x)).sum())
  raise BadExampleError(
      f"{where}: {key!r} has {count} NaN/inf coordinates (set data.bad_values='zero' to replace them "
      'with 0 and count them)')


def _process_penn(raw, settings, rng, train, where):
  del rng, train  # Penn Action has no augmentation in the original code.
  num_joints, num_coords = settings['num_joints'], settings['num_coords']
  skeleton = _skeleton(raw, (num_joints, num_coords), where)
  visibility = np.asarray(get_field(raw, 'visibility', where))
  if visibility.shape != skeleton.shape[:2]:
    raise BadExampleError(f"{where}: 'visibility' has shape {visibility.shape}, expected "
                          f'{skeleton.shape[:2]} to match the skeleton')
  visibility = visibility.astype(bool)
  # Occluded joints are overwritten, so only visible coordinates must be finite.
  skeleton = transforms.penn_zero_occluded(skeleton, visibility)
  skeleton, count = _check_finite(skeleton, settings['bad_values'], where)
  if settings['penn']['normalisation'] == 'image':
    image_size = np.asarray(get_field(raw, 'image_size', where))
    if image_size.shape != (2,) or not (image_size > 0).all():
      raise BadExampleError(f"{where}: 'image_size' must be two positive numbers (H, W), got {image_size}")
    skeleton = transforms.penn_zero_occluded(
        transforms.penn_normalise_image(skeleton, image_size), visibility)
  return skeleton, skeleton.shape[0], count


def _process_nucla(raw, settings, rng, train, where):
  nucla = settings['nucla']
  clip = _skeleton(raw, (settings['num_joints'], 3), where, dtype=np.float64)
  clip, count = _check_finite(clip, settings['bad_values'], where)
  num_frames = settings['num_frames']
  augment = train and settings['augment']
  x = transforms.nucla_centre(clip)
  if augment:
    x = transforms.nucla_random_view(x, rng, nucla['rotation_max_deg'], tuple(nucla['scale_range']))
  x = transforms.minmax_to_unit_range(x)
  if augment:
    x = x[transforms.nucla_train_frame_indices(x.shape[0], rng, num_frames)]
    x = transforms.drop_axis(x, rng, nucla['drop_prob'])
    x = transforms.drop_joints(x, rng, nucla['drop_prob'])
  else:
    x = x[transforms.nucla_test_frame_indices(x.shape[0], num_frames)]
  x = x[:, transforms.NUCLA_PARTITION_ORDER]
  return x.astype(np.float32), num_frames, count


def _process_ntu(raw, settings, rng, train, where):
  ntu = settings['ntu']
  skeleton = _skeleton(raw, (2, settings['num_joints'], 3), where)
  skeleton, count = _check_finite(skeleton, settings['bad_values'], where)
  valid_length = transforms.ntu_valid_length(skeleton)
  if valid_length == 0:
    raise BadExampleError(f'{where}: no valid frame (every frame of the clip sums to 0)')
  num_frames = settings['num_frames']
  augment = train and settings['augment']
  if augment:
    start, length = transforms.ntu_train_window(
        valid_length, rng, tuple(ntu['crop_interval']), ntu['min_crop_frames'])
  else:
    start, length = transforms.ntu_test_window(valid_length, ntu['test_crop_fraction'],
                                               ntu.get('test_window_position', 0.5))
  x = transforms.ntu_crop_resize(skeleton[:valid_length], start, length, num_frames)
  if augment and ntu['rotation_max_rad'] > 0:
    theta = ntu['rotation_max_rad']
    x = transforms.rotate_points(x, transforms.rotation_matrix_xyz(rng.uniform(-theta, theta, size=3)))
  x, _ = transforms.select_person(x, ntu['person_selection'])
  return x, num_frames, count


def _process_generic(raw, settings, rng, train, where):
  skeleton = _skeleton(raw, (settings['max_persons'], settings['num_joints'], settings['num_coords']), where)
  skeleton, count = _check_finite(skeleton, settings['bad_values'], where)
  x, length = generic.process_clip(skeleton, settings['generic'], np.asarray(settings['parents']),
                                   settings['centre_indices'], settings['num_frames'], rng, train,
                                   augment=settings['augment'])
  return x, length, count


_PROCESSORS = {'penn': _process_penn, 'nucla': _process_nucla, 'ntu': _process_ntu, 'generic': _process_generic}


def process_example(raw: Mapping[str, Any], settings: Mapping[str, Any], parents: np.ndarray,
                    rng: np.random.Generator | None, train: bool, where: str) -> dict[str, np.ndarray]:
  """One stored example → one model input clip (see the module docstring for the output).

  Args:
    raw: stored example (dict of arrays).
    settings: `data_config.to_dict()`.
    parents: (J,) joint parents in model order (for bone representations).
    rng: per-example generator (used only when `train` and `settings['augment']`).
    train: training-mode transform (augmentation) instead of the deterministic evaluation transform.
    where: how to name the example in errors, e.g. "n_ucla/train example 12".

  Raises:
    BadExampleError: missing keys, wrong shapes, empty clips, out-of-range labels, NaN/inf coordinates
      (with `bad_values='error'`), or a non-finite result.
  """
  where = describe_example(raw, where)
  label = _label(raw, settings['num_classes'], where)
  skeleton, length, count = _PROCESSORS[settings['layout']](raw, settings, rng, train, where)
  skeleton = transforms.joint_representation(skeleton, parents, settings['representation'], length)
  skeleton = skeleton.astype(np.float32, copy=False)
  if not np.isfinite(skeleton).all():
    raise BadExampleError(f'{where}: preprocessing produced NaN/inf values')
  return {
      'skeleton': skeleton,
      'label': label,
      'length': np.int32(length),
      'nonfinite_count': np.int32(count),
  }
