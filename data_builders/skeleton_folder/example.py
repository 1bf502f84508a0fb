"""Writes a small, learnable example skeleton folder in any named layout (for tests and the README walkthrough).

  python -m data_builders.skeleton_folder.example --output=my_dataset --layout=coco17 [--coords=2]
      [--clips_per_class=24] [--test_fraction=0.25] [--format=npy|npz|json] [--group_split] [--seed=0]

Five classes of distinct whole-body motions: wave (the right forearm swings above the head), clap (the hands meet in
front of the chest), jumping_jack (arms and legs spread and close, the body bounces), squat (the body goes down and
up, arms forward) and side_kick (the left leg swings out sideways). A clip is a 25-joint Kinect-v2-ordered body
(metres) with per-clip body size, tempo, phase, amplitude, length (30-60 frames), facing direction (±30°), position
and joint noise, mapped to the requested layout with `cascadeformer_jax.data.layouts.convert`; 2D clips are the
image-plane projection in pixels (x right, y down). In 30 % of the clips one joint is missing (zeros) for a few
frames. Deterministic: the folder depends only on the arguments.

`--group_split` writes a `subject` column and a split rule in dataset.json instead of a split column.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import pathlib
import sys

import numpy as np

from cascadeformer_jax.data import layouts

CLASS_NAMES = ('wave', 'clap', 'jumping_jack', 'squat', 'side_kick')
FPS = 30.0
_J = {name: index for index, name in enumerate(layouts.NTU25_JOINTS)}


def _arm(points: dict[str, np.ndarray], side: str, sign: float, upper: np.ndarray, lower: np.ndarray,
         forward: np.ndarray, scale: float) -> None:
  """Places elbow, wrist, hand, hand tip and thumb from angles (T,) measured from straight down, in the frontal
  plane (outwards positive) tilted forward by `forward` (T,) radians."""
  shoulder = points[f'shoulder_{side}']

  def direction(angle):  # down-pointing unit vector rotated outwards by `angle`, then forwards by `forward`
    return np.stack([sign * np.sin(angle), -np.cos(angle) * np.cos(forward), np.cos(angle) * np.sin(forward)],
                    axis=-1)

  elbow = shoulder + 0.29 * scale * direction(upper)
  wrist = elbow + 0.26 * scale * direction(lower)
  points[f'elbow_{side}'] = elbow
  points[f'wrist_{side}'] = wrist
  points[f'hand_{side}'] = wrist + 0.08 * scale * direction(lower)
  points[f'hand_tip_{side}'] = wrist + 0.16 * scale * direction(lower)
  points[f'thumb_{side}'] = wrist + 0.06 * scale * direction(lower) + np.array([0, 0, 0.04 * scale])


def _leg(points: dict[str, np.ndarray], side: str, sign: float, spread: np.ndarray, knee_bend: np.ndarray,
         scale: float) -> None:
  """Places knee, ankle and foot: the leg swings out by `spread` (T,) radians, the knee bends forward."""
  hip = points[f'hip_{side}']
  thigh = np.stack([sign * np.sin(spread), -np.cos(spread) * np.cos(knee_bend), np.sin(knee_bend)], axis=-1)
  shin = np.stack([sign * np.sin(spread), -np.cos(spread) * np.cos(knee_bend), -np.sin(knee_bend)], axis=-1)
  knee = hip + 0.45 * scale * thigh
  ankle = knee + 0.43 * scale * shin
  points[f'knee_{side}'] = knee
  points[f'ankle_{side}'] = ankle
  points[f'foot_{side}'] = ankle + np.array([0, -0.06 * scale, 0.12 * scale])


def generate_clip(rng: np.random.Generator, label: int) -> np.ndarray:
  """One (T, 25, 3) clip of class CLASS_NAMES[label] in the ntu25 layout, metres, y up."""
  frames = int(rng.integers(30, 61))
  scale = rng.uniform(0.85, 1.15)
  tempo = rng.uniform(0.7, 1.3)  # Hz
  amplitude = rng.uniform(0.8, 1.2)
  t = np.arange(frames) / FPS
  phase = 2 * np.pi * tempo * t + rng.uniform(0, 2 * np.pi)
  cycle = 0.5 * (1 - np.cos(phase))  # 0 .. 1
  name = CLASS_NAMES[label]
  zeros = np.zeros(frames)
  lift = zeros.copy()
  if name == 'squat':
    lift = -0.35 * scale * amplitude * cycle
  elif name == 'jumping_jack':
    lift = 0.06 * scale * amplitude * np.abs(np.sin(phase))
  pelvis = np.stack([zeros, 1.0 * scale + lift, zeros], axis=-1)
  points = {'spine_base': pelvis}
  for joint, height in (('spine_mid', 0.25), ('spine_shoulder', 0.45), ('neck', 0.52), ('head', 0.65)):
    points[joint] = pelvis + np.array([0, height * scale, 0])
  for side, sign in (('left', 1.0), ('right', -1.0)):
    points[f'shoulder_{side}'] = points['spine_shoulder'] + np.array([sign * 0.18 * scale, -0.02 * scale, 0])
    points[f'hip_{side}'] = pelvis + np.array([sign * 0.1 * scale, -0.02 * scale, 0])
  rest_arm = np.full(frames, 0.12)
  arms = {'left': (rest_arm, rest_arm, zeros), 'right': (rest_arm, rest_arm, zeros)}
  legs = {'left': (np.full(frames, 0.04), zeros), 'right': (np.full(frames, 0.04), zeros)}
  if name == 'wave':
    arms['right'] = (np.full(frames, 2.3), 2.9 + 0.45 * amplitude * np.sin(phase), zeros)
  elif name == 'clap':
    inwards = -(0.2 + 0.5 * amplitude * cycle)
    arms = {side: (np.full(frames, 0.5), 1.45 + inwards, np.full(frames, 1.2)) for side in ('left', 'right')}
  elif name == 'jumping_jack':
    raise_angle = 2.6 * amplitude * cycle + 0.1
    arms = {side: (raise_angle, raise_angle + 0.1, zeros) for side in ('left', 'right')}
    legs = {side: (0.04 + 0.3 * amplitude * cycle, zeros) for side in ('left', 'right')}
  elif name == 'squat':
    arms = {side: (np.full(frames, 0.15), np.full(frames, 0.15), 1.4 * cycle) for side in ('left', 'right')}
    bend = np.arccos(np.clip(1 - 0.35 * amplitude * cycle / 0.88, -1, 1))
    legs = {side: (np.full(frames, 0.06), bend) for side in ('left', 'right')}
  elif name == 'side_kick':
    legs['left'] = (0.05 + 0.8 * amplitude * cycle, zeros)
    arms = {side: (np.full(frames, 0.5), np.full(frames, 0.5), zeros) for side in ('left', 'right')}
  for side, sign in (('left', 1.0), ('right', -1.0)):
    _arm(points, side, sign, *arms[side], scale)
    _leg(points, side, sign, *legs[side], scale)
  clip = np.stack([points[name] for name in layouts.NTU25_JOINTS], axis=1)  # (T, 25, 3)
  yaw = math.radians(rng.uniform(-30, 30))
  rotation = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
  clip = clip @ rotation.T + np.array([rng.uniform(-0.5, 0.5), 0, rng.uniform(2.5, 3.5)])
  clip = clip + rng.normal(0, 0.01 * scale, clip.shape)
  return clip


def to_layout(clip: np.ndarray, layout: str, coords: int) -> np.ndarray:
  """Maps an ntu25 clip to `layout`; for 2D, projects to pixels of a 640 x 480 image (x right, y down)."""
  mapped = layouts.convert(clip, 'ntu25', layout)
  if coords == 3:
    return mapped.astype(np.float32)
  focal = 500.0
  depth = mapped[..., 2:3]
  pixels = np.concatenate([320 + focal * mapped[..., 0:1] / depth, 400 - focal * (mapped[..., 1:2] - 1.0) / depth],
                          axis=-1)
  return pixels.astype(np.float32)


def drop_joints(clip: np.ndarray, rng: np.random.Generator, probability: float = 0.3) -> np.ndarray:
  """With `probability`, one random joint goes missing (all coordinates 0, as pose estimators report it) for a
  burst of 3-8 frames."""
  if rng.random() >= probability:
    return clip
  clip = clip.copy()
  length = int(rng.integers(3, 9))
  start = int(rng.integers(0, max(1, clip.shape[0] - length)))
  clip[start:start + length, int(rng.integers(0, clip.shape[1]))] = 0
  return clip


def write_example(output: str | pathlib.Path, layout: str = 'coco17', coords: int | None = None,
                  clips_per_class: int = 24, test_fraction: float = 0.25, file_format: str = 'npy',
                  group_split: bool = False, seed: int = 0, name: str | None = None) -> pathlib.Path:
  """Writes the example folder and returns its path (see the module docstring)."""
  layout_obj = layouts.get_layout(layout)
  if coords is None:
    coords = 3 if layout_obj.name in ('ntu25', 'nucla20', 'h36m17') else 2
  if coords not in (2, 3):
    raise ValueError(f'coords must be 2 or 3, got {coords}')
  if file_format not in ('npy', 'npz', 'json'):
    raise ValueError(f"format must be 'npy', 'npz' or 'json', got {file_format!r}")
  if clips_per_class < 2 or not 0 < test_fraction < 1:
    raise ValueError('need clips_per_class >= 2 and 0 < test_fraction < 1')
  output = pathlib.Path(output)
  if output.exists() and any(output.iterdir()):
    raise ValueError(f'{output} exists and is not empty')
  (output / 'clips').mkdir(parents=True, exist_ok=True)
  num_test = min(max(1, int(round(clips_per_class * test_fraction))), clips_per_class - 1)
  # Subjects: the last `num_test` repetitions of every class belong to the test subjects.
  rows = []
  for label, class_name in enumerate(CLASS_NAMES):
    for repetition in range(clips_per_class):
      rng = np.random.default_rng([seed, label, repetition])
      clip = drop_joints(to_layout(generate_clip(rng, label), layout_obj.name, coords), rng)
      relative = f'clips/{class_name}_{repetition:03d}.{file_format}'
      path = output / relative
      if file_format == 'npy':
        np.save(path, clip)
      elif file_format == 'npz':
        np.savez_compressed(path, skeleton=clip)
      else:
        path.write_text(json.dumps({'skeleton': np.round(clip, 4).tolist()}))
      subject = f's{repetition:03d}'
      split = 'test' if repetition >= clips_per_class - num_test else 'train'
      rows.append((relative, class_name, split, subject))
  dataset = {'name': name or output.name, 'layout': layout_obj.name, 'coords': coords, 'max_persons': 1,
             'description': f'Example: {len(CLASS_NAMES)} synthetic actions in the {layout_obj.name} layout.'}
  if group_split:
    dataset['split'] = {'column': 'subject',
                        'test': sorted({subject for _, _, split, subject in rows if split == 'test'})}
  (output / 'dataset.json').write_text(json.dumps(dataset, indent=2) + '\n')
  with open(output / 'labels.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['path', 'label', 'subject'] if group_split else ['path', 'label', 'split'])
    for relative, class_name, split, subject in rows:
      writer.writerow([relative, class_name, subject] if group_split else [relative, class_name, split])
  return output


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m data_builders.skeleton_folder.example', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--output', required=True, help='folder to create (must not exist or be empty)')
  parser.add_argument('--layout', default='coco17', choices=layouts.layout_names())
  parser.add_argument('--coords', type=int, default=None, choices=(2, 3),
                      help='default: 3 for ntu25, nucla20, h36m17; 2 otherwise')
  parser.add_argument('--clips_per_class', type=int, default=24)
  parser.add_argument('--test_fraction', type=float, default=0.25)
  parser.add_argument('--format', default='npy', choices=('npy', 'npz', 'json'))
  parser.add_argument('--group_split', action='store_true', help='subject column + split rule in dataset.json')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--name', default=None, help="dataset name (default: the output folder's name)")
  args = parser.parse_args(argv)
  try:
    output = write_example(args.output, args.layout, args.coords, args.clips_per_class, args.test_fraction,
                           args.format, args.group_split, args.seed, args.name)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(f'wrote {output}: {len(CLASS_NAMES)} classes x {args.clips_per_class} clips in the {args.layout} layout')
  return 0


if __name__ == '__main__':
  sys.exit(main())
