"""Writers of miniature raw datasets in the exact raw formats (docs/datasets.md), and their expected contents.

All coordinates are binary fractions, so the decimal text, float32 and the arithmetic are exact.
"""

import json
import pathlib

import numpy as np
import scipy.io

# ---------------------------------------------------------------------------------------------------------------
# NTU RGB+D: `.skeleton` files F1-F6 (docs/datasets.md, test fixtures).

BODY_IDS = {'A': '72057594037931101', 'B': '72057594037931102', 'C': '72057594037931103', 'D': '72057594037931104'}
NTU_FIXTURE_NAMES = ('S001C001P001R001A001', 'S001C002P003R001A050', 'S001C003P002R002A051', 'S001C001P006R001A010',
                     'S001C002P005R002A008', 'S002C002P007R001A052')
NTU_MISSING_FIXTURE = 'S001C002P005R002A008'  # F5, on the official missing-skeleton list
# Rows of CTR-GCN's npz files for the fixtures (split rule order, docs/datasets.md, test fixtures).
NTU_NPZ_ORDER = {
    'xsub': {'train': ['S001C001P001R001A001', 'S001C003P002R002A051'],
             'test': ['S001C002P003R001A050', 'S001C001P006R001A010', 'S002C002P007R001A052']},
    'xview': {'train': ['S001C002P003R001A050', 'S002C002P007R001A052', 'S001C003P002R002A051'],
              'test': ['S001C001P001R001A001', 'S001C001P006R001A010']},
}


def tall(dx: float = 0.0) -> np.ndarray:
  """(25, 3) 'tall' body: x = j/64, y = j/16, z = 3 + j/64, shifted by dx in x."""
  j = np.arange(25, dtype=np.float64)
  return np.stack([j / 64 + dx, j / 16, 3 + j / 64], axis=-1)


def wide(dx: float = 0.0) -> np.ndarray:
  """(25, 3) 'wide' body (fails the spread test): x = j/16, y = j/64, z = 3 + j/64."""
  j = np.arange(25, dtype=np.float64)
  return np.stack([j / 16 + dx, j / 64, 3 + j / 64], axis=-1)


def _joint_lines(points: np.ndarray) -> list[str]:
  lines = []
  for j, (x, y, z) in enumerate(points):
    orientation = '0 0 0 0' if j in (3, 15, 19) else '0.5 0.5 0.5 0.5'
    tracking = 1 if j == 7 else 2
    lines.append(f'{x:.7g} {y:.7g} {z:.7g} {256 + j} {212 - j} {960 + j} {540 - j} {orientation} {tracking}')
  return lines


def skeleton_text(frames: list[list[tuple[str, np.ndarray]]], newline: str = '\n') -> str:
  """`.skeleton` text from frames given as lists of (body letter, (25, 3) joints)."""
  lines = [str(len(frames))]
  for bodies in frames:
    lines.append(str(len(bodies)))
    for letter, points in bodies:
      lines.append(f'{BODY_IDS[letter]} 0 1 1 1 1 0 0.015625 0.03125 2')
      lines.append('25')
      lines.extend(_joint_lines(points))
  return newline.join(lines) + newline


def ntu_fixture_texts() -> dict[str, str]:
  """{sample name: .skeleton text} of F1-F6."""
  moving = lambda k: tall(k / 8)  # pylint: disable=unnecessary-lambda-assignment
  f1 = [[('A', moving(0))], [], [('A', moving(1))], [('A', moving(2))]]
  f2 = [[('B', wide(1.0) if k in (3, 4) else tall(1.0)), ('A', moving(k))] for k in range(12)]
  f3 = []
  for k in range(24):
    bodies = [('A', moving(k))] if k < 12 else []
    bodies.append(('B', tall(1.0)))
    if k >= 12:
      bodies.append(('D', moving(k)))
    if k < 5:
      bodies.append(('C', tall(-1.0)))
    f3.append(bodies)
  f4 = [[('A', tall(k / 16))] for k in range(3)]
  f6 = [[('A', moving(k)), ('B', wide(1.0) if k < 9 else tall(1.0))] for k in range(12)]
  return {
      'S001C001P001R001A001': skeleton_text(f1),
      'S001C002P003R001A050': skeleton_text(f2),
      'S001C003P002R002A051': skeleton_text(f3),
      'S001C001P006R001A010': skeleton_text(f4, newline='\r\n'),
      'S001C002P005R002A008': '3\n0\n0\n0\n',
      'S002C002P007R001A052': skeleton_text(f6),
  }


