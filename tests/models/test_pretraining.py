"""Pretraining heads: the query decoder (shapes for several r), the feature-prediction model, T1 positions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import MaskedPretrainer
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models import T1
from cascadeformer_jax.models.pretraining import FeaturePredictionPretrainer
from cascadeformer_jax.models.pretraining import pool_pairs
from cascadeformer_jax.models.pretraining import pretraining_module
from cascadeformer_jax.models.pretraining import QueryPretrainer
from cascadeformer_jax.objectives import losses as objectives

pytestmark = pytest.mark.usefixtures('fast_compile')

CONFIG = ModelConfig(variant='1.1', layout='nucla', num_joints=6, coords=3, d_model=16, num_heads=2,
                     num_layers=1, num_classes=4, pos_len=24, ffn_dim=32)


def _clips(batch, frames, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, frames, 6, 3)), jnp.float32)


def test_t1_positions_default_to_consecutive_frames():
  x = _clips(2, 10)
  t1 = T1(CONFIG)
  params = jax.jit(t1.init)(jax.random.key(0), x)
  apply = jax.jit(lambda positions: t1.apply(params, x, positions=positions))
  default = jax.jit(lambda: t1.apply(params, x))()
  np.testing.assert_allclose(default, apply(jnp.tile(jnp.arange(10), (2, 1))), rtol=1e-6, atol=1e-6)
  # Other positions give other embeddings.
  assert not np.allclose(default, apply(jnp.tile(jnp.arange(10) + 5, (2, 1))))


@pytest.mark.parametrize('patch', [1, 2, 4, 6])
def test_query_decoder_shapes(patch):
  config = CONFIG.replace(decoder='query', decoder_patch=patch, decoder_layers=2)
  model = QueryPretrainer(config)
  params = jax.eval_shape(model.init, jax.random.key(0), _clips(1, 8))['params']
  assert params['decoder']['queries'].shape == (-(-24 // patch), 16)
  assert params['decoder']['output']['kernel'].shape == (16, patch * 6 * 3)
  assert set(params['decoder']) == {'queries', 'output', 'layer_0', 'layer_1'}
  frames = 12 if patch != 6 else 24
  visible_frames, _ = objectives.patch_mask(jax.random.key(1), 3, frames, patch, 0.5)
  visible = jnp.take_along_axis(_clips(3, frames), visible_frames[:, :, None, None], axis=1)
  out = jax.eval_shape(lambda p: model.apply({'params': p}, visible, positions=visible_frames,
                                            num_frames=frames), params)
  assert out.shape == (3, frames, 6, 3) and out.dtype == jnp.float32
  # Without positions it encodes every frame; a length that is not a multiple of r is cut to the clip.
  assert jax.eval_shape(lambda p: model.apply({'params': p}, _clips(2, 7)), params).shape == (2, 7, 6, 3)


def test_query_decoder_queries_are_decoupled():
  """Each patch query reads only the encoder output: changing one query's table row changes one patch."""
  config = CONFIG.replace(decoder='query', decoder_patch=2)
  model = QueryPretrainer(config)
  x = _clips(1, 8)
  params = jax.jit(model.init)(jax.random.key(0), x)['params']
  apply = jax.jit(lambda params: model.apply({'params': params}, x))
  out = np.asarray(apply(params))
  changed = jax.tree.map(lambda a: a, params)
  changed['decoder']['queries'] = params['decoder']['queries'].at[1].add(1.0)
  out_changed = np.asarray(apply(changed))
  differs = np.any(out != out_changed, axis=(0, 2, 3))
  np.testing.assert_array_equal(differs, [False, False, True, True, False, False, False, False])


def test_query_decoder_too_long_for_its_queries():
  model = QueryPretrainer(CONFIG.replace(decoder='query', decoder_patch=4))
  params = jax.eval_shape(model.init, jax.random.key(0), _clips(1, 8))['params']
  with pytest.raises(ValueError, match='need 7 patch queries; the decoder has 6'):
    jax.eval_shape(lambda p: model.apply({'params': p}, _clips(1, 8), positions=jnp.arange(8)[None],
                                         num_frames=28), params)


def test_feature_prediction_model_levels():
  config = CONFIG.replace(decoder='features', target_width=8, target_levels=3)
  model = FeaturePredictionPretrainer(config)
  x = _clips(2, 12)
  params = jax.jit(model.init)(jax.random.key(0), x)['params']
  assert set(params) == {'t1', 'predictor', 'target_network'}
  apply = jax.jit(lambda clean: model.apply({'params': params}, x * 0, clean=clean))
  predictions, targets = apply(x)
  assert [p.shape for p in predictions] == [t.shape for t in targets] == [(2, 12, 8), (2, 6, 8), (2, 3, 8)]
  # Targets come from frame differences of the clean clip: a constant offset does not change them.
  _, shifted = apply(x + 5.0)
  for a, b in zip(targets, shifted):
    np.testing.assert_allclose(a, b, atol=1e-5)
  with pytest.raises(ValueError, match='3 feature levels need clips of at least 4 frames'):
    model.apply({'params': params}, x[:, :3])
  np.testing.assert_allclose(pool_pairs(jnp.arange(10.0).reshape(1, 5, 2)), [[[1, 2], [5, 6]]])


def test_every_pretraining_model_holds_the_classifier_t1():
  x = _clips(1, 8)
  classifier_t1 = CascadeClassifier(CONFIG).init(jax.random.key(0), x)['params']['t1']
  for decoder, module_type in (('linear', MaskedPretrainer), ('mlp', MaskedPretrainer), ('query', QueryPretrainer),
                               ('features', FeaturePredictionPretrainer)):
    module = pretraining_module(CONFIG.replace(decoder=decoder))
    assert isinstance(module, module_type)
    t1 = jax.eval_shape(module.init, jax.random.key(0), x)['params']['t1']
    assert jax.tree.map(np.shape, t1) == jax.tree.map(np.shape, classifier_t1)
