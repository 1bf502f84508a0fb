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

from typing import Any, Mapping, Sequence

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


class _Where:
  """`describe_example(raw, where)`, formatted only when an error message needs it."""

  __slots__ = ('raw', 'where')

  def __init__(self, raw: Any, where: str):
    self.raw, self.where = raw, where

  def __str__(self) -> str:
    return describe_example(self.raw, self.where)

  def __format__(self, spec: str) -> str:
    return format(str(self), spec)


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
  if array.ndim != 1 + len(trailing_shape) or array.shape[1:] != trailing_shape:
    expected = '(T, ' + ', '.join(str(d) for d in trailing_shape) + ')'
    raise BadExampleError(f"{where}: 'skeleton' has shape {array.shape}, expected {expected}")
  if array.dtype.kind not in 'iufc':  # np.number
    raise BadExampleError(f"{where}: 'skeleton' has non-numeric dtype {array.dtype}")
  if array.shape[0] == 0:
    raise BadExampleError(f"{where}: 'skeleton' is an empty clip (0 frames)")
  return array.astype(dtype, copy=False)


def _label(raw: Mapping[str, Any], num_classes: int, where: str) -> np.int32:
  label = np.asarray(get_field(raw, 'label', where))
  if label.shape != () or label.dtype.kind not in 'iu':
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


def _penn_clip(raw, settings, where):
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
  return skeleton, count


def _process_penn(raws, settings, rngs, train, wheres):
  del rngs, train  # Penn Action has no augmentation in the original code.
  clips, counts = zip(*[_penn_clip(raw, settings, where) for raw, where in zip(raws, wheres)])
  return list(clips), [clip.shape[0] for clip in clips], list(counts)


def _process_nucla(raws, settings, rngs, train, wheres):
  """Per clip: checks, random draws and the full-clip min/max; then one vectorised pass over the batch.

  The min-max normalisation is per-axis affine, so it is applied to the selected frames only, with the
  range of the whole (centred, view-transformed) clip. float32 throughout (the golden transform tests hold
  at their tolerance).
  """
  nucla = settings['nucla']
  num_frames = settings['num_frames']
  augment = train and settings['augment']
  selected, lows, highs, counts, drops = [], [], [], [], []
  for raw, rng, where in zip(raws, rngs, wheres):
    clip = _skeleton(raw, (settings['num_joints'], 3), where)
    clip, count = _check_finite(clip, settings['bad_values'], where)
    x = transforms.nucla_centre(clip)
    if augment:
      x = transforms.nucla_random_view(x, rng, nucla['rotation_max_deg'], tuple(nucla['scale_range']))
    low, high = transforms.axis_range(x)
    if augment:
      x = x[transforms.nucla_train_frame_indices(x.shape[0], rng, num_frames)]
      drops.append((transforms.draw_drop_axis(rng, nucla['drop_prob'], x.shape[-1]),
                    transforms.draw_drop_joints(rng, nucla['drop_prob'], x.shape[0], x.shape[1])))
    else:
      x = x[transforms.nucla_test_frame_indices(x.shape[0], num_frames)]
    selected.append(x)
    lows.append(low)
    highs.append(high)
    counts.append(count)
  # Channels-first (N, 3, T, J): the broadcast per-axis arithmetic then runs over long contiguous rows.
  x = np.stack(selected).transpose(0, 3, 1, 2).copy()
  x = transforms.minmax_to_unit_range(x, np.stack(lows)[:, :, None, None], np.stack(highs)[:, :, None, None])
  for k, (axis, joints) in enumerate(drops):
    if axis is not None:
      x[k, axis] = 0
    if joints is not None:
      frames, joint_ids = joints
      x[k][:, frames[:, None], joint_ids[None, :]] = 0
  x = np.ascontiguousarray(x[:, :, :, transforms.NUCLA_PARTITION_ORDER].transpose(0, 2, 3, 1))
  return x, [num_frames] * len(raws), counts


