"""In-memory fake data sources with the TFDS feature contract (lists of dicts behave as map-style sources)."""

import numpy as np


def ntu_example(rng, num_frames, label, two_people=False, name='S001C001P001R001A001'):
  """(T, 2, 25, 3) clip: a drifting body 0 and, optionally, an offset body 1 (slot 1 zeros otherwise)."""
  skeleton = np.zeros((num_frames, 2, 25, 3), np.float32)
  drift = np.linspace(0, 1, num_frames, dtype=np.float32)[:, None, None]
  skeleton[:, 0] = 0.3 * rng.standard_normal((num_frames, 25, 3)) + drift
  if two_people:
    skeleton[:, 1] = 0.3 * rng.standard_normal((num_frames, 25, 3)) + 0.8
  return {'skeleton': skeleton, 'num_bodies': np.int32(2 if two_people else 1),
          'label': label, 'sample_name': name.encode()}


def ntu_source(num_examples=12, seed=0, min_frames=20, max_frames=120, num_classes=60):
  rng = np.random.default_rng(seed)
  return [ntu_example(rng, int(rng.integers(min_frames, max_frames + 1)), i % num_classes,
                      two_people=bool(i % 3 == 0), name=f'S001C001P001R001A{i:03d}')
          for i in range(num_examples)]


def nucla_source(num_examples=10, seed=0, min_frames=1, max_frames=60):
  rng = np.random.default_rng(seed)
  source = []
  for i in range(num_examples):
    length = int(rng.integers(min_frames, max_frames + 1))
    skeleton = (0.2 * rng.standard_normal((length, 20, 3)) + (0.1, 0.9, 3.0)).astype(np.float32)
    source.append({'skeleton': skeleton, 'label': i % 10, 'view': np.int32(1), 'subject': np.int32(1),
                   'episode': np.int32(i), 'sample_name': f'a01_s01_e{i:02d}_v01'.encode()})
  return source


def penn_source(num_examples=10, seed=0, min_frames=3, max_frames=40):
  rng = np.random.default_rng(seed)
  source = []
  for i in range(num_examples):
    length = int(rng.integers(min_frames, max_frames + 1))
    skeleton = rng.uniform(0, 480, (length, 13, 2)).astype(np.float32)
    visibility = rng.random((length, 13)) > 0.2
    source.append({'skeleton': skeleton, 'visibility': visibility,
                   'bbox': np.zeros((length, 4), np.float32),
                   'image_size': np.array([480, 640], np.int32), 'pose': b'front',
                   'video_id': f'{i + 1:04d}'.encode(), 'label': i % 15})
  return source
