"""Pure numpy transforms of skeleton clips, as the original CascadeFormer loaders applied them.

Every function takes and returns numpy arrays. Random augmentation parameters are computed for a whole batch at
once from uniform draws of the examples' own random streams (`random_streams.ExampleStreams`, keyed by seed,
epoch and example index); the functions that apply them are deterministic. `examples.py` applies the transforms
to whole batches; the single-clip forms here (`ntu_valid_length`, `ntu_crop_resize`, `rotate_points`,
`nucla_centre`, `axis_range`, ...) state them one clip at a time, and the tests hold the batched code to them.
Formulas and their sources are in `docs/datasets.md` (Penn Action preprocessing, N-UCLA preprocessing, NTU feeder
transforms); quirk numbers (Q5, Q11) refer to `docs/original_code.md`.

Shape letters: T frames, M actor slots (2), J joints, C coordinates.
"""

from __future__ import annotations

import functools

import numpy as np

from cascadeformer_jax.data import layouts
from cascadeformer_jax.data import random_streams

# Purposes of the per-example random streams (`random_streams.ExampleStreams`): a dataset's fixed-size draws are
# columns of one `AUGMENTATION` block; N-UCLA's frame sampling reads a stream of its own.
AUGMENTATION, NUCLA_FRAMES = 1, 2
# Columns of the block: NTU window (2) and rotation (3); N-UCLA view (3) and drops (5 + J + T).
NTU_DRAWS = 5

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


