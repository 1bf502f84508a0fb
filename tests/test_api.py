"""The public loading API on a golden case."""

import numpy as np
import pytest

import cascadeformer_jax as cfx
from tests import golden_cases


@pytest.fixture(scope='module')
def case(golden_dir):
  return golden_cases.load_case(golden_dir, 'penn_action_1_0')


def test_classifier_from_a_published_folder(case):
  model = cfx.load_classifier(case.path, case.config)
  np.testing.assert_allclose(model(case.arrays['x']), case.arrays['logits'], rtol=1e-4, atol=1e-4)
  single = model(case.arrays['x'][1])  # (T, J, C) is treated as a batch of one.
  np.testing.assert_allclose(single[0], case.arrays['logits'][1], rtol=1e-4, atol=1e-4)
  probabilities = model.predict_proba(case.arrays['x'])
  np.testing.assert_allclose(probabilities.sum(-1), 1, rtol=1e-5)
  features = model.intermediates(case.arrays['x'])
  np.testing.assert_allclose(features['pooled'], case.arrays['pooled'], rtol=1e-4, atol=1e-4)


def test_pretrained_from_a_published_folder(case):
  model = cfx.load_pretrained(case.path, case.config)
  np.testing.assert_allclose(model.reconstruct(case.arrays['x_masked']), case.arrays['recon'],
                             rtol=1e-4, atol=1e-4)
  assert model.encode(case.arrays['x']).shape == case.arrays['t1_features'].shape


def test_config_can_be_a_config_file(case, tmp_path):
  config_file = tmp_path / 'config.py'
  config_file.write_text(f'import ml_collections\ndef get_config():\n  return ml_collections.ConfigDict('
                         f'{{"model": {case.config.to_dict()!r}}})\n')
  model = cfx.load_classifier(case.path, str(config_file))
  assert model.config == case.config


@pytest.mark.parametrize('shape,message', [
    ((2, 12, 12, 2), r'clips must have shape \(B, T, 13, 2\)'),
    ((2, 12, 13, 3), r'clips must have shape \(B, T, 13, 2\)'),
    ((2, 0, 13, 2), 'clips have no frames'),
])
def test_bad_clips(case, shape, message):
  model = cfx.load_classifier(case.path, case.config)
  with pytest.raises(ValueError, match=message):
    model(np.zeros(shape, np.float32))


def test_non_finite_clips(case):
  model = cfx.load_classifier(case.path, case.config)
  clips = case.arrays['x'].copy()
  clips[0, 1, 2, 0] = np.nan
  with pytest.raises(ValueError, match='NaN or infinite'):
    model(clips)
