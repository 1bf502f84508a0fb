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
from cascadeformer_jax.data import random_streams
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
  if type(raw) is dict and key in raw:  # pylint: disable=unidiomatic-typecheck
    return raw[key]
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


def _labels(raws, num_classes: int, wheres) -> np.ndarray:
  """(N,) int32 labels; on anything but in-range integer scalars the first bad one is named."""
  try:
    labels = np.asarray([get_field(raw, 'label', where) for raw, where in zip(raws, wheres)])
  except ValueError:
    labels = None
  if (labels is None or labels.shape != (len(raws),) or labels.dtype.kind not in 'iu'
      or not ((labels >= 0) & (labels < num_classes)).all()):
    return np.array([_label(raw, num_classes, where) for raw, where in zip(raws, wheres)], np.int32)
  return labels.astype(np.int32)


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


def _process_penn(raws, settings, streams, train, wheres):
  del streams, train  # Penn Action has no augmentation in the original code.
  clips, counts = zip(*[_penn_clip(raw, settings, where) for raw, where in zip(raws, wheres)])
  return list(clips), [clip.shape[0] for clip in clips], list(counts)


def _apply_bad_values(clips: list[np.ndarray], settings, wheres) -> tuple[list[np.ndarray], np.ndarray]:
  """`_check_finite` on every clip (called once a batch-wide test found a NaN/inf): the clips with NaN/inf set to
  0 and (N,) counts under `bad_values='zero'`, else BadExampleError naming the first bad clip."""
  checked = [_check_finite(clip, settings['bad_values'], where) for clip, where in zip(clips, wheres)]
  return [clip for clip, _ in checked], np.array([count for _, count in checked], dtype=np.int64)


def _starts(lengths: np.ndarray) -> np.ndarray:
  """(N,) first frame of every clip in the clips' concatenation."""
  return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def _process_nucla(raws, settings, streams, train, wheres):
  """Centre on the spine of frame 0, (train) a random view, per-axis min-max of the whole clip to [−1, 1], 64
  frames (train: random, sorted; test: evenly spaced), (train) random axis and joint drops, partition order.

  The min-max normalisation is per-axis affine, so it is applied to the selected frames only, with the range of
  the whole (centred, view-transformed) clip. float32 throughout. The batch's points are processed together,
  channels-first (3, ΣL·J), so that per-axis arithmetic runs over contiguous rows; only the view transform is one
  matrix product per clip.
  """
  nucla = settings['nucla']
  num_frames, num_joints = settings['num_frames'], settings['num_joints']
  augment = train and settings['augment']
  clips = [_skeleton(raw, (num_joints, 3), where) for raw, where in zip(raws, wheres)]
  points = np.ascontiguousarray(np.concatenate(clips).reshape(-1, 3).T)  # (3, ΣL·J)
  counts = np.zeros(len(clips), dtype=np.int64)
  if not np.isfinite(points).all():
    clips, counts = _apply_bad_values(clips, settings, wheres)
    points = np.ascontiguousarray(np.concatenate(clips).reshape(-1, 3).T)
  lengths = np.array([clip.shape[0] for clip in clips], dtype=np.int64)
  first_points = _starts(lengths) * num_joints
  points -= np.repeat(points[:, first_points + 1], lengths * num_joints, axis=1)  # joint 1 of frame 0
  if augment:
    u = streams.uniform(transforms.AUGMENTATION, 8 + num_joints + num_frames)
    views = transforms.nucla_views(u[:, :3], nucla['rotation_max_deg'], tuple(nucla['scale_range']))
    for view, start, size in zip(views.astype(np.float32), first_points, lengths * num_joints):
      np.matmul(view.T, points[:, start:start + size], out=points[:, start:start + size])
    selected = transforms.draw_nucla_train_frame_indices(lengths, streams, num_frames)
  else:
    selected = np.stack([transforms.nucla_test_frame_indices(int(length), num_frames) for length in lengths])
  low = np.minimum.reduceat(points, first_points, axis=1)[:, :, None, None]
  high = np.maximum.reduceat(points, first_points, axis=1)[:, :, None, None]
  indices = (selected * num_joints + first_points[:, None])[:, :, None] + transforms.NUCLA_PARTITION_ORDER
  x = transforms.minmax_to_unit_range(np.take(points, indices, axis=1), low, high)  # (3, N, T, J), model order
  if augment:
    axes, joints = transforms.nucla_drops(u[:, 3:], nucla['drop_prob'], num_frames, num_joints, 3)
    if joints is not None:
      joints = joints[:, :, transforms.NUCLA_PARTITION_ORDER]
    transforms.apply_drops(x, axes, joints)
  return np.ascontiguousarray(x.transpose(1, 2, 3, 0)), np.full(len(raws), num_frames), counts