def write_ntu_skeletons(manual_dir: pathlib.Path, names: tuple[str, ...] = NTU_FIXTURE_NAMES) -> pathlib.Path:
  """Writes `manual_dir/nturgb+d_skeletons/<name>.skeleton` for the given fixtures; returns that folder."""
  folder = manual_dir / 'nturgb+d_skeletons'
  folder.mkdir(parents=True, exist_ok=True)
  texts = ntu_fixture_texts()
  for name in names:
    (folder / f'{name}.skeleton').write_bytes(texts[name].encode('ascii'))
  return folder


def expected_ntu_clips() -> dict[str, tuple[np.ndarray, int]]:
  """Hand-derived cleaned + centred clips (T, 2, 25, 3) and num_bodies of the kept fixtures."""
  origin = np.array([1 / 64, 1 / 16, 3 + 1 / 64])
  centred = lambda points: points - origin  # pylint: disable=unnecessary-lambda-assignment

  def clip(actor1: list[np.ndarray], actor2: list[np.ndarray] | None = None) -> np.ndarray:
    out = np.zeros((len(actor1), 2, 25, 3))
    out[:, 0] = [centred(p) for p in actor1]
    if actor2 is not None:
      out[:, 1] = [centred(p) for p in actor2]
    return out.astype(np.float32)

  moving = lambda k: tall(k / 8)  # pylint: disable=unnecessary-lambda-assignment
  return {
      'S001C001P001R001A001': (clip([moving(k) for k in range(3)]), 1),
      'S001C002P003R001A050': (clip([moving(k) for k in range(12)],
                                    [wide(1.0) if k in (3, 4) else tall(1.0) for k in range(12)]), 2),
      'S001C003P002R002A051': (clip([moving(k) for k in range(24)], [tall(1.0)] * 24), 2),
      'S001C001P006R001A010': (clip([tall(k / 16) for k in range(3)]), 1),
      'S002C002P007R001A052': (clip([moving(k) for k in range(12)]), 1),
  }


def write_ntu_npz(manual_dir: pathlib.Path, benchmark: str, clips: dict[str, tuple[np.ndarray, int]] | None = None,
                  compressed: bool = False) -> pathlib.Path:
  """Writes `NTU60_CS.npz` (xsub) or `NTU60_CV.npz` (xview) in CTR-GCN's layout from `clips` (default: expected)."""
  clips = expected_ntu_clips() if clips is None else clips
  path = manual_dir / {'xsub': 'NTU60_CS.npz', 'xview': 'NTU60_CV.npz'}[benchmark]
  return write_ctrgcn_npz(path, NTU_NPZ_ORDER[benchmark], clips, 60, compressed)


def write_ctrgcn_npz(path: pathlib.Path, order: dict[str, list[str]], clips: dict[str, tuple[np.ndarray, int]],
                     num_classes: int, compressed: bool = False) -> pathlib.Path:
  """Writes an npz in CTR-GCN's layout: x_{split} (N, T_pad, 150) float32, y_{split} (N, K) one-hot float64."""
  pad = max(skeleton.shape[0] for skeleton, _ in clips.values())
  arrays = {}
  for split, names in order.items():
    x = np.zeros((len(names), pad, 150), np.float32)
    y = np.zeros((len(names), num_classes), np.float64)
    for row, name in enumerate(names):
      skeleton, _ = clips[name]
      x[row, :len(skeleton)] = skeleton.reshape(len(skeleton), 150)
      y[row, int(name[-3:]) - 1] = 1.0
    arrays[f'x_{split}'], arrays[f'y_{split}'] = x, y
  path.parent.mkdir(parents=True, exist_ok=True)
  (np.savez_compressed if compressed else np.savez)(path, **arrays)
  return path


