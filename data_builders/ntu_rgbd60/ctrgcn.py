"""NTU RGB+D `.skeleton` parsing and the CTR-GCN cleaning (SGN / CTR-GCN / SkateFormer `data/ntu` scripts).

Pure functions on text and numpy arrays, reimplemented from the description in docs/datasets.md (CTR-GCN cleaning):

1. parse: frames without bodies are dropped; every bodyID keeps its (25, 3) joints of the frames it appears in and an
   interval of non-empty-frame indices that starts at its first appearance and grows by one per appearance (a body
   that disappears and comes back has its gap closed);
2. motion of each body = sum over x, y, z of the variance of its joints pooled over joints and frames;
3. with several bodyIDs: drop bodies tracked for <= 11 frames; drop bodies whose frames are "wide" (x-spread >
   0.8 y-spread) in >= 69.754 % of their frames, else lower their motion to that of their non-wide frames; sort by
   motion (descending, stable); fill two actor slots (a body goes into slot 1 when its interval does not overlap the
   slot-1 interval, else into slot 2 when it does not overlap the slot-2 interval, else it is dropped); delete frames
   whose values sum to exactly zero;
4. centre: subtract actor 1's joint 1 (spine_mid) of its first non-zero frame from every joint, then re-zero the
   frames in which an actor was absent.

All arithmetic is float32 like the original (the spread threshold is float64, as NumPy 1.x computed it), so the
results equal the `NTU60_CS.npz` / `NTU60_CV.npz` rows bit for bit.
"""

from collections.abc import Sequence
import dataclasses
import io
import re
import warnings

import numpy as np

NUM_JOINTS = 25
MIN_BODY_FRAMES = 12  # bodies tracked for <= 11 frames are noise
SPREAD_RATIO = 0.8
NOISY_FRAME_RATIO = 0.69754

SAMPLE_NAME_PATTERN = re.compile(r'S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})')
NTU60_MAX_SETUP = 17
NTU60_NUM_ACTIONS = 60

XSUB_TRAIN_PERFORMERS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
XSUB_TEST_PERFORMERS = (3, 6, 7, 10, 11, 12, 20, 21, 22, 23, 24, 26, 29, 30, 32, 33, 36, 37, 39, 40)
XVIEW_TRAIN_CAMERAS = (2, 3)
XVIEW_TEST_CAMERAS = (1,)
BENCHMARKS = ('xsub', 'xview')


class SkeletonFormatError(ValueError):
  """Malformed `.skeleton` text or data the cleaning cannot handle (message says where)."""


def parse_sample_name(name: str) -> dict[str, int]:
  """'S001C002P003R001A050' -> {'setup': 1, 'camera': 2, 'performer': 3, 'replication': 1, 'action': 50}."""
  match = SAMPLE_NAME_PATTERN.fullmatch(name)
  if match is None:
    raise ValueError(f'sample name {name!r} does not look like SsssCcccPpppRrrrAaaa')
  setup, camera, performer, replication, action = (int(group) for group in match.groups())
  return {'setup': setup, 'camera': camera, 'performer': performer, 'replication': replication, 'action': action}


def is_ntu60_sample(name: str) -> bool:
  """Whether a valid sample name belongs to NTU RGB+D 60 (setups 1-17, actions 1-60) rather than the 120 extension."""
  ids = parse_sample_name(name)
  return ids['setup'] <= NTU60_MAX_SETUP and ids['action'] <= NTU60_NUM_ACTIONS


def read_sample_list(text: str) -> list[str]:
  """Sample names in a list file (headers and other text ignored), in file order."""
  return [match.group(0) for match in SAMPLE_NAME_PATTERN.finditer(text)]


def split_groups(benchmark: str) -> dict[str, tuple[str, tuple[int, ...]]]:
  """{split: (name field, ids in CTR-GCN order)} for 'xsub' or 'xview'."""
  if benchmark == 'xsub':
    return {'train': ('performer', XSUB_TRAIN_PERFORMERS), 'test': ('performer', XSUB_TEST_PERFORMERS)}
  if benchmark == 'xview':
    return {'train': ('camera', XVIEW_TRAIN_CAMERAS), 'test': ('camera', XVIEW_TEST_CAMERAS)}
  raise ValueError(f'unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}')


