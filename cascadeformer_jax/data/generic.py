"""Preprocessing of clips in any joint layout (folder datasets): pure numpy, one clip at a time.

Randomness comes only from an explicit `np.random.Generator` (as in `transforms`), so the pipeline derives it from
(seed, epoch, example). Missing joints (all coordinates exactly 0, the convention of Kinect and most pose
estimators) stay 0 through every step.

Per clip (`process_clip`), in this order:
1. person selection: (T, M, J, C) -> (T, J, C) by `person_selection` (`select_person`): by default the person
   who moves most over the joints observed ('observed_motion'), so that an idle bystander or a person whose joints
   drop out is not kept in place of the actor;
2. centring: subtract the mean of the centre joints (default: the layout's centre, its root unless the layout
   names other joints, e.g. the hips for COCO) taken in the first frame where they are all present
   ('first_frame', keeps the trajectory), in every frame ('per_frame') or not at all ('none');
3. scale: divide by the mean length of the present bones ('bone'), min-max every axis to [-1, 1] ('minmax', as the
   N-UCLA recipe) or leave ('none');
4. augmentation (training only): a random rotation (2D: in the image plane by U(-θ, θ); 3D: about x, y and z by
   U(-θ, θ) each, `transforms.rotation_matrix_xyz`) and a random global scale U(scale_range);
5. time: 'resample' to `num_frames` by linear interpolation (training: of a random window covering a fraction
   U(crop_interval) of the clip), or 'pad': keep the frame rate, zero-pad to `num_frames` (longer clips: a random
   window in training, the centre window otherwise) and report the real length for frame masks.

Shape letters: T frames, M persons, J joints, C coordinates (2 or 3).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from cascadeformer_jax.config import schema
from cascadeformer_jax.data import transforms

PERSON_SELECTIONS = schema.PERSON_SELECTIONS
CENTRE_MODES = schema.CENTRE_MODES
SCALES = schema.SCALES
TEMPORAL_MODES = schema.TEMPORAL_MODES

# person_selection 'auto': the rule the run's work directory was trained with (`trained_person_selection`), else
# NEW_PERSON_SELECTION. Work directories from before store FORMER_PERSON_SELECTION, or nothing.
AUTO_PERSON_SELECTION = 'auto'
NEW_PERSON_SELECTION = 'observed_motion'
FORMER_PERSON_SELECTION = 'abs_sum'
PERSON_SELECTION_FIELD = 'data.generic.person_selection'

# centre_joints: joint names, resolved to indices by the caller; () = the layout's centre joints.
DEFAULT_SETTINGS = schema.defaults('data.generic')


def present_joints(x: np.ndarray) -> np.ndarray:
  """(..., J) bool: joints with at least one non-zero coordinate in (..., J, C)."""
  return np.any(x != 0, axis=-1)


def observed_motion(skeleton: np.ndarray) -> np.ndarray:
  """(T, M, J, C) -> (M,) motion of every person: the temporal variance of each joint over the frames in which it is
  observed (not all zero), summed over joints and coordinates. Missing joints are not motion; a joint observed in
  fewer than two frames adds 0."""
  x = np.asarray(skeleton, np.float64)
  observed = present_joints(x)[..., None]  # (T, M, J, 1)
  frames = np.maximum(observed.sum(axis=0), 1)  # (M, J, 1)
  mean = np.where(observed, x, 0).sum(axis=0) / frames
  variance = np.where(observed, x - mean, 0) ** 2
  return (variance.sum(axis=0) / frames).sum(axis=(1, 2))


def select_person(skeleton: np.ndarray, rule: str = AUTO_PERSON_SELECTION) -> np.ndarray:
  """(T, M, J, C) -> (T, J, C), the person that ``rule`` keeps (ties: the first slot).

  'observed_motion' (and 'auto' wherever no trained rule replaced it): the largest `observed_motion`;
  'abs_sum' (the original NTU code's rule, the folder datasets' default before 'observed_motion'): the largest
  Σ|x|, i.e. the farthest from the origin; 'motion_variance': the largest temporal variance with missing joints
  counted as 0 (`transforms.select_person`); 'first': slot 0.
  """
  if skeleton.ndim == 3:
    return skeleton
  if rule not in PERSON_SELECTIONS:
    raise ValueError(f'unknown person selection rule {rule!r}; expected one of {PERSON_SELECTIONS}')
  if rule == 'first':
    return skeleton[:, 0]
  if rule in (AUTO_PERSON_SELECTION, NEW_PERSON_SELECTION):
    return skeleton[:, int(np.argmax(observed_motion(skeleton)))]
  return transforms.select_person(skeleton, rule)[0]


def trained_person_selection(stored: Mapping[str, Any] | None) -> str:
  """The person selection a trained run used, from its stored recipe or config (flat: {dotted field: value}).

  None (no trained run, or not a folder dataset's): NEW_PERSON_SELECTION. A folder dataset's recipe without the field
  was trained before it existed, with FORMER_PERSON_SELECTION.
  """
  if not stored or stored.get('data.layout') != 'generic':
    return NEW_PERSON_SELECTION
  rule = stored.get(PERSON_SELECTION_FIELD, FORMER_PERSON_SELECTION)
  return NEW_PERSON_SELECTION if rule == AUTO_PERSON_SELECTION else rule


def centre_clip(x: np.ndarray, centre_joints: Sequence[int], mode: str = 'first_frame') -> np.ndarray:
  """Subtracts the centre (mean of `centre_joints`) from every present joint of (T, J, C).

  'first_frame' uses the first frame in which all centre joints are present (no such frame: nothing changes);
  'per_frame' the centre of every frame (frames without it are left as they are).
  """
  if mode == 'none':
    return x
  if mode not in CENTRE_MODES:
    raise ValueError(f'unknown centre mode {mode!r}; expected one of {CENTRE_MODES}')
  present = present_joints(x)
  joints = list(centre_joints)
  has_centre = present[:, joints].all(axis=1)  # (T,)
  centre = x[:, joints].mean(axis=1)  # (T, C)
  if mode == 'first_frame':
    frames = np.flatnonzero(has_centre)
    if not len(frames):
      return x
    offset = np.broadcast_to(centre[frames[0]], centre.shape)
  else:
    offset = np.where(has_centre[:, None], centre, 0)
  return np.where(present[..., None], x - offset[:, None, :], np.zeros((), x.dtype)).astype(x.dtype, copy=False)


def mean_bone_length(x: np.ndarray, parents: np.ndarray) -> float:
  """Mean length of the bones (joint, parent ≠ joint) whose two ends are present, over all frames; 0 if none."""
  parents = np.asarray(parents)
  bones = np.flatnonzero(parents != np.arange(len(parents)))
  if not len(bones):
    return 0.0
  present = present_joints(x)
  valid = present[:, bones] & present[:, parents[bones]]
  if not valid.any():
    return 0.0
  lengths = np.linalg.norm(x[:, bones] - x[:, parents[bones]], axis=-1)
  return float(lengths[valid].mean())


def normalise_scale(x: np.ndarray, parents: np.ndarray, mode: str = 'bone') -> np.ndarray:
  """'bone': x / mean bone length (unchanged when it is 0); 'minmax': every axis of the present joints to
  [-1, 1] (a constant axis to 0); 'none': unchanged. Missing joints stay 0."""
  if mode == 'none':
    return x
  present = present_joints(x)
  if mode == 'bone':
    length = mean_bone_length(x, parents)
    return (x / length).astype(x.dtype, copy=False) if length > 0 else x
  if mode == 'minmax':
    if not present.any():
      return x
    points = x[present]
    low, span = points.min(axis=0), points.max(axis=0) - points.min(axis=0)
    scaled = np.where(span > 0, (x - low) / np.where(span > 0, span, 1) * 2 - 1, 0)
    return np.where(present[..., None], scaled, 0).astype(x.dtype, copy=False)
  raise ValueError(f'unknown scale mode {mode!r}; expected one of {SCALES}')


def random_rotation_scale(x: np.ndarray, rng: np.random.Generator, max_degrees: float,
                          scale_range: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
  """Random rotation about the origin (2D: in the plane; 3D: about x, y, z) and global scale of (T, J, C)."""
  theta = math.radians(max_degrees)
  coords = x.shape[-1]
  if coords == 2:
    angle = rng.uniform(-theta, theta) if theta > 0 else 0.0
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
  elif coords == 3:
    angles = rng.uniform(-theta, theta, size=3) if theta > 0 else np.zeros(3)
    rotation = transforms.rotation_matrix_xyz(angles)
  else:
    raise ValueError(f'rotation needs 2 or 3 coordinates, got {coords}')
  low, high = scale_range
  scale = rng.uniform(low, high) if high > low else low
  present = present_joints(x)
  out = (x @ (scale * rotation).T.astype(x.dtype)).astype(x.dtype, copy=False)
  return np.where(present[..., None], out, np.zeros((), x.dtype))


def resample_time(x: np.ndarray, num_frames: int, rng: np.random.Generator | None = None,
                  crop_interval: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
  """(L, J, C) -> (num_frames, J, C) by linear interpolation (`transforms.resize_time_linear`).

  With `rng`, first a random window of ⌈L·p⌉ frames, p ~ U(crop_interval), at a random start.
  Missing joints of either neighbouring frame leave the interpolated joint missing (0).
  """
  length = x.shape[0]
  if rng is not None and length > 1:
    low, high = crop_interval
    p = rng.uniform(low, high) if high > low else low
    window = min(max(int(math.ceil(length * p)), 1), length)
    start = int(rng.integers(0, length - window + 1))
    x = x[start:start + window]
  present = present_joints(x).astype(np.float32)[..., None]
  out = transforms.resize_time_linear(x, num_frames)
  # Interpolating presence: < 1 where a neighbour frame lacks the joint.
  kept = transforms.resize_time_linear(present, num_frames) >= 1 - 1e-6
  return np.where(kept, out, np.zeros((), x.dtype)).astype(x.dtype, copy=False)


def pad_time(x: np.ndarray, num_frames: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, int]:
  """(L, J, C) -> ((num_frames, J, C), real length): zero-pads short clips; a longer one is cut to a window of
  `num_frames` (random start with `rng`, else the centre window)."""
  length = x.shape[0]
  if length > num_frames:
    start = int(rng.integers(0, length - num_frames + 1)) if rng is not None else (length - num_frames) // 2
    return x[start:start + num_frames], num_frames
  return transforms.pad_time(x, num_frames), length


def process_clip(skeleton: np.ndarray, settings: Mapping[str, Any], parents: np.ndarray,
                 centre_joints: Sequence[int], num_frames: int, rng: np.random.Generator | None = None,
                 train: bool = False, augment: bool = True) -> tuple[np.ndarray, int]:
  """One stored clip -> one model input clip (module docstring).

  Args:
    skeleton: (T, M, J, C) or (T, J, C), T ≥ 1, finite.
    settings: keys of `DEFAULT_SETTINGS` (missing keys take those defaults).
    parents: (J,) joint parents (for the bone scale).
    centre_joints: indices of the centre joints (the caller resolves `settings['centre_joints']`, names, or
      takes the layout's centre).
    num_frames: T of the output.
    rng: per-example generator (used only when `train`).
    train: random window / rotation / scale instead of the deterministic transform.
    augment: with `train`, apply rotation and scale augmentation.

  Returns:
    ((num_frames, J, C) float32, number of real frames).
  """
  options = {**DEFAULT_SETTINGS, **dict(settings)}
  x = np.asarray(skeleton, dtype=np.float32)
  if x.ndim == 4:
    x = select_person(x, options['person_selection'])
  if x.ndim != 3 or x.shape[0] < 1:
    raise ValueError(f'expected a (T >= 1, J, C) or (T, M, J, C) clip, got shape {np.shape(skeleton)}')
  x = centre_clip(x, list(centre_joints), options['centre_mode'])
  x = normalise_scale(x, parents, options['scale'])
  use_rng = rng if train else None
  if use_rng is not None and augment:
    x = random_rotation_scale(x, use_rng, options['rotation_max_deg'], tuple(options['scale_range']))
  if options['temporal'] == 'resample':
    x = resample_time(x, num_frames, use_rng, tuple(options['crop_interval']))
    length = num_frames
  elif options['temporal'] == 'pad':
    x, length = pad_time(x, num_frames, use_rng)
  else:
    raise ValueError(f"unknown temporal mode {options['temporal']!r}; expected one of {TEMPORAL_MODES}")
  return x.astype(np.float32, copy=False), int(length)


def validate_settings(settings: Mapping[str, Any], joint_names: Sequence[str] | None = None) -> None:
  """Raises ValueError naming the field when a setting is unknown or outside its declared values (config/schema.py),
  or a centre joint is not one of ``joint_names``."""
  unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
  if unknown:
    raise ValueError(f'data config: unknown generic settings {unknown}; known: {sorted(DEFAULT_SETTINGS)}')
  schema.check({'data': {'generic': settings}}, 'data.generic')
  check_centre_joints(settings, joint_names)


def check_centre_joints(settings: Mapping[str, Any], joint_names: Sequence[str] | None) -> None:
  """Raises ValueError when a centre joint of ``settings`` is not one of ``joint_names`` (None: not known yet)."""
  for joint in settings.get('centre_joints', ()):
    if joint_names is not None and joint not in joint_names:
      raise ValueError(f'data config: generic.centre_joints has {joint!r}, not a joint of the layout '
                       f'{list(joint_names)}')