def _process_ntu(raws, settings, rngs, train, wheres):
  """Per clip: checks, window and rotation draws and the frame gather; crop-resize and rotation batched.

  A clip whose second actor slot is all zero keeps slot 0 under either selection rule (its score is 0 and
  ties go to slot 0), so only slot 0 is resized and rotated; two-actor clips go through both slots as the
  original does. The values are those of the per-clip transforms, bit for bit.
  """
  ntu = settings['ntu']
  num_frames = settings['num_frames']
  augment = train and settings['augment']
  rotate = augment and ntu['rotation_max_rad'] > 0
  gathered, weights, rotations, counts, two_actors = [], [], [], [], []
  for raw, rng, where in zip(raws, rngs, wheres):
    skeleton = _skeleton(raw, (2, settings['num_joints'], 3), where)
    skeleton, count = _check_finite(skeleton, settings['bad_values'], where)
    valid_length = transforms.ntu_valid_length(skeleton)
    if valid_length == 0:
      raise BadExampleError(f'{where}: no valid frame (every frame of the clip sums to 0)')
    if augment:
      start, length = transforms.ntu_train_window(
          valid_length, rng, tuple(ntu['crop_interval']), ntu['min_crop_frames'])
    else:
      start, length = transforms.ntu_test_window(valid_length, ntu['test_crop_fraction'],
                                                 ntu.get('test_window_position', 0.5))
    i0, i1, lam = transforms.resize_time_weights(length, num_frames)
    two = bool(skeleton[start:start + length, 1].any())
    slots = skeleton if two else skeleton[:, 0]
    gathered.append((slots[start + i0], slots[start + i1]))
    weights.append(lam)
    two_actors.append(two)
    if rotate:
      theta = ntu['rotation_max_rad']
      rotations.append(transforms.rotation_matrix_xyz(rng.uniform(-theta, theta, size=3)).T)
    counts.append(count)
  out = np.empty((len(raws), num_frames, settings['num_joints'], 3), np.float32)
  for two in (False, True):
    members = [k for k, flag in enumerate(two_actors) if flag == two]
    if not members:
      continue
    first = np.stack([gathered[k][0] for k in members])
    second = np.stack([gathered[k][1] for k in members])
    lam = np.stack([weights[k] for k in members]).reshape((len(members), num_frames) + (1,) * (first.ndim - 2))
    x = (1 - lam) * first + lam * second  # = transforms.resize_time_linear per clip
    if rotate:
      rotation = np.stack([rotations[k] for k in members]).astype(x.dtype)
      x = np.matmul(x.reshape(len(members), -1, 3), rotation).reshape(x.shape)
    if two:
      x = np.stack([transforms.select_person(clip, ntu['person_selection'])[0] for clip in x])
    out[members] = x
  return out, [num_frames] * len(raws), counts


def _process_generic(raws, settings, rngs, train, wheres):
  clips, lengths, counts = [], [], []
  for raw, rng, where in zip(raws, rngs, wheres):
    skeleton = _skeleton(raw, (settings['max_persons'], settings['num_joints'], settings['num_coords']), where)
    skeleton, count = _check_finite(skeleton, settings['bad_values'], where)
    x, length = generic.process_clip(skeleton, settings['generic'], np.asarray(settings['parents']),
                                     settings['centre_indices'], settings['num_frames'], rng, train,
                                     augment=settings['augment'])
    clips.append(x)
    lengths.append(length)
    counts.append(count)
  return np.stack(clips), lengths, counts


_PROCESSORS = {'penn': _process_penn, 'nucla': _process_nucla, 'ntu': _process_ntu, 'generic': _process_generic}


def process_examples(raws: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], parents: np.ndarray,
                     rngs: Sequence[np.random.Generator | None], train: bool,
                     wheres: Sequence[str]) -> dict[str, Any]:
  """Stored examples → model input clips, as `process_example` on each (same values), vectorised over them.

  Args:
    raws: stored examples (dicts of arrays), at least one.
    settings, parents, train: as `process_example`.
    rngs: one generator per example (drawn from in the same order as `process_example` does).
    wheres: how to name each example in errors.

  Returns:
    skeleton: float32 (N, T, J, C') for fixed-length layouts, a list of N (T_i, J, C') clips for Penn;
    label, length, nonfinite_count: int32 (N,).

  Raises:
    BadExampleError: as `process_example`, naming the first bad example.
  """
  wheres = [_Where(raw, where) for raw, where in zip(raws, wheres)]
  labels = np.array([_label(raw, settings['num_classes'], where) for raw, where in zip(raws, wheres)],
                    np.int32)
  clips, lengths, counts = _PROCESSORS[settings['layout']](raws, settings, rngs, train, wheres)
  mode = settings['representation']
  if isinstance(clips, np.ndarray) and mode == 'joint':
    clips = clips.astype(np.float32, copy=False)
    if not np.isfinite(clips).all():
      bad = int(np.flatnonzero(~np.isfinite(clips).reshape(len(clips), -1).all(axis=1))[0])
      raise BadExampleError(f'{wheres[bad]}: preprocessing produced NaN/inf values')
  else:
    converted = []
    for clip, length, where in zip(clips, lengths, wheres):
      clip = transforms.joint_representation(clip, parents, mode, length).astype(np.float32, copy=False)
      if not np.isfinite(clip).all():
        raise BadExampleError(f'{where}: preprocessing produced NaN/inf values')
      converted.append(clip)
    clips = converted if isinstance(clips, list) else np.stack(converted)
  return {'skeleton': clips, 'label': labels, 'length': np.array(lengths, np.int32),
          'nonfinite_count': np.array(counts, np.int32)}


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
  batch = process_examples([raw], settings, parents, [rng], train, [where])
  return {
      'skeleton': batch['skeleton'][0],
      'label': batch['label'][0],
      'length': batch['length'][0],
      'nonfinite_count': batch['nonfinite_count'][0],
  }
