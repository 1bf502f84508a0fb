"""Whole models: variants, shapes, config validation, padding handling, precision and parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import MaskedPretrainer
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models import presets

pytestmark = pytest.mark.usefixtures('fast_compile')  # small models: see conftest.fast_compile


def small_config(**changes) -> ModelConfig:
  values = dict(variant='1.1', layout='nucla', num_joints=5, coords=3, d_model=20, num_heads=4, num_layers=1,
                num_classes=3, pos_len=16, ffn_dim=32)
  values.update(changes)
  return ModelConfig(**values)


def _clips(batch=2, frames=6, joints=5, coords=3, seed=0):
  return jnp.asarray(np.random.default_rng(seed).standard_normal((batch, frames, joints, coords)), jnp.float32)


@pytest.mark.parametrize('variant,layout', [('1.0', 'penn'), ('1.1', 'nucla'), ('1.2', 'nucla'), ('1.2', 'ntu'),
                                            ('1.0', 'ntu')])
def test_shapes_of_every_variant(variant, layout):
  config = small_config(variant=variant, layout=layout)
  x = _clips()
  classifier = CascadeClassifier(config)
  out = classifier.apply(classifier.init(jax.random.key(0), x), x, return_intermediates=True)
  assert out['t1_features'].shape == out['t2_features'].shape == out['fused'].shape == (2, 6, 20)
  assert out['pooled'].shape == (2, 20) and out['logits'].shape == (2, 3)
  pretrainer = MaskedPretrainer(config)
  assert pretrainer.apply(pretrainer.init(jax.random.key(0), x), x).shape == x.shape


@pytest.mark.parametrize('decoder', ['linear', 'mlp', 'mlp_residual'])
def test_decoders(decoder):
  config = small_config(decoder=decoder)
  x = _clips()
  pretrainer = MaskedPretrainer(config)
  variables = pretrainer.init(jax.random.key(0), x)
  assert pretrainer.apply(variables, x).shape == x.shape
  assert ('fc1' in variables['params']['decoder']) == (decoder != 'linear')


def test_concat_form_embeds_each_joint_with_width_d_over_j():
  config = small_config(variant='1.2', layout='ntu')
  params = CascadeClassifier(config).init(jax.random.key(0), _clips())['params']
  embedding = params['t1']['embedding']
  assert embedding['joint_linear']['kernel'].shape == (3, 4)
  assert 'frame_linear' not in embedding and 'output_proj' not in embedding


@pytest.mark.parametrize('changes,message', [
    (dict(variant='2.0'), "model.variant must be one of"),
    (dict(d_model=22), r'd_model \(22\) must be divisible by num_heads \(4\)'),
    (dict(cross_attn_heads=3), r'd_model \(20\) must be divisible by cross_attn_heads \(3\)'),
    (dict(variant='1.2', layout='ntu', num_joints=3), r'needs d_model \(20\) divisible by num_joints \(3\)'),
    (dict(num_layers=0), 'model.num_layers must be a positive integer'),
    (dict(pooling='max'), 'model.pooling must be one of'),
])
def test_invalid_configs(changes, message):
  with pytest.raises(ValueError, match=message):
    small_config(**changes)


def test_unknown_config_keys_are_an_error():
  values = small_config().to_dict()
  values['dmodel'] = 3
  with pytest.raises(ValueError, match=r"unknown model config keys \['dmodel'\]"):
    ModelConfig.from_dict(values)


def test_input_errors():
  config = small_config()
  classifier = CascadeClassifier(config)
  with pytest.raises(ValueError, match='input has 4 joints x 3 coordinates per frame, but the model expects 5 x 3'):
    classifier.init(jax.random.key(0), _clips(joints=4))
  with pytest.raises(ValueError, match='clips of 17 frames exceed the positional table length pos_len=16'):
    classifier.init(jax.random.key(0), _clips(frames=17))


def test_padding_changes_outputs_by_default_and_not_when_masked():
  """Original behaviour (quirk Q2, docs/original_code.md): padded frames take part.

  The padding-aware option makes them irrelevant.
  """
  x = np.array(_clips(batch=1, frames=8))
  x[:, 5:] = 0.0
  frame_mask = np.arange(8)[None] < 5
  for config, should_change in ((small_config(), True),
                                (small_config(pooling='masked_mean', attention_padding_mask=True), False)):
    classifier = CascadeClassifier(config)
    variables = classifier.init(jax.random.key(0), x)
    padded = classifier.apply(variables, x, frame_mask=frame_mask)
    unpadded = classifier.apply(variables, x[:, :5], frame_mask=frame_mask[:, :5])
    assert np.allclose(padded, unpadded, atol=1e-5) != should_change


def test_bfloat16_compute_keeps_float32_params():
  config = small_config(dtype='bfloat16')
  x = _clips()
  classifier = CascadeClassifier(config)
  variables = classifier.init(jax.random.key(0), x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  logits_bf16 = classifier.apply(variables, x)
  logits_f32 = CascadeClassifier(config.replace(dtype='float32')).apply(variables, x)
  assert logits_bf16.dtype == jnp.float32
  np.testing.assert_allclose(logits_bf16, logits_f32, atol=0.1)
  assert not np.array_equal(logits_bf16, logits_f32)


def test_dropout_is_active_only_when_not_deterministic():
  config = small_config(t1_dropout=0.5, t2_dropout=0.5)
  x = _clips()
  classifier = CascadeClassifier(config)
  variables = classifier.init(jax.random.key(0), x)
  eval_logits = classifier.apply(variables, x)
  np.testing.assert_array_equal(eval_logits, classifier.apply(variables, x))
  train_logits = classifier.apply(variables, x, deterministic=False, rngs={'dropout': jax.random.key(3)})
  assert not np.allclose(train_logits, eval_logits)


def _count(tree) -> float:
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree)) / 1e6


@pytest.mark.parametrize('dataset,variant,t1,t2,cross,head', [
    ('penn_action', '1.0', 5.53, 5.26, 0.264, None),
    ('ntu60_xsub', '1.0', 88.39, 88.22, 3.55, 0.64),
    ('ntu60_xview', '1.0', 37.94, 37.83, None, None),
    ('ntu60_xsub', '1.2', 93.79, None, None, None),
    ('ntu60_xview', '1.2', 47.05, None, None, None),
])
def test_published_parameter_counts(dataset, variant, t1, t2, cross, head):
  """Millions of parameters per module as the original's files hold.

  See docs/original_code.md, published configurations.
  """
  config = presets.published_model_config(dataset, variant)
  x = jax.ShapeDtypeStruct((1, 8, config.num_joints, config.coords), jnp.float32)
  params = jax.eval_shape(CascadeClassifier(config).init, jax.random.key(0), x)['params']
  pretrain = jax.eval_shape(MaskedPretrainer(config).init, jax.random.key(0), x)['params']
  # The original T1 files include the reconstruction head.
  assert _count(pretrain) == pytest.approx(t1, abs=0.006)
  assert _count(params['t1']) + _count(pretrain['decoder']) == pytest.approx(t1, abs=0.006)
  for name, expected in (('t2', t2), ('cross_attention', cross), ('head', head)):
    if expected is not None:
      assert _count(params[name]) == pytest.approx(expected, abs=0.006), name
