"""Build time and on-disk size of the dataset builders, and an estimate for the full NTU RGB+D 60.

  python benchmarks/build_datasets.py [--ntu_sample_clips=300] [--skip_default_synthetic] [--output=results.json]

1. Builds every builder from the miniature raw fixtures of tests/data_builders/fixtures.py (Penn Action, N-UCLA,
   NTU raw and npz, synthetic_actions `tiny`) and the full default `synthetic_actions`, reporting wall time
   (including TFDS overhead) and the size of the written dataset folder.
2. NTU60 estimate: writes `--ntu_sample_clips` realistic `.skeleton` files (motion from the synthetic generator in
   Kinect camera space, all 12 fields per joint line with 7 significant digits, ~18 % two-person clips as in NTU60's
   11 of 60 classes, 40-120 frames: mean ~80, an assumption about NTU60 [unverified]) and the matching CTR-GCN-style
   npz, builds both sources and extrapolates time and size per clip to the 56,578 clips of each config.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np
import tensorflow_datasets as tfds

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import data_builders  # pylint: disable=g-import-not-at-top,wrong-import-position
from data_builders.ntu_rgbd60 import ctrgcn  # pylint: disable=g-import-not-at-top,wrong-import-position
from data_builders.synthetic_actions import generator  # pylint: disable=g-import-not-at-top,wrong-import-position
from tests.data_builders import fixtures  # pylint: disable=g-import-not-at-top,wrong-import-position

NTU60_CLIPS = 56_578  # 56,880 minus the 302 samples with missing skeletons


def folder_bytes(path: pathlib.Path) -> int:
  return sum(f.stat().st_size for f in pathlib.Path(path).rglob('*') if f.is_file())


def timed_build(name, data_dir, manual_dir=None, config=None, **kwargs) -> tuple[float, int, int]:
  """(seconds, bytes on disk, number of examples) of one build."""
  start = time.perf_counter()
  builder = data_builders.build_dataset(name, data_dir, manual_dir=manual_dir, config=config, verbose=False,
                                        **kwargs)
  seconds = time.perf_counter() - start
  examples = sum(split.num_examples for split in builder.info.splits.values())
  return seconds, folder_bytes(pathlib.Path(builder.data_path)), examples


def realistic_skeleton_text(skeleton: np.ndarray, num_bodies: int, rng: np.random.Generator) -> str:
  """A `.skeleton` file for a (T, 2, 25, 3) clip placed ~3 m in front of the camera, all fields filled."""
  offset = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3), rng.uniform(2.6, 3.6)])
  lines = [str(len(skeleton))]
  body_ids = [f'720575940379{rng.integers(10000, 99999)}' for _ in range(num_bodies)]
  for frame in skeleton:
    lines.append(str(num_bodies))
    for body in range(num_bodies):
      lines.append(f'{body_ids[body]} 0 1 1 1 1 0 {rng.normal(0, 0.05):.7g} {rng.normal(0, 0.05):.7g} 2')
      lines.append('25')
      points = frame[body] + offset
      for x, y, z in points:
        depth_x, depth_y = 256 + 365 * x / z, 212 - 365 * y / z
        color_x, color_y = 960 + 1060 * x / z, 540 - 1060 * y / z
        quaternion = rng.normal(size=4)
        quaternion /= np.linalg.norm(quaternion)
        fields = [x, y, z, depth_x, depth_y, color_x, color_y, *quaternion]
        lines.append(' '.join(f'{v:.7g}' for v in fields) + f' {rng.choice([1, 2, 2, 2])}')
  return '\r\n'.join(lines) + '\r\n'


def ntu_estimate(work: pathlib.Path, num_clips: int) -> dict[str, float]:
  rng = np.random.default_rng(0)
  folder = work / 'manual' / 'nturgb+d_skeletons'
  folder.mkdir(parents=True)
  texts = {}
  for index in range(num_clips):
    two_person = rng.random() < 11 / 60
    label = generator.CLASS_NAMES.index('handshake') if two_person else int(rng.integers(0, 9))
    skeleton, num_bodies, _ = generator.generate_clip(0, generator.ClipSpec(1 + index % 40, label, 1 + index // 40))
    action = int(rng.integers(50, 61)) if two_person else int(rng.integers(1, 50))
    name = f'S001C{1 + index % 3:03d}P{1 + index % 40:03d}R{1 + (index // 120) % 2:03d}A{action:03d}'
    while name in texts:
      name = name[:-3] + f'{int(name[-3:]) % 60 + 1:03d}'
    texts[name] = realistic_skeleton_text(skeleton, num_bodies, rng)
    (folder / f'{name}.skeleton').write_text(texts[name], newline='')
  text_bytes = sum(len(t) for t in texts.values())

  start = time.perf_counter()
  clips = {name: ctrgcn.clip_from_skeleton_text(text) for name, text in texts.items()}
  parse_seconds = (time.perf_counter() - start) / num_clips

  raw_seconds, raw_bytes, raw_examples = timed_build('ntu_rgbd60', work / 'raw', work / 'manual', 'xsub',
                                                     source='raw')
  # The CTR-GCN npz of the same clips (rows in CTR-GCN order, padded to 300 frames).
  names = sorted(texts)
  order = ctrgcn.ctrgcn_split_order(names, 'xsub')
  arrays = {}
  for split, split_names in order.items():
    x = np.zeros((len(split_names), 300, 150), np.float32)
    y = np.zeros((len(split_names), 60))
    for row, name in enumerate(split_names):
      skeleton, _ = clips[name]
      x[row, :len(skeleton)] = skeleton.reshape(len(skeleton), 150)
      y[row, int(name[-3:]) - 1] = 1
    arrays[f'x_{split}'], arrays[f'y_{split}'] = x, y
  npz_manual = work / 'npz_manual'
  npz_manual.mkdir()
  np.savez(npz_manual / 'NTU60_CS.npz', **arrays)
  (npz_manual / 'skes_available_name.txt').write_text('\n'.join(names) + '\n')
  npz_seconds, npz_bytes, _ = timed_build('ntu_rgbd60', work / 'npz', npz_manual, 'xsub', source='npz')
  mean_frames = float(np.mean([len(c) for c, _ in clips.values()]))
  return {
      'sample_clips': raw_examples,
      'sample_mean_frames': mean_frames,
      'skeleton_text_mib_per_clip': text_bytes / num_clips / 2**20,
      'parse_and_clean_ms_per_clip': 1000 * parse_seconds,
      'raw_build_ms_per_clip': 1000 * raw_seconds / raw_examples,
      'npz_build_ms_per_clip': 1000 * npz_seconds / raw_examples,
      'dataset_kib_per_clip': raw_bytes / raw_examples / 1024,
      'full_raw_build_minutes_per_config': raw_seconds / raw_examples * NTU60_CLIPS / 60,
      'full_npz_build_minutes_per_config': npz_seconds / raw_examples * NTU60_CLIPS / 60,
      'full_dataset_gib_per_config': raw_bytes / raw_examples * NTU60_CLIPS / 2**30,
      'full_skeleton_text_gib': text_bytes / num_clips * NTU60_CLIPS / 2**30,
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--ntu_sample_clips', type=int, default=300)
  parser.add_argument('--skip_default_synthetic', action='store_true')
  parser.add_argument('--output', default=None, help='write the results as JSON here')
  args = parser.parse_args()
  tfds.disable_progress_bar()
  results = {'fixtures': {}}
  with tempfile.TemporaryDirectory() as tmp:
    work = pathlib.Path(tmp)
    manual = work / 'manual'
    fixtures.write_penn_action(manual)
    fixtures.write_n_ucla(manual)
    fixtures.write_ntu_skeletons(manual)
    npz_manual = work / 'npz_manual'
    for benchmark in ('xsub', 'xview'):
      fixtures.write_ntu_npz(npz_manual, benchmark)
    fixtures.write_ntu_available_names(npz_manual)
    runs = [
        ('penn_action', manual, None, {}), ('n_ucla', manual, None, {}),
        ('ntu_rgbd60/xsub raw', manual, 'xsub', {'source': 'raw'}),
        ('ntu_rgbd60/xview raw', manual, 'xview', {'source': 'raw'}),
        ('ntu_rgbd60/xsub npz', npz_manual, 'xsub', {'source': 'npz'}),
        ('synthetic_actions/tiny', None, 'tiny', {}),
    ]
    if not args.skip_default_synthetic:
      runs.append(('synthetic_actions/default', None, 'default', {}))
    print(f'{"dataset":28s} {"examples":>8s} {"build s":>8s} {"on disk":>10s}')
    for label, manual_dir, config, kwargs in runs:
      name = label.split('/')[0].split(' ')[0]
      seconds, size, examples = timed_build(name, work / 'data' / label.replace('/', '_').replace(' ', '_'),
                                            manual_dir, config, **kwargs)
      results['fixtures'][label] = {'examples': examples, 'seconds': seconds, 'bytes': size}
      print(f'{label:28s} {examples:8d} {seconds:8.2f} {size / 1024:8.1f} KiB')

    estimate = ntu_estimate(work / 'ntu_estimate', args.ntu_sample_clips)
    results['ntu60_estimate'] = estimate
    print(f'\nNTU60 estimate from {estimate["sample_clips"]} realistic .skeleton files '
          f'(mean {estimate["sample_mean_frames"]:.0f} frames):')
    for key, value in estimate.items():
      print(f'  {key:36s} {value:10.3f}')
  if args.output:
    with open(args.output, 'w') as f:
      json.dump(results, f, indent=2)
    print(f'results written to {os.path.abspath(args.output)}')


if __name__ == '__main__':
  main()
