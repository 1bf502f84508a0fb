"""Input files that are not what their name says get a message that says so."""

import re

import numpy as np
import pytest

from cascadeformer_jax import data as data_lib
from cascadeformer_jax.data import preprocessing
from cascadeformer_jax.evaluate import inference


@pytest.mark.parametrize('suffix,expected', [('.npy', 'not a NumPy .npy file (numpy.save)'),
                                             ('.npz', 'not a NumPy .npz archive (numpy.savez)')])
def test_text_file_with_a_numpy_suffix(tmp_path, suffix, expected):
  path = tmp_path / f'clip{suffix}'
  path.write_text('0.1 0.2 0.3\n')
  with pytest.raises(ValueError, match=re.escape(f'{path}: {expected}')) as raised:
    inference.read_clips(str(path), preprocessing.describe(data_lib.default_data_config('n_ucla'), None))
  assert 'pickle' not in str(raised.value)


def test_real_npy_file_still_reads(tmp_path):
  path = tmp_path / 'clip.npy'
  np.save(path, np.zeros((10, 20, 3), np.float32))
  names, clips = inference.read_clips(str(path), preprocessing.describe(data_lib.default_data_config('n_ucla'), None))
  assert names == ['clip.npy'] and np.shape(clips[0]) == (10, 20, 3)