def resize_weights(lengths: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Source frames and weights of `resize_time_linear` for clips of `lengths` (N,) frames, all ≥ 1.

  Returns:
    i0, i1: (N, num_frames) int64 source frames; lam: (N, num_frames) float32 weight of `i1`.
  """
  lengths = np.asarray(lengths, dtype=np.int64).reshape(-1, 1)
  if (lengths < 1).any():
    raise ValueError('resize_time_linear needs at least one frame')
  scale = lengths.astype(np.float32) / np.float32(num_frames)
  src = (np.arange(num_frames, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
  src = np.maximum(src, np.float32(0))
  i0 = np.minimum(np.floor(src).astype(np.int64), lengths - 1)
  i1 = np.minimum(i0 + 1, lengths - 1)
  return i0, i1, src - i0.astype(np.float32)


@functools.lru_cache(maxsize=4096)
def resize_time_weights(length: int, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """`resize_weights` of one clip: (num_frames,) i0, i1, lam; cached and read-only."""
  arrays = tuple(array[0] for array in resize_weights(np.array([length]), num_frames))
  for array in arrays:
    array.flags.writeable = False
  return arrays


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
  if (span > 0).all():
    out = x - low
    out /= span
    out *= 2
    out -= 1
    return out
  out = (x - low) / np.where(span > 0, span, 1) * 2 - 1
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


def ntu_test_window(valid_length, crop_fraction: float = 0.95, position: float = 0.5):
  """Window of length `L − 2·bias` with `bias = ⌊(1 − p)·L / 2⌋`; returns (start, length).

  `position` 0.5 is the original's centre window `[bias, L − bias)`; 0 and 1 put the same window at the start and
  the end of the clip (for multi-clip evaluation). `valid_length` may be an int (ints returned) or an (N,) array.
  """
  lengths = np.asarray(valid_length, dtype=np.int64)
  bias = np.floor((1 - crop_fraction) * lengths / 2).astype(np.int64)
  start = np.round(position * 2 * bias).astype(np.int64)
  if lengths.ndim == 0:
    return int(start), int(lengths - 2 * bias)
  return start, lengths - 2 * bias


def ntu_train_windows(valid_lengths: np.ndarray, u: np.ndarray, crop_interval: tuple[float, float] = (0.5, 1.0),
                      min_frames: int = 64) -> tuple[np.ndarray, np.ndarray]:
  """Random windows: p ~ U(interval), `Lc = min(max(⌊L·p⌋, min_frames), L)`, start ~ U{0 … L − Lc}.

  Args:
    valid_lengths: (N,) valid frames L.
    u: (N, 2) uniform draws on [0, 1).

  Returns:
    (starts, lengths), each (N,) int64.
  """
  valid_lengths = np.asarray(valid_lengths, dtype=np.int64)
  low, high = crop_interval
  p = low + (high - low) * u[:, 0] if high > low else np.full(len(valid_lengths), float(low))
  lengths = np.minimum(np.maximum(np.floor(valid_lengths * p).astype(np.int64), min_frames), valid_lengths)
  starts = np.floor(u[:, 1] * (valid_lengths - lengths + 1)).astype(np.int64)
  return starts, lengths


def rotation_matrices_xyz(angles: np.ndarray) -> np.ndarray:
  """CTR-GCN rotations `R = Rz·Ry·Rx` for (N, 3) angles (ax, ay, az) in radians: (N, 3, 3) float64.

  Points rotate as `R·p`.
  """
  angles = np.asarray(angles, dtype=np.float64).reshape(-1, 3)
  cos, sin = np.cos(angles), np.sin(angles)
  zero, one = np.zeros(len(angles)), np.ones(len(angles))
  (cx, cy, cz), (sx, sy, sz) = cos.T, sin.T
  rx = np.stack([one, zero, zero, zero, cx, sx, zero, -sx, cx], axis=-1).reshape(-1, 3, 3)
  ry = np.stack([cy, zero, -sy, zero, one, zero, sy, zero, cy], axis=-1).reshape(-1, 3, 3)
  rz = np.stack([cz, sz, zero, -sz, cz, zero, zero, zero, one], axis=-1).reshape(-1, 3, 3)
  return rz @ ry @ rx


def rotation_matrix_xyz(angles: np.ndarray) -> np.ndarray:
  """`rotation_matrices_xyz` of one (3,) angle triple: (3, 3)."""
  return rotation_matrices_xyz(np.asarray(angles)[None])[0]


def ntu_rotations(u: np.ndarray, max_radians: float) -> np.ndarray:
  """(N, 3, 3) rotations `rotation_matrices_xyz` of angles U(−max, max) each, from (N, 3) uniform draws u."""
  return rotation_matrices_xyz((2 * u - 1) * max_radians)


def rotate_points(x: np.ndarray, rotation: np.ndarray) -> np.ndarray:
  """Applies `p ← R·p` to every point of `x` (..., 3); keeps x's dtype."""
  return (x @ rotation.T.astype(x.dtype)).astype(x.dtype, copy=False)


def select_persons(x: np.ndarray, rule: str = 'abs_sum') -> tuple[np.ndarray, np.ndarray]:
  """Keeps one actor slot of every clip.

  Args:
    x: (N, T, M, J, C) windows.
    rule: 'abs_sum' — the original's argmax over slots of Σ_{t,j,c} |x| (quirk Q5; distance from the
      origin, not motion); 'motion_variance' — the paper's wording: argmax of Σ_{j,c} var_t(x), the
      temporal variance of every coordinate. Ties go to slot 0.

  Returns:
    ((N, T, J, C) selected actors, (N,) selected slots).
  """
  n, t, m = x.shape[:3]
  if rule == 'abs_sum':
    score = np.abs(x).reshape(n, t, m, -1).sum(axis=3, dtype=np.float64).sum(axis=1)
  elif rule == 'motion_variance':
    score = x.reshape(n, t, m, -1).astype(np.float64).var(axis=1).sum(axis=2)
  else:
    raise ValueError(f"unknown person selection rule {rule!r}; expected 'abs_sum' or 'motion_variance'")
  slots = np.argmax(score, axis=1)
  return x[np.arange(n), :, slots], slots


def select_person(x: np.ndarray, rule: str = 'abs_sum') -> tuple[np.ndarray, int]:
  """`select_persons` of one (T, M, J, C) window: ((T, J, C) selected actor, selected slot)."""
  selected, slots = select_persons(x[None], rule)
  return selected[0], int(slots[0])


def ntu_crop_resize(skeleton: np.ndarray, start: int, length: int, num_frames: int = 64) -> np.ndarray:
  """Crops frames `[start, start + length)` of (T, M, J, C) and resizes them to `num_frames`."""
  return resize_time_linear(skeleton[start:start + length], num_frames)


# --- N-UCLA (SkateFormer feeder) -------------------------------------------------------------------

def nucla_centre(x: np.ndarray) -> np.ndarray:
  """Subtracts joint 1 (spine) of frame 0 from every point of (L, J, C)."""
  return x - x[0, 1]


def nucla_view_matrices(angles_x_deg, angles_y_deg, scales) -> np.ndarray:
  """`Ry·(Rx·S)` for row-vector points (`X ← X·M`), angles in degrees: (N, 3, 3) float64 for (N,) inputs.

  Written out (the products with zero entries drop out exactly) instead of three 3×3 matrix products.
  """
  ax, ay = np.radians(np.asarray(angles_x_deg, np.float64)), np.radians(np.asarray(angles_y_deg, np.float64))
  scale = np.asarray(scales, np.float64)
  cx, sx, cy, sy = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay)
  zero = np.zeros_like(cx)
  return np.stack([cy * scale, sy * (scale * sx), -sy * (scale * cx),
                   zero, scale * cx, scale * sx,
                   sy * scale, cy * -(scale * sx), cy * (scale * cx)], axis=-1).reshape(-1, 3, 3)