def _process_ntu(raws, settings, streams, train, wheres):
  """Valid frames, a window (train: random crop; test: centre), linear resize to 64 frames, (train) a random
  rotation, person selection. Per clip only the frame gathers; draws and arithmetic run on the whole batch.

  A window whose second actor slot sums to 0 in every frame (all zero: one actor) keeps slot 0 under either
  selection rule (its score is 0 and ties go to slot 0), so only slot 0 is resized and rotated; two-actor
  windows go through both slots as the original does.
  """
  ntu = settings['ntu']
  num_frames, num_joints = settings['num_frames'], settings['num_joints']
  augment = train and settings['augment']
  clips = [_skeleton(raw, (2, num_joints, 3), where) for raw, where in zip(raws, wheres)]
  # Per-frame sums of each actor slot: the valid frames, the second actor's frames, and (being non-finite when
  # any coordinate is) a cheap finiteness test.
  totals = np.concatenate([clip.reshape(clip.shape[0], 2, -1).sum(axis=2) for clip in clips])
  counts = np.zeros(len(clips), dtype=np.int64)
  if not np.isfinite(totals).all():
    clips, counts = _apply_bad_values(clips, settings, wheres)
    totals = np.concatenate([clip.reshape(clip.shape[0], 2, -1).sum(axis=2) for clip in clips])
  starts = _starts(np.array([clip.shape[0] for clip in clips], dtype=np.int64))
  valid = np.add.reduceat((totals.sum(axis=1) != 0).astype(np.int64), starts)
  if not valid.all():
    raise BadExampleError(f'{wheres[int(np.flatnonzero(valid == 0)[0])]}: no valid frame (every frame of the clip '
                          'sums to 0)')
  if augment:
    u = streams.uniform(transforms.AUGMENTATION, transforms.NTU_DRAWS)
    window_start, window_length = transforms.ntu_train_windows(valid, u[:, :2], tuple(ntu['crop_interval']),
                                                               ntu['min_crop_frames'])
  else:
    window_start, window_length = transforms.ntu_test_window(valid, ntu['test_crop_fraction'],
                                                             ntu.get('test_window_position', 0.5))
  second_actor = np.concatenate([[0], np.cumsum(totals[:, 1] != 0)])
  first = starts + window_start
  two_actors = second_actor[first + window_length] > second_actor[first]
  i0, i1, lam = transforms.resize_weights(window_length, num_frames)
  i0 += window_start[:, None]
  i1 += window_start[:, None]
  rotations = None
  if augment and ntu['rotation_max_rad'] > 0:
    rotations = transforms.ntu_rotations(u[:, 2:5], ntu['rotation_max_rad']).transpose(0, 2, 1)
  out = np.empty((len(raws), num_frames, num_joints, 3), np.float32)
  for two in (False, True):
    members = np.flatnonzero(two_actors == two)
    if not len(members):
      continue
    shape = (len(members), num_frames) + ((2,) if two else ()) + (num_joints, 3)
    before, after = np.empty(shape, np.float32), np.empty(shape, np.float32)
    for row, k in enumerate(members):
      source = clips[k] if two else clips[k][:, 0]
      before[row], after[row] = source[i0[k]], source[i1[k]]
    weight = lam[members].reshape(shape[:2] + (1,) * (len(shape) - 2))
    x = (1 - weight) * before + weight * after  # = transforms.resize_time_linear per clip
    if rotations is not None:
      x = np.matmul(x.reshape(len(members), -1, 3), rotations[members].astype(x.dtype)).reshape(shape)
    if two:
      x = transforms.select_persons(x, ntu['person_selection'])[0]
    out[members] = x
  return out, np.full(len(raws), num_frames), counts


def _process_generic(raws, settings, streams, train, wheres):
  # Folder datasets draw from one NumPy generator per example, seeded by the example's key.
  rngs = [None] * len(raws) if streams is None else [np.random.default_rng(int(key)) for key in streams.keys]
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
                     keys: np.ndarray | None, train: bool, wheres: Sequence[str]) -> dict[str, Any]:
  """Stored examples → model input clips, as `process_example` on each (same values), vectorised over them.

  Args:
    raws: stored examples (dicts of arrays), at least one.
    settings, parents, train: as `process_example`.
    keys: (N,) uint64 random-stream key of every example (`random_streams.example_keys`), used only when
      `train` and `settings['augment']`; None without augmentation.
    wheres: how to name each example in errors.

  Returns:
    skeleton: float32 (N, T, J, C') for fixed-length layouts, a list of N (T_i, J, C') clips for Penn;
    label, length, nonfinite_count: int32 (N,).

  Raises:
    BadExampleError: as `process_example`, naming the first bad example.
  """
  wheres = [_Where(raw, where) for raw, where in zip(raws, wheres)]
  labels = _labels(raws, settings['num_classes'], wheres)
  if keys is None and train and settings['augment'] and settings['layout'] != 'penn':
    raise ValueError('training-mode processing with augmentation needs a random-stream key per example')
  streams = None if keys is None else random_streams.ExampleStreams(keys)
  clips, lengths, counts = _PROCESSORS[settings['layout']](raws, settings, streams, train, wheres)
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
                    key: int | None, train: bool, where: str) -> dict[str, np.ndarray]:
  """One stored example → one model input clip (see the module docstring for the output).

  Args:
    raw: stored example (dict of arrays).
    settings: `data_config.to_dict()`.
    parents: (J,) joint parents in model order (for bone representations).
    key: the example's random-stream key (`random_streams.example_keys`; used only when `train` and
      `settings['augment']`).
    train: training-mode transform (augmentation) instead of the deterministic evaluation transform.
    where: how to name the example in errors, e.g. "n_ucla/train example 12".

  Raises:
    BadExampleError: missing keys, wrong shapes, empty clips, out-of-range labels, NaN/inf coordinates
      (with `bad_values='error'`), or a non-finite result.
  """
  keys = None if key is None else np.array([key], dtype=np.uint64)
  batch = process_examples([raw], settings, parents, keys, train, [where])
  return {
      'skeleton': batch['skeleton'][0],
      'label': batch['label'][0],
      'length': batch['length'][0],
      'nonfinite_count': batch['nonfinite_count'][0],
  }
