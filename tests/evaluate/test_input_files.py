"""Input files that are not what their name says get a message that says so."""

import json
import re

import numpy as np
import pytest

from cascadeformer_jax import data as data_lib
from cascadeformer_jax.data import preprocessing
from cascadeformer_jax.evaluate import inference
from cascadeformer_jax.run import io_checks


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


def test_json_clips_that_are_not_a_list_of_clips(tmp_path):
  path = tmp_path / 'clips.json'
  path.write_text('{"clips": 3}')
  with pytest.raises(ValueError, match=re.escape(f'{path}: "clips" must be a list of clips')):
    inference.read_clips(str(path), preprocessing.describe(data_lib.default_data_config('n_ucla'), None))


def test_a_bank_with_a_nan_row_is_refused_naming_the_file_and_row(tmp_path):
  features = np.ones((4, 8), np.float32)
  features[2, 5] = np.nan
  np.savez(tmp_path / 'bank.npz', features=features, labels=np.arange(4))
  with pytest.raises(ValueError, match=re.escape(f'{tmp_path / "bank.npz"}: "features" row 2 is not finite')):
    inference.read_bank(str(tmp_path / 'bank.npz'))


def test_knn_larger_than_the_bank_names_the_flag():
  outputs = {'logits': np.zeros((1, 3)), 'features': np.ones((1, 8))}
  with pytest.raises(ValueError, match=re.escape('--knn=5 is larger than the feature bank (4 clips)')):
    inference.scores_for(outputs, {'features': np.ones((4, 8))}, 5)


def test_an_unwritable_output_is_found_before_any_work(tmp_path):
  with pytest.raises(io_checks.WriteError, match='--output'):
    inference.check_output_file(str(tmp_path), '--output')
  (tmp_path / 'file').write_text('')
  with pytest.raises(io_checks.WriteError, match='--features_output'):
    inference.check_output_file(str(tmp_path / 'file' / 'features.npz'), '--features_output')


def test_records_stay_valid_json_when_a_score_is_not_finite():
  outputs = {'names': ['a'], 'logits': np.zeros((1, 2)), 'features': np.zeros((1, 2)), 'labels': None,
             'warnings': [['constant clip: every frame is the same (no motion)']]}
  records = inference.records(outputs, [[('x', 0.5)]], {'mahalanobis': np.array([np.nan])}, ['x', 'y'])
  text = json.dumps(records, allow_nan=False)
  assert json.loads(text)[0]['anomaly_scores']['mahalanobis'] is None
  assert json.loads(text)[0]['warnings'] == outputs['warnings'][0]


def test_constant_and_out_of_range_clips_are_flagged():
  described = preprocessing.describe(data_lib.default_data_config('n_ucla'), None)
  moving = np.random.default_rng(0).normal(size=(10, 20, 3)).astype(np.float32)
  peak = float(np.abs(preprocessing.prepare_clip(moving, described)[0]).max())
  assert inference.clip_warnings([moving, np.zeros((10, 20, 3), np.float32)], np.array([peak, 0.0]), described) == [
      [], ['constant clip: every frame is the same (no motion)']]
  # N-UCLA inputs are min-max normalised, so range is judged against what training saw: here a tiny bound.
  described['largest_training_input'] = 0.01
  (flags,) = inference.clip_warnings([moving], np.array([peak]), described)
  assert len(flags) == 1 and flags[0].startswith('out of range: inputs reach')
