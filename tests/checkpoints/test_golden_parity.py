"""Converted golden checkpoints reproduce every output of the original PyTorch modules."""

import numpy as np
import pytest

from cascadeformer_jax.checkpoints.convert import read_published_folder
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import MaskedPretrainer
from cascadeformer_jax.objectives import masking
from tests import golden_cases

FEATURE_TOLERANCE = dict(rtol=1e-4, atol=1e-4)


@pytest.fixture(scope='module', params=golden_cases.CASES)
def converted(request, golden_dir):
  case = golden_cases.load_case(golden_dir, request.param)
  config, params, _ = read_published_folder(case.path, case.config)
  return case, config, params


def test_classifier_outputs_match(converted):
  case, config, params = converted
  out = CascadeClassifier(config).apply({'params': params['classifier']}, case.arrays['x'],
                                        return_intermediates=True)
  for name in ('t1_features', 't2_features', 'fused', 'pooled', 'logits'):
    np.testing.assert_allclose(np.asarray(out[name]), case.arrays[name], err_msg=name, **FEATURE_TOLERANCE)


def test_pretrained_reconstruction_and_loss_match(converted):
  case, config, params = converted
  recon = MaskedPretrainer(config).apply({'params': params['pretrained']}, case.arrays['x_masked'])
  np.testing.assert_allclose(np.asarray(recon), case.arrays['recon'], **FEATURE_TOLERANCE)
  loss = masking.masked_mse(recon, case.arrays['x'], case.arrays['mask'])
  np.testing.assert_allclose(float(loss), float(case.arrays['masked_mse']), rtol=1e-5)


def test_stored_masked_input_is_the_mask_applied(converted):
  case, _, _ = converted
  np.testing.assert_array_equal(
      np.asarray(masking.apply_mask(case.arrays['x'], case.arrays['mask'])), case.arrays['x_masked'])


def test_cross_attention_head_count_is_a_runtime_choice(converted):
  case, config, params = converted
  if 'logits_cross_attn_4_heads' not in case.arrays:
    assert case.config.layout == 'ntu'  # NTU evaluation used the training head count.
    return
  four_heads = CascadeClassifier(config.replace(cross_attn_heads=4)).apply(
      {'params': params['classifier']}, case.arrays['x'])
  np.testing.assert_allclose(np.asarray(four_heads), case.arrays['logits_cross_attn_4_heads'],
                             **FEATURE_TOLERANCE)
  # The two head counts differ by far more than the tolerance, so this test can tell them apart.
  assert np.max(np.abs(np.asarray(four_heads) - case.arrays['logits'])) > 1e-3
