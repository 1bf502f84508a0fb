"""predict's input clips in another joint layout: mapped to the dataset's stored layout and shape."""

import numpy as np
import pytest

from cascadeformer_jax import data as data_lib
from cascadeformer_jax.data import preprocessing
from cascadeformer_jax.data import layouts
from cascadeformer_jax.evaluate import inference


def test_h36m_clips_for_an_ntu_dataset_fill_the_first_actor_slot(tmp_path):
  clip = np.random.default_rng(0).normal(size=(6, 17, 3)).astype(np.float32) + 3
  np.save(tmp_path / 'poses.npy', clip)
  config = preprocessing.describe(data_lib.default_data_config('ntu60_xsub'), None)
  names, clips = inference.read_clips(str(tmp_path / 'poses.npy'), config, layout='h36m17')
  assert names == ['poses.npy'] and clips[0].shape == (6, 2, 25, 3) and not clips[0][:, 1].any()
  np.testing.assert_allclose(clips[0][:, 0], layouts.convert(clip, 'h36m17', 'ntu25'))
  with pytest.raises(ValueError, match=r'expected \(T, J, C\) or \(T, 2, J, C\) with J = 25 joints \(ntu25 layout; '
                                       r'other layouts: --layout\)'):
    inference.read_clips(str(tmp_path / 'poses.npy'), config)


def test_nucla_input_with_the_original_mapping_and_coordinate_mismatch(tmp_path):
  np.save(tmp_path / 'ntu.npy', np.ones((4, 25, 3), np.float32))
  config = preprocessing.describe(data_lib.default_data_config('n_ucla'), None)
  _, clips = inference.read_clips(str(tmp_path / 'ntu.npy'), config, layout='ntu25')
  assert clips[0].shape == (4, 20, 3)
  np.save(tmp_path / 'coco2d.npy', np.ones((4, 17, 2), np.float32))
  with pytest.raises(ValueError, match='C = 3 coordinates'):
    inference.read_clips(str(tmp_path / 'coco2d.npy'), config, layout='coco17')
  np.save(tmp_path / 'nucla.npy', np.arange(4 * 20 * 3, dtype=np.float32).reshape(4, 20, 3) + 1)
  ntu = preprocessing.describe(data_lib.default_data_config('ntu60_xview'), None)
  _, clips = inference.read_clips(str(tmp_path / 'nucla.npy'), ntu, layout='nucla20',
                                  mapping='original_partition_order')
  native = np.load(tmp_path / 'nucla.npy')
  np.testing.assert_array_equal(clips[0][:, 0, 0], native[:, 4])  # NTU spine_base <- N-UCLA shoulder_left
