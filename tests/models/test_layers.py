"""Attention and encoder layers: PyTorch semantics, head split, masks, dropout and initialisation."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cascadeformer_jax.models import EncoderLayer
from cascadeformer_jax.models import MultiHeadAttention
from cascadeformer_jax.models import layers

pytestmark = pytest.mark.usefixtures('fast_compile')  # small models: see conftest.fast_compile


def _reference_attention(params, query, key_value, num_heads):
  """Plain NumPy multi-head attention with PyTorch's contiguous head slices."""
  kernel, bias = np.asarray(params['in_proj_kernel']), np.asarray(params['in_proj_bias'])
  width = query.shape[-1]
  head_dim = width // num_heads
  q = query @ kernel[:, :width] + bias[:width]
  k = key_value @ kernel[:, width:2 * width] + bias[width:2 * width]
  v = key_value @ kernel[:, 2 * width:] + bias[2 * width:]
  heads = []
  for h in range(num_heads):
    sl = slice(h * head_dim, (h + 1) * head_dim)
    logits = q[..., sl] @ np.swapaxes(k[..., sl], -1, -2) / math.sqrt(head_dim)
    logits -= logits.max(-1, keepdims=True)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    heads.append(probs @ v[..., sl])
  out = np.concatenate(heads, -1)
  return out @ np.asarray(params['out_proj']['kernel']) + np.asarray(params['out_proj']['bias'])


@pytest.mark.parametrize('num_heads', [1, 2, 4, 8])
def test_attention_matches_reference_for_any_head_count(num_heads):
  rng = np.random.default_rng(num_heads)
  query = rng.standard_normal((2, 5, 16)).astype(np.float32)
  key_value = rng.standard_normal((2, 7, 16)).astype(np.float32)
  module = MultiHeadAttention(num_heads)
  params = module.init(jax.random.key(0), query, key_value)['params']
  params = jax.tree.map(lambda p: p + 0.1 * rng.standard_normal(p.shape).astype(np.float32), params)
  cross = module.apply({'params': params}, query, key_value)
  np.testing.assert_allclose(cross, _reference_attention(params, query, key_value, num_heads), atol=2e-5)
  self_attention = module.apply({'params': params}, query)
  np.testing.assert_allclose(self_attention, _reference_attention(params, query, query, num_heads), atol=2e-5)


def test_attention_params_do_not_depend_on_head_count():
  x = jnp.ones((1, 3, 12))
  shapes = [jax.tree.map(jnp.shape, MultiHeadAttention(h).init(jax.random.key(0), x)['params'])
            for h in (1, 3, 4)]
  assert shapes[0] == shapes[1] == shapes[2]
  with pytest.raises(ValueError, match='width 12 is not divisible by num_heads=5'):
    MultiHeadAttention(5).init(jax.random.key(0), x)


def test_key_padding_mask_hides_masked_keys():
  rng = np.random.default_rng(0)
  query = rng.standard_normal((1, 4, 8)).astype(np.float32)
  key_value = rng.standard_normal((1, 6, 8)).astype(np.float32)
  mask = np.array([[True, True, True, True, False, False]])
  module = MultiHeadAttention(2)
  params = module.init(jax.random.key(0), query, key_value)
  base = module.apply(params, query, key_value, key_padding_mask=mask)
  changed_padding = key_value.copy()
  changed_padding[:, 4:] = 1e3
  np.testing.assert_allclose(module.apply(params, query, changed_padding, key_padding_mask=mask), base, atol=1e-6)
  np.testing.assert_allclose(base, module.apply(params, query, key_value[:, :4]), atol=1e-6)


def test_attention_probability_dropout_is_per_probability():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 8)), jnp.float32)
  module = MultiHeadAttention(2, dropout_rate=0.5)
  params = module.init(jax.random.key(0), x)
  deterministic = module.apply(params, x)
  first = module.apply(params, x, deterministic=False, rngs={'dropout': jax.random.key(1)})
  again = module.apply(params, x, deterministic=False, rngs={'dropout': jax.random.key(1)})
  other = module.apply(params, x, deterministic=False, rngs={'dropout': jax.random.key(2)})
  np.testing.assert_array_equal(first, again)
  assert not np.allclose(first, deterministic)
  assert not np.allclose(first, other)


def test_encoder_layer_is_post_layer_norm():
  """Each output token is layer-normalised: mean 0 and variance 1 before the final affine (scale 1, bias 0)."""
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, 16)) * 30 + 100, jnp.float32)
  layer = EncoderLayer(num_heads=4, ffn_dim=32)
  out = layer.apply(layer.init(jax.random.key(0), x), x)
  np.testing.assert_allclose(np.mean(out, -1), 0, atol=1e-5)
  np.testing.assert_allclose(np.var(out, -1), 1, atol=1e-3)


def test_initialisation_follows_pytorch_defaults():
  width, ffn = 64, 256
  layer = EncoderLayer(num_heads=4, ffn_dim=ffn)
  params = layer.init(jax.random.key(0), jnp.ones((1, 3, width)))['params']
  linear1 = params['linear1']
  bound = 1 / math.sqrt(width)
  for value in (linear1['kernel'], linear1['bias']):
    assert np.max(np.abs(value)) <= bound
    assert np.max(np.abs(value)) > 0.9 * bound  # Uniform over the whole range, not a narrower one.
  assert np.max(np.abs(params['linear2']['kernel'])) <= 1 / math.sqrt(ffn)
  attention = params['self_attn']
  xavier = math.sqrt(6 / (width + 3 * width))
  assert 0.9 * xavier < np.max(np.abs(attention['in_proj_kernel'])) <= xavier
  np.testing.assert_array_equal(attention['in_proj_bias'], 0)
  np.testing.assert_array_equal(attention['out_proj']['bias'], 0)
  np.testing.assert_array_equal(params['norm1']['scale'], 1)
  np.testing.assert_array_equal(params['norm2']['bias'], 0)


# The hand-written Threefry dropout must draw exactly what JAX and Flax draw.
@pytest.mark.parametrize('impl', ['threefry2x32', 'unsafe_rbg'])
@pytest.mark.parametrize('shape', [(5,), (3, 7), (2, 4, 16, 16)])
def test_fast_random_bits_are_jax_random_bits(impl, shape):
  key = jax.random.fold_in(jax.random.key(3, impl=impl), 11)
  np.testing.assert_array_equal(layers.random_bits(key, shape), jax.random.bits(key, shape))
  for p in (0.9, 0.8, 0.5):
    np.testing.assert_array_equal(layers.bernoulli(key, p, shape), jax.random.bernoulli(key, p, shape))


@pytest.mark.parametrize('rate', [0.1, 0.5])
def test_dropout_module_draws_the_masks_of_flax_dropout(rate):
  x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 8, 16)), jnp.float32)
  rngs = {'dropout': jax.random.key(7)}
  ours = jax.jit(lambda v: layers.Dropout(rate).apply({}, v, deterministic=False, rngs=rngs))(x)
  flax_ = jax.jit(lambda v: nn.Dropout(rate).apply({}, v, deterministic=False, rngs=rngs))(x)
  assert 0 < int((ours == 0).sum()) < x.size  # some, not all, dropped
  np.testing.assert_array_equal(ours, flax_)