def write_ntu_available_names(manual_dir: pathlib.Path) -> pathlib.Path:
  """CTR-GCN's `skes_available_name.txt` for the fixtures: all names except the missing one, sorted."""
  path = manual_dir / 'skes_available_name.txt'
  path.write_text(''.join(f'{name}\n' for name in sorted(NTU_FIXTURE_NAMES) if name != NTU_MISSING_FIXTURE))
  return path


# ---------------------------------------------------------------------------------------------------------------
# NTU RGB+D 120: the F1-F6 contents under NTU120 names, from both parts of the dataset (setups <= 17 and >= 18).

NTU120_FIXTURES = {  # NTU120 name: the NTU60 fixture whose .skeleton text it carries
    'S001C001P001R001A001': 'S001C001P001R001A001',  # F1: x-sub train (P001), x-set test (S001)
    'S018C002P045R001A106': 'S001C002P003R001A050',  # F2, two actors: train (P045) / train (S018)
    'S019C003P050R002A120': 'S001C003P002R002A051',  # F3: train (P050) / test (S019)
    'S020C001P060R001A061': 'S001C001P006R001A010',  # F4, CRLF: test (P060) / train (S020)
    'S032C003P067R002A066': 'S001C002P005R002A008',  # F5: on the NTU120 missing-skeleton list only
    'S032C002P106R001A110': 'S002C002P007R001A052',  # F6: test (P106) / train (S032)
}
NTU120_MISSING_FIXTURE = 'S032C003P067R002A066'
NTU120_NPZ_ORDER = {
    'xsub': {'train': ['S001C001P001R001A001', 'S018C002P045R001A106', 'S019C003P050R002A120'],
             'test': ['S020C001P060R001A061', 'S032C002P106R001A110']},
    'xset': {'train': ['S018C002P045R001A106', 'S020C001P060R001A061', 'S032C002P106R001A110'],
             'test': ['S001C001P001R001A001', 'S019C003P050R002A120']},
}


def write_ntu120_skeletons(manual_dir: pathlib.Path, names: tuple[str, ...] = tuple(NTU120_FIXTURES)
                           ) -> pathlib.Path:
  """Writes `manual_dir/nturgb+d_skeletons/<name>.skeleton` for NTU120 fixtures; returns that folder."""
  folder = manual_dir / 'nturgb+d_skeletons'
  folder.mkdir(parents=True, exist_ok=True)
  texts = ntu_fixture_texts()
  for name in names:
    (folder / f'{name}.skeleton').write_bytes(texts[NTU120_FIXTURES[name]].encode('ascii'))
  return folder


def expected_ntu120_clips() -> dict[str, tuple[np.ndarray, int]]:
  """Cleaned + centred clips of the kept NTU120 fixtures (those of the NTU60 fixtures with the same text)."""
  ntu60 = expected_ntu_clips()
  return {name: ntu60[source] for name, source in NTU120_FIXTURES.items() if name != NTU120_MISSING_FIXTURE}


def write_ntu120_npz(manual_dir: pathlib.Path, benchmark: str, compressed: bool = False) -> pathlib.Path:
  """Writes `NTU120_CSub.npz` (xsub) or `NTU120_CSet.npz` (xset) in CTR-GCN's layout (120 one-hot columns)."""
  path = manual_dir / {'xsub': 'NTU120_CSub.npz', 'xset': 'NTU120_CSet.npz'}[benchmark]
  return write_ctrgcn_npz(path, NTU120_NPZ_ORDER[benchmark], expected_ntu120_clips(), 120, compressed)


