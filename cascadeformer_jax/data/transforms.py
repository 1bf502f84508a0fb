"""Pure numpy transforms of single skeleton clips, as the original CascadeFormer loaders applied them.

Every function takes and returns numpy arrays and draws randomness only from an explicit
`np.random.Generator`, so the pipeline can derive it from (seed, epoch, example index).
Formulas and their sources are in `docs/datasets.md` (Penn Action preprocessing, N-UCLA preprocessing, NTU feeder
transforms); quirk numbers (Q5, Q11) refer to `docs/original_code.md`.

Shape letters: T frames, M actor slots (2), J joints, C coordinates.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from cascadeformer_jax.data import layouts

# --- Joint orders and skeleton trees --------------------------------------------------------------

# N-UCLA: model joint k = native Kinect v1 joint NUCLA_PARTITION_ORDER[k] (SkateFormer partition order:
# right arm, left arm, right leg, left leg, torso).
NUCLA_PARTITION_ORDER = np.array(layouts.NUCLA_PARTITION_ORDER, dtype=np.int64)

# Parent of every joint in native order (the root is its own parent, so its bone is zero); the trees of the named
# layouts `penn13`, `nucla20` and `ntu25` (see layouts.py).
# Penn Action has no torso joint; shoulders hang from the head and hips from the shoulders.
PENN_PARENTS = layouts.LAYOUTS['penn13'].parents_array
# N-UCLA feeders' bone pairs (docs/datasets.md, N-UCLA joints and classes), 0-based; shoulder_center (2) is the root.
NUCLA_PARENTS = layouts.LAYOUTS['nucla20'].parents_array
# CTR-GCN's NTU pairs, 0-based; spine_shoulder (20) is the root.
NTU_PARENTS = layouts.LAYOUTS['ntu25'].parents_array

# The four streams of multi-stream ensembles (CTR-GCN, pyskl) are joint, bone, motion (joint motion) and bone_motion.
REPRESENTATIONS = ('joint', 'bone', 'joint_bone', 'bone_param', 'motion', 'joint_motion', 'bone_motion')


# --- Generic helpers -------------------------------------------------------------------------------

def replace_nonfinite(x: np.ndarray) -> tuple[np.ndarray, int]:
  """Returns `x` with NaN/inf entries set to 0 and the number of entries replaced."""
  bad = ~np.isfinite(x)
  count = int(bad.sum())
  if count:
    x = np.where(bad, np.zeros((), x.dtype), x)
  return x, count


@functools.lru_cache(maxsize=4096)
def resize_time_weights(length: int, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Source frames and weights of `resize_time_linear` (cached: they depend only on the two lengths).

  Returns:
    i0, i1: (num_frames,) int64 source frames; lam: (num_frames,) float32 weight of `i1`. Read-only.
  """
  if length < 1:
    raise ValueError('resize_time_linear needs at least one frame')
  scale = np.float32(length) / np.float32(num_frames)
  src = (np.arange(num_frames, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
  src = np.maximum(src, np.float32(0))
  i0 = np.floor(src).astype(np.int64)
  i0 = np.minimum(i0, length - 1)
  i1 = np.minimum(i0 + 1, length - 1)
  lam = src - i0.astype(np.float32)
  for array in (i0, i1, lam):
    array.flags.writeable = False
  return i0, i1, lam


def resize_time_linear(x: np.ndarray, num_frames: int) -> np.ndarray:
  """Linear resize along axis 0 as PyTorch `interpolate(mode='bilinear', align_corners=False)`.

  Args:
    x: (L, ...) clip, L >= 1.
    num_frames: output length.

  Returns:
    (num_frames, ...) array of x's dtype; for t = 0 … num_frames−1,
    `src = max((t + 0.5)·L/num_frames − 0.5, 0)`, `out[t] = (1−λ)·x[⌊src⌋] + λ·x[min(⌊src⌋+1, L−1)]`.
  """
  i0, i1, lam = resize_time_weights(x.shape[0], num_frames)
  lam = lam.astype(x.dtype).reshape((num_frames,) + (1,) * (x.ndim - 1))
  return (1 - lam) * x[i0] + lam * x[i1]


def axis_range(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-axis (min, max) over all points of (..., C), each (C,).

  Reduces a contiguous (C, N) copy: NumPy's reduction over the long axis of a (N, C) array with a short C runs
  an element-at-a-time loop, several times slower than this.
  """
  columns = np.ascontiguousarray(x.reshape(-1, x.shape[-1]).T)
  return columns.min(axis=1), columns.max(axis=1)


def minmax_to_unit_range(x: np.ndarray, low: np.ndarray | None = None,
                         high: np.ndarray | None = None) -> np.ndarray:
  """Per-axis min-max over all points to [−1, 1]; an axis with zero range maps to 0.

  The original divides by zero there (quirk Q11); 0 keeps degenerate clips (e.g. one frame whose joints
  coincide along an axis, or an all-zero clip) finite.

  Args:
    x: (..., C).
    low, high: (C,) per-axis minimum and maximum to use instead of x's own (`axis_range` of a larger clip
      that `x` is a selection of).

  Returns:
    (..., C) in [−1, 1].
  """
  if low is None or high is None:
    low, high = axis_range(x)
  span = high - low
  safe_span = np.where(span > 0, span, 1)
  out = (x - low) / safe_span * 2 - 1
  return np.where(span > 0, out, np.zeros((), x.dtype))


def joint_representation(x: np.ndarray, parents: np.ndarray, mode: str,
                         num_valid_frames: int | None = None) -> np.ndarray:
  """Bone / motion input representations (the paper's appendix ablations).

  Args:
    x: (T, J, C) joint coordinates.
    parents: (J,) parent joint of every joint (root: itself), in the joint order of `x`.
    mode: 'joint' (unchanged), 'bone' (x − x[parent]), 'joint_bone' (concat on C → 2C),
      'bone_param' (bone length and unit direction → C + 1; zero bones give a zero direction),
      'motion' (x[t+1] − x[t], 0 for the last valid frame), 'joint_motion' (concat → 2C),
      'bone_motion' (the motion of the bones: b[t+1] − b[t] with b = x − x[parent]).
    num_valid_frames: frames ≥ this are padding and stay 0 in the motion modes (default: all valid).

  Returns:
    (T, J, C') float array.
  """
  if mode == 'joint':
    return x
  if mode in ('bone', 'joint_bone', 'bone_param'):
    bone = x - x[:, parents]
    if mode == 'bone':
      return bone
    if mode == 'joint_bone':
      return np.concatenate([x, bone], axis=-1)
    length = np.linalg.norm(bone, axis=-1, keepdims=True)
    direction = bone / np.where(length > 0, length, 1)
    return np.concatenate([length, direction], axis=-1).astype(x.dtype)
  if mode in ('motion', 'joint_motion', 'bone_motion'):
    source = x - x[:, parents] if mode == 'bone_motion' else x
    valid = x.shape[0] if num_valid_frames is None else num_valid_frames
    motion = np.zeros_like(source)
    if valid > 1:
      motion[:valid - 1] = source[1:valid] - source[:valid - 1]
    if mode == 'joint_motion':
      return np.concatenate([x, motion], axis=-1)
    return motion
  raise ValueError(f'unknown representation {mode!r}; expected one of {REPRESENTATIONS}')


def representation_channels(mode: str, num_coords: int) -> int:
  """Channels per joint that `joint_representation(mode)` produces from `num_coords` inputs."""
  if mode in ('joint', 'bone', 'motion', 'bone_motion'):
    return num_coords
  if mode in ('joint_bone', 'joint_motion'):
    return 2 * num_coords
  if mode == 'bone_param':
    return num_coords + 1
  raise ValueError(f'unknown representation {mode!r}; expected one of {REPRESENTATIONS}')


# --- NTU RGB+D 60 (CTR-GCN feeder) -----------------------------------------------------------------

def ntu_valid_length(skeleton: np.ndarray) -> int:
  """Number of frames whose plain coordinate sum is non-zero (valid frames are assumed to be 0 … L−1).

  Args:
    skeleton: (T, M, J, C).
  """
  return int(np.count_nonzero(skeleton.sum(axis=(1, 2, 3)) != 0))


def ntu_test_window(valid_length: int, crop_fraction: float = 0.95, position: float = 0.5) -> tuple[int, int]:
  """Window of length `L − 2·bias` with `bias = int((1 − p)·L / 2)`; returns (start, length).

  `position` 0.5 is the original's centre window `[bias, L − bias)`; 0 and 1 put the same window at the start and
  the end of the clip (for multi-clip evaluation).
  """
  bias = int((1 - crop_fraction) * valid_length / 2)
  return int(round(position * 2 * bias)), valid_length - 2 * bias


def ntu_train_window(valid_length: int, rng: np.random.Generator,
                     crop_interval: tuple[float, float] = (0.5, 1.0),
                     min_frames: int = 64) -> tuple[int, int]:
  """Random window: p ~ U(interval), `Lc = min(max(⌊L·p⌋, min_frames), L)`, start ~ U{0 … L − Lc}."""
  low, high = crop_interval
  p = rng.uniform(low, high) if high > low else low
  length = min(max(int(math.floor(valid_length * p)), min_frames), valid_length)
  start = int(rng.integers(0, valid_length - length + 1))
  return start, length


def rotation_matrix_xyz(angles: np.ndarray) -> np.ndarray:
  """CTR-GCN rotation `R = Rz·Ry·Rx` for angles (ax, ay, az) in radians; points rotate as `R·p`."""
  ax, ay, az = (float(a) for a in angles)
  cx, sx, cy, sy, cz, sz = (math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay),
                            math.cos(az), math.sin(az))
  rx = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
  ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
  rz = np.array([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
  return rz @ ry @ rx


def rotate_points(x: np.ndarray, rotation: np.ndarray) -> np.ndarray:
  """Applies `p ← R·p` to every point of `x` (..., 3); keeps x's dtype."""
  return (x @ rotation.T.astype(x.dtype)).astype(x.dtype, copy=False)


def select_person(x: np.ndarray, rule: str = 'abs_sum') -> tuple[np.ndarray, int]:
  """Keeps one actor slot.

  Args:
    x: (T, M, J, C) window.
    rule: 'abs_sum' — the original's argmax over slots of Σ_{t,j,c} |x| (quirk Q5; distance from the
      origin, not motion); 'motion_variance' — the paper's wording: argmax of Σ_{j,c} var_t(x), the
      temporal variance of every coordinate. Ties go to slot 0.

  Returns:
    ((T, J, C) selected actor, selected slot).
  """
  if rule == 'abs_sum':
    score = np.abs(x).sum(axis=(0, 2, 3), dtype=np.float64)
  elif rule == 'motion_variance':
    score = x.astype(np.float64).var(axis=0).sum(axis=(1, 2))
  else:
    raise ValueError(f"unknown person selection rule {rule!r}; expected 'abs_sum' or 'motion_variance'")
  slot = int(np.argmax(score))
  return x[:, slot], slot


def ntu_crop_resize(skeleton: np.ndarray, start: int, length: int, num_frames: int = 64) -> np.ndarray:
  """Crops frames `[start, start + length)` of (T, M, J, C) and resizes them to `num_frames`."""
  return resize_time_linear(skeleton[start:start + length], num_frames)


# --- N-UCLA (SkateFormer feeder) -------------------------------------------------------------------

def nucla_centre(x: np.ndarray) -> np.ndarray:
  """Subtracts joint 1 (spine) of frame 0 from every point of (L, J, C)."""
  return x - x[0, 1]


def nucla_view_matrix(angle_x_deg: float, angle_y_deg: float, scale: float) -> np.ndarray:
  """`Ry·(Rx·S)` for row-vector points (`X ← X·M`), angles in degrees.

  Written out (the products with zero entries drop out exactly), which is several times cheaper than three
  3×3 matrix products per clip.
  """
  ax, ay = math.radians(angle_x_deg), math.radians(angle_y_deg)
  cx, sx, cy, sy = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay)
  return np.array([[cy * scale, sy * (scale * sx), -sy * (scale * cx)],
                   [0.0, scale * cx, scale * sx],
                   [sy * scale, cy * -(scale * sx), cy * (scale * cx)]])


def nucla_random_view(x: np.ndarray, rng: np.random.Generator, max_degrees: int = 60,
                      scale_range: tuple[float, float] = (0.5, 1.5)) -> np.ndarray:
  """Random view transform: integer angles a, b ~ U{−max … max}°, s ~ U(scale_range); (L, J, 3)."""
  angle_x, angle_y = rng.integers(-max_degrees, max_degrees + 1, size=2)
  scale = rng.uniform(*scale_range)
  matrix = nucla_view_matrix(float(angle_x), float(angle_y), float(scale))
  return (x.reshape(-1, 3) @ matrix.astype(x.dtype)).reshape(x.shape)


@functools.lru_cache(maxsize=4096)
def nucla_test_frame_indices(length: int, num_frames: int = 64) -> np.ndarray:
  """`floor(linspace(0, L−1, num_frames))` (NumPy `astype(int)`); cached, read-only."""
  indices = np.linspace(0, length - 1, num_frames).astype(np.int64)
  indices.flags.writeable = False
  return indices


def nucla_train_frame_indices(length: int, rng: np.random.Generator, num_frames: int = 64,
                              copies: int = 100) -> np.ndarray:
  """Sorted draws without replacement from the multiset holding every index `copies` times."""
  positions = rng.choice(length * copies, size=num_frames, replace=False)
  return np.sort(positions % length)


def draw_drop_axis(rng: np.random.Generator, p: float, num_coords: int) -> int | None:
  """The random part of `drop_axis`: the coordinate axis to zero, or None (same draws in the same order)."""
  if rng.random() >= p:
    return None
  return int(rng.integers(0, num_coords))


def drop_axis(x: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
  """With probability p zeroes one coordinate axis (uniform over C) in all frames and joints."""
  axis = draw_drop_axis(rng, p, x.shape[-1])
  if axis is None:
    return x
  x = x.copy()
  x[..., axis] = 0
  return x


def draw_drop_joints(rng: np.random.Generator, p: float, num_frames: int, num_joints: int,
                     num_joints_range: tuple[int, int] = (4, 12),
                     num_frames_range: tuple[int, int] = (16, 32)) -> tuple[np.ndarray, np.ndarray] | None:
  """The random part of `drop_joints`: (frames, joints) to zero, or None (same draws in the same order)."""
  if rng.random() >= p:
    return None
  k = int(rng.integers(num_joints_range[0], num_joints_range[1] + 1))
  m = int(rng.integers(num_frames_range[0], num_frames_range[1] + 1))
  joints = rng.choice(num_joints, size=min(k, num_joints), replace=False)
  frames = rng.choice(num_frames, size=min(m, num_frames), replace=False)
  return frames, joints


def drop_joints(x: np.ndarray, rng: np.random.Generator, p: float,
                num_joints_range: tuple[int, int] = (4, 12),
                num_frames_range: tuple[int, int] = (16, 32)) -> np.ndarray:
  """With probability p zeroes k ~ U{4 … 12} distinct joints in m ~ U{16 … 32} distinct frames.

  Args:
    x: (T, J, C) with T ≥ 32.
  """
  drawn = draw_drop_joints(rng, p, x.shape[0], x.shape[1], num_joints_range, num_frames_range)
  if drawn is None:
    return x
  frames, joints = drawn
  x = x.copy()
  x[np.ix_(frames, joints)] = 0
  return x


# --- Penn Action -----------------------------------------------------------------------------------

def penn_zero_occluded(skeleton: np.ndarray, visibility: np.ndarray) -> np.ndarray:
  """(T, 13, 2) pixels with joints whose visibility is False set to (0, 0)."""
  return np.where(visibility[..., None], skeleton, np.zeros((), skeleton.dtype))


def penn_normalise_image(skeleton: np.ndarray, image_size: np.ndarray) -> np.ndarray:
  """Maps pixels to [−1, 1] by the frame size: `x/W·2 − 1`, `y/H·2 − 1`; image_size = (H, W)."""
  height, width = float(image_size[0]), float(image_size[1])
  scale = np.array([2 / width, 2 / height], dtype=skeleton.dtype)
  return skeleton * scale - 1


def pad_time(x: np.ndarray, num_frames: int) -> np.ndarray:
  """Zero-pads (T, ...) at the end of axis 0 to `num_frames` ≥ T."""
  if x.shape[0] > num_frames:
    raise ValueError(f'clip has {x.shape[0]} frames, more than the padded length {num_frames}')
  return np.pad(x, [(0, num_frames - x.shape[0])] + [(0, 0)] * (x.ndim - 1))