def ctrgcn_split_order(names: Sequence[str], benchmark: str) -> dict[str, list[str]]:
  """Splits NTU60 sample names into train/test in the row order of CTR-GCN's npz files.

  CTR-GCN concatenates, for each id of the split's performer (x-sub) or camera (x-view) list in listed order, the
  samples with that id in the order of `skes_available_name.txt` (sorted names); `names` must be in that order.
  """
  return split_order(names, split_groups(benchmark))


def split_order(names: Sequence[str], groups: dict[str, tuple[str, Sequence[int]]]) -> dict[str, list[str]]:
  """{split: names} for `groups` = {split: (name field, ids in listed order)}, CTR-GCN's row order.

  Every split lists, for each of its ids in order, the names with that value of the field, in the order of `names`.
  """
  ordered = {}
  for split, (field, ids) in groups.items():
    by_id: dict[int, list[str]] = {i: [] for i in ids}
    for name in names:
      value = parse_sample_name(name)[field]
      if value in by_id:
        by_id[value].append(name)
    ordered[split] = [name for i in ids for name in by_id[i]]
  return ordered


@dataclasses.dataclass
class ParsedSkeleton:
  """Content of one `.skeleton` file as the CTR-GCN parser keeps it.

  Attributes:
    bodies: bodyID -> (joints (n * 25, 3) float32, interval: n non-empty-frame indices), in order of first
      appearance.
    num_frames: number of non-empty frames.
    dropped_frames: raw indices of the frames without bodies.
  """
  bodies: dict[str, tuple[np.ndarray, list[int]]]
  num_frames: int
  dropped_frames: list[int]


def _line_int(lines: list[str], index: int, what: str) -> int:
  if index >= len(lines):
    raise SkeletonFormatError(f'file ends after {len(lines)} lines, expected {what} at line {index + 1} '
                              '(truncated file?)')
  try:
    return int(lines[index])
  except ValueError:
    raise SkeletonFormatError(f'line {index + 1}: expected {what} (an integer), got {lines[index][:60]!r}') from None