def write_ntu120_available_names(manual_dir: pathlib.Path) -> pathlib.Path:
  """CTR-GCN's `skes_available_name.txt` for the NTU120 fixtures: all names except the missing one, sorted."""
  path = manual_dir / 'skes_available_name.txt'
  manual_dir.mkdir(parents=True, exist_ok=True)
  path.write_text(''.join(f'{name}\n' for name in sorted(NTU120_FIXTURES) if name != NTU120_MISSING_FIXTURE))
  return path


# ---------------------------------------------------------------------------------------------------------------
# N-UCLA: `all_sqe/*.json` (docs/datasets.md, test fixtures).

N_UCLA_FIXTURES = {  # name: (T, label in file)
    'a01_s01_e00_v01': (3, 1),
    'a12_s10_e04_v02': (2, 10),
    'a08_s02_e01_v03': (4, 7),
    'a02_s09_e04_v03': (1, 2),
}


def n_ucla_skeleton(frames: int) -> np.ndarray:
  """(T, 20, 3): x = j/32 - 0.25 + t/8, y = 0.5 - j/16, z = 2.5 + j/64."""
  t = np.arange(frames, dtype=np.float64)[:, None]
  j = np.arange(20, dtype=np.float64)[None, :]
  return np.stack(np.broadcast_arrays(j / 32 - 0.25 + t / 8, 0.5 - j / 16 + 0 * t, 2.5 + j / 64 + 0 * t), axis=-1)


def write_n_ucla(manual_dir: pathlib.Path) -> pathlib.Path:
  folder = manual_dir / 'all_sqe'
  folder.mkdir(parents=True, exist_ok=True)
  for name, (frames, label) in N_UCLA_FIXTURES.items():
    content = {'file_name': name, 'skeletons': n_ucla_skeleton(frames).tolist(), 'label': label}
    with open(folder / f'{name}.json', 'w') as f:
      json.dump(content, f)
  return folder


# ---------------------------------------------------------------------------------------------------------------
# Penn Action: `Penn_Action/labels/NNNN.mat` (docs/datasets.md, test fixtures).

PENN_FIXTURES = {  # video id: (action, pose, train, T, (H, W), occluded (frame, joint) pairs; frame None = all)
    '0001': ('baseball_pitch', 'front', 1, 3, (480, 640), [(1, 12)]),
    '0002': ('bench_press', 'left', 1, 4, (360, 480), [(None, 0)]),
    '0003': ('tennis_serve', 'back', -1, 2, (272, 481), []),
}


def penn_arrays(frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """x, y (T, 13) and bbox (T, 4) = [min x, min y, max x, max y]: x = 100 + 10j + t, y = 50 + 5j + 2t."""
  t = np.arange(frames, dtype=np.float64)[:, None]
  j = np.arange(13, dtype=np.float64)[None, :]
  x = 100 + 10 * j + t
  y = 50 + 5 * j + 2 * t
  bbox = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], axis=-1)
  return x, y, bbox


def penn_mat_content(video_id: str) -> dict[str, object]:
  action, pose, train, frames, (height, width), occluded = PENN_FIXTURES[video_id]
  x, y, bbox = penn_arrays(frames)
  visibility = np.ones((frames, 13), dtype=bool)
  for frame, joint in occluded:
    visibility[slice(None) if frame is None else frame, joint] = False
  return {
      'action': action, 'pose': pose, 'x': x, 'y': y, 'visibility': visibility,
      'train': np.array([[float(train)]]), 'bbox': bbox,
      'dimensions': np.array([[float(height), float(width), float(frames)]]),
      'nframes': np.array([[float(frames)]]),
  }


def write_penn_action(manual_dir: pathlib.Path) -> pathlib.Path:
  folder = manual_dir / 'Penn_Action' / 'labels'
  folder.mkdir(parents=True, exist_ok=True)
  for video_id in PENN_FIXTURES:
    scipy.io.savemat(folder / f'{video_id}.mat', penn_mat_content(video_id), format='5', do_compression=True)
  return folder