@functools.lru_cache(maxsize=8)
def _nucla_view_table(max_degrees: int) -> np.ndarray:
  """(2·max + 1, 2·max + 1, 3, 3) `nucla_view_matrices` with scale 1 of every integer angle pair (a, b)."""
  angles = np.arange(-max_degrees, max_degrees + 1, dtype=np.float64)
  grid_x, grid_y = np.meshgrid(angles, angles, indexing='ij')
  table = nucla_view_matrices(grid_x.ravel(), grid_y.ravel(), np.ones(grid_x.size))
  table = table.reshape(len(angles), len(angles), 3, 3)
  table.flags.writeable = False
  return table


def nucla_views(u: np.ndarray, max_degrees: int = 60, scale_range: tuple[float, float] = (0.5, 1.5)) -> np.ndarray:
  """(N, 3, 3) random view matrices from (N, 3) uniform draws: integer angles a, b ~ U{−max … max}°,
  s ~ U(scale_range); `nucla_view_matrices(a, b, 1)·s` (the scale factors out of every entry)."""
  angles = np.floor(u[:, :2] * (2 * max_degrees + 1)).astype(np.int64)
  low, high = scale_range
  scale = low + (high - low) * u[:, 2]
  return _nucla_view_table(max_degrees)[angles[:, 0], angles[:, 1]] * scale[:, None, None]


@functools.lru_cache(maxsize=4096)
def nucla_test_frame_indices(length: int, num_frames: int = 64) -> np.ndarray:
  """`floor(linspace(0, L−1, num_frames))` (NumPy `astype(int)`); cached, read-only."""
  indices = np.linspace(0, length - 1, num_frames).astype(np.int64)
  indices.flags.writeable = False
  return indices


def draw_nucla_train_frame_indices(lengths: np.ndarray, streams: random_streams.ExampleStreams,
                                   num_frames: int = 64, copies: int = 100) -> np.ndarray:
  """(N, num_frames) sorted frame indices: draws without replacement from the multiset holding every frame of
  a clip `copies` times (distinct positions of [0, copies·L), position p standing for frame ⌊p / copies⌋).

  The original numbers the copies p ↦ p mod L; any numbering with `copies` positions per frame gives the same
  distribution, and this one keeps sorted positions sorted.
  """
  lengths = np.asarray(lengths, dtype=np.int64)
  return streams.distinct_integers(NUCLA_FRAMES, lengths * copies, num_frames) // copies


def nucla_drops(u: np.ndarray, p: float, num_frames: int, num_joints: int, num_coords: int,
                num_joints_range: tuple[int, int] = (4, 12),
                num_frames_range: tuple[int, int] = (16, 32)) -> tuple[np.ndarray, np.ndarray | None]:
  """The random parts of N-UCLA's two drop augmentations, each applied with probability p.

  Args:
    u: (N, 5 + J + T) uniform draws on [0, 1).

  Returns:
    axes: (N,) int64, one coordinate axis (uniform over C) to zero, or −1;
    joints: (N, T, J) bool, k ~ U{4 … 12} distinct joints in m ~ U{16 … 32} distinct frames to zero (all False
      for clips without the drop), or None when no clip has it.
  """
  axes = np.where(u[:, 0] < p, np.floor(u[:, 1] * num_coords).astype(np.int64), -1)
  applied = u[:, 2] < p
  if not applied.any():
    return axes, None
  k = num_joints_range[0] + np.floor(u[:, 3] * (num_joints_range[1] - num_joints_range[0] + 1)).astype(np.int64)
  m = num_frames_range[0] + np.floor(u[:, 4] * (num_frames_range[1] - num_frames_range[0] + 1)).astype(np.int64)
  joints = random_streams.smallest(u[:, 5:5 + num_joints], np.minimum(k, num_joints))
  frames = random_streams.smallest(u[:, 5 + num_joints:5 + num_joints + num_frames], np.minimum(m, num_frames))
  return axes, applied[:, None, None] & frames[:, :, None] & joints[:, None, :]


def apply_drops(x: np.ndarray, axes: np.ndarray, joints: np.ndarray | None) -> np.ndarray:
  """Zeroes, in place, axis `axes[i]` (≥ 0) of clip i and the (frame, joint) points where `joints` is True.

  Args:
    x: channels-first (C, N, T, J); axes, joints: from `nucla_drops`.
  """
  rows = np.flatnonzero(axes >= 0)
  if len(rows):
    x[axes[rows], rows] = 0
  if joints is not None:
    x[:, joints] = 0
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


def padded_length(longest: int, length_buckets: tuple[int, ...] = (), pad_multiple: int = 1) -> int:
  """Frames a batch whose longest clip has ``longest`` frames is padded to (Penn, ``padding='batch_max'``).

  The first of ``length_buckets`` that holds the clip (``longest`` itself beyond the last bucket, or without
  buckets), rounded up to a multiple of ``pad_multiple``.
  """
  target = next((bucket for bucket in length_buckets if bucket >= longest), longest)
  return -(-target // pad_multiple) * pad_multiple