def _parse_joint_lines(lines: list[str], starts: list[int]) -> np.ndarray:
  """x, y, z of the 25 joint lines starting at each index of `starts` -> (len(starts) * 25, 3) float32."""
  block = [lines[start + j] for start in starts for j in range(NUM_JOINTS)]
  try:  # fast C parser; any irregular line falls through to the line-by-line parse below
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')
      xyz = np.loadtxt(io.StringIO('\n'.join(block)), dtype=np.float64, usecols=(0, 1, 2), comments=None,
                       ndmin=2)
    if xyz.shape != (len(block), 3):
      raise ValueError('unexpected shape')
  except ValueError:
    xyz = np.empty((len(block), 3), np.float64)
    for row, (start, j) in enumerate((start, j) for start in starts for j in range(NUM_JOINTS)):
      fields = lines[start + j].split()
      try:
        if len(fields) < 3:
          raise ValueError('fewer than 3 fields')
        xyz[row] = [float(field) for field in fields[:3]]
      except ValueError:
        raise SkeletonFormatError(f'line {start + j + 1}: expected a joint line "x y z depthX depthY colorX colorY '
                                  f'... trackingState", got {lines[start + j][:80]!r}') from None
  if not np.all(np.isfinite(xyz)):
    bad_row = int(np.argwhere(~np.isfinite(xyz))[0, 0])
    start, j = starts[bad_row // NUM_JOINTS], bad_row % NUM_JOINTS
    raise SkeletonFormatError(f'line {start + j + 1}: non-finite joint coordinate in {lines[start + j][:80]!r}')
  return xyz.astype(np.float32)


def parse_skeleton_text(text: str) -> ParsedSkeleton:
  """Parses the text of a `.skeleton` file (LF or CRLF line endings).

  Raises:
    SkeletonFormatError: truncated or malformed text (the message gives the line), or a file without any body.
  """
  lines = text.splitlines()
  num_raw_frames = _line_int(lines, 0, 'the number of frames')
  if num_raw_frames < 0:
    raise SkeletonFormatError(f'line 1: negative number of frames {num_raw_frames}')
  line = 1
  valid_frame = -1
  # bodyID -> (index of its first non-empty frame, line index of each (25-line) joint block).
  tracks: dict[str, tuple[int, list[int]]] = {}
  dropped_frames = []
  for frame in range(num_raw_frames):
    num_bodies = _line_int(lines, line, f'the number of bodies of frame {frame}')
    if num_bodies < 0:
      raise SkeletonFormatError(f'line {line + 1}: negative number of bodies {num_bodies}')
    line += 1
    if num_bodies == 0:
      dropped_frames.append(frame)
      continue
    valid_frame += 1
    for body in range(num_bodies):
      if line >= len(lines) or not lines[line].split():
        raise SkeletonFormatError(f'line {line + 1}: expected the info line of body {body} of frame {frame} '
                                  '(starting with the bodyID)' + (' (file truncated?)' if line >= len(lines) else ''))
      body_id = lines[line].split()[0]
      num_joints = _line_int(lines, line + 1, f'the number of joints of body {body} of frame {frame}')
      if num_joints != NUM_JOINTS:
        raise SkeletonFormatError(f'line {line + 2}: expected {NUM_JOINTS} joints, got {num_joints}')
      start = line + 2
      if start + NUM_JOINTS > len(lines):
        raise SkeletonFormatError(f'file ends after {len(lines)} lines inside the joints of body {body} of frame '
                                  f'{frame} (truncated file?)')
      if body_id in tracks:
        tracks[body_id][1].append(start)
      else:
        tracks[body_id] = (valid_frame, [start])
      line = start + NUM_JOINTS
  if valid_frame < 0:
    raise SkeletonFormatError(f'all {num_raw_frames} frames are empty (no body at all)')

  all_starts = [start for _, starts in tracks.values() for start in starts]
  joints = _parse_joint_lines(lines, all_starts).reshape(len(all_starts), NUM_JOINTS, 3)
  bodies = {}
  offset = 0
  for body_id, (first, starts) in tracks.items():
    count = len(starts)
    bodies[body_id] = (joints[offset:offset + count].reshape(count * NUM_JOINTS, 3),
                       list(range(first, first + count)))
    offset += count
  return ParsedSkeleton(bodies=bodies, num_frames=valid_frame + 1, dropped_frames=dropped_frames)


def _motion(joints: np.ndarray) -> np.float32:
  """Sum over x, y, z of the variance pooled over all joints and frames; joints (N, 3) float32."""
  return np.sum(np.var(joints, axis=0))


def _non_wide_frames(joints: np.ndarray) -> np.ndarray:
  """Indices of the frames whose x-spread is <= 0.8 of the y-spread; joints (n, 25, 3) float32."""
  x_spread = joints[:, :, 0].max(axis=1) - joints[:, :, 0].min(axis=1)
  y_spread = joints[:, :, 1].max(axis=1) - joints[:, :, 1].min(axis=1)
  return np.flatnonzero(x_spread <= SPREAD_RATIO * y_spread.astype(np.float64))


def denoise_bodies(parsed: ParsedSkeleton) -> list[tuple[str, np.float32]]:
  """The bodies kept by the CTR-GCN denoising, as (bodyID, motion), in the order they fill the actor slots.

  A single bodyID is kept as is (motion reported as 0). With several: bodies tracked for <= 11 frames are dropped;
  then, while more than one is left, a body is dropped when >= 69.754 % of its frames are wide, else its motion
  becomes min(motion, motion of its non-wide frames); the rest is sorted by motion, descending, ties in order of
  first appearance.

  Raises:
    SkeletonFormatError: several bodyIDs but none tracked for more than 11 frames.
  """
  if len(parsed.bodies) == 1:
    return [(next(iter(parsed.bodies)), np.float32(0))]
  motion = {body_id: _motion(joints) for body_id, (joints, _) in parsed.bodies.items()}
  kept = [body_id for body_id, (_, interval) in parsed.bodies.items() if len(interval) >= MIN_BODY_FRAMES]
  if not kept:
    raise SkeletonFormatError(f'{len(parsed.bodies)} bodies but none is tracked for more than '
                              f'{MIN_BODY_FRAMES - 1} frames; the CTR-GCN cleaning keeps no actor')
  if len(kept) > 1:
    for body_id in list(kept):
      if len(kept) == 1:
        break
      joints, interval = parsed.bodies[body_id]
      frames = joints.reshape(-1, NUM_JOINTS, 3)
      valid = _non_wide_frames(frames)
      num_noisy = len(interval) - len(valid)
      if num_noisy == 0:
        continue
      if num_noisy / float(len(interval)) >= NOISY_FRAME_RATIO:
        kept.remove(body_id)
      else:
        motion[body_id] = min(motion[body_id], _motion(frames[valid].reshape(-1, 3)))
    if len(kept) > 1:
      kept = sorted(kept, key=lambda body_id: motion[body_id], reverse=True)
  return [(body_id, motion[body_id]) for body_id in kept]


def select_actors(parsed: ParsedSkeleton) -> np.ndarray:
  """Denoises the bodies and places at most two actors.

  Returns:
    (T, 75) float32 when one body is kept, else (T, 150) float32 with rows [actor 1 joints 0-24 xyz, actor 2 ...];
    with several bodyIDs in the file, the frames whose values sum to zero are removed.

  Raises:
    SkeletonFormatError: see `denoise_bodies`.
  """
  num_frames = parsed.num_frames
  kept = [body_id for body_id, _ in denoise_bodies(parsed)]
  if len(kept) == 1:
    joints, interval = parsed.bodies[kept[0]]
    out = np.zeros((num_frames, 75), np.float32)
    out[interval[0]:interval[-1] + 1] = joints.reshape(-1, 75)
  else:
    out = np.zeros((num_frames, 150), np.float32)
    joints, interval = parsed.bodies[kept[0]]
    start1, end1 = interval[0], interval[-1]
    out[start1:end1 + 1, :75] = joints.reshape(-1, 75)
    start2, end2 = 0, 0  # virtual initial interval of actor 2
    for body_id in kept[1:]:
      joints, interval = parsed.bodies[body_id]
      start, end = interval[0], interval[-1]
      if min(end1, end) - max(start1, start) <= 0:
        out[start:end + 1, :75] = joints.reshape(-1, 75)
        start1, end1 = min(start, start1), max(end, end1)
      elif min(end2, end) - max(start2, start) <= 0:
        out[start:end + 1, 75:] = joints.reshape(-1, 75)
        start2, end2 = min(start, start2), max(end, end2)
  if len(parsed.bodies) == 1:
    return out
  return out[out.sum(axis=1) != 0]


def centre(joints: np.ndarray) -> np.ndarray:
  """CTR-GCN `seq_translation`: subtract actor 1's spine_mid of its first non-zero frame.

  Args:
    joints: (T, 75) or (T, 150) float32 from `select_actors`.

  Returns:
    Same shape, float32; in the two-actor layout the frames where an actor's values summed to zero stay zero.
  """
  two_actors = joints.shape[1] == 150
  if two_actors:
    absent1 = joints[:, :75].sum(axis=1) == 0
    absent2 = joints[:, 75:].sum(axis=1) == 0
  present = np.flatnonzero(np.any(joints[:, :75] != 0, axis=1))
  if present.size == 0:
    raise SkeletonFormatError('actor 1 has no frame with a non-zero joint; cannot centre')
  origin = joints[present[0], 3:6].copy()
  out = joints - np.tile(origin, joints.shape[1] // 3)
  if two_actors:
    out[absent1, :75] = 0
    out[absent2, 75:] = 0
  return out


def to_clip(rows: np.ndarray) -> tuple[np.ndarray, int]:
  """(T, 75 | 150) rows -> (skeleton (T, 2, 25, 3) float32, number of non-empty actor slots)."""
  rows = np.asarray(rows, np.float32)
  if rows.shape[1] == 75:
    rows = np.concatenate([rows, np.zeros_like(rows)], axis=1)
  skeleton = rows.reshape(rows.shape[0], 2, NUM_JOINTS, 3)
  num_bodies = 2 if np.any(skeleton[:, 1] != 0) else 1
  return skeleton, num_bodies


def clip_from_skeleton_text(text: str) -> tuple[np.ndarray, int]:
  """`.skeleton` text -> (skeleton (T, 2, 25, 3) float32 cleaned and centred, num_bodies)."""
  return to_clip(centre(select_actors(parse_skeleton_text(text))))


def clip_from_npz_row(row: np.ndarray) -> tuple[np.ndarray, int]:
  """One padded npz row (T_pad, 150) -> (skeleton (T, 2, 25, 3), num_bodies); T = 1 + last non-zero frame."""
  row = np.array(row, np.float32)
  nonzero = np.flatnonzero(np.any(row != 0, axis=1))
  if nonzero.size == 0:
    raise ValueError('the row is all zeros')
  return to_clip(row[:nonzero[-1] + 1])


def labels_from_npz(labels: np.ndarray) -> np.ndarray:
  """(N, 60) one-hot (CTR-GCN) or (N,) integer labels -> (N,) int64."""
  labels = np.asarray(labels)
  if labels.ndim == 2:
    return labels.argmax(axis=1)
  if labels.ndim == 1:
    return labels.astype(np.int64)
  raise ValueError(f'labels should be (N, 60) one-hot or (N,) integers, got shape {labels.shape}')
