"""Transformer building blocks with PyTorch-compatible semantics and initialisation.

The original CascadeFormer is built from ``torch.nn.TransformerEncoderLayer`` (post-LN, ReLU FFN) and
``torch.nn.MultiheadAttention``. The modules here reproduce them number for number. Attention keeps PyTorch's
fused input projection as one (w, 3w) kernel, so the number of heads is a runtime choice that does not change
the parameters (the original evaluated some cross-attention blocks with a different head count than they were
trained with).
"""

from collections.abc import Callable
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any

LAYER_NORM_EPSILON = 1e-5  # PyTorch's default; Flax's 1e-6 breaks parity on narrow layers.


def torch_linear_kernel_init() -> Callable[..., Array]:
  """PyTorch ``nn.Linear``/``nn.Conv1d`` weight init: U(±1/sqrt(fan_in))."""
  return nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


def torch_linear_bias_init(fan_in: int) -> Callable[..., Array]:
  """PyTorch ``nn.Linear``/``nn.Conv1d`` bias init: U(±1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def dense(features: int, in_features: int, name: str | None = None,
          dtype: Dtype | None = None) -> nn.Dense:
  """``nn.Dense`` initialised like PyTorch's ``nn.Linear``; kernel (in, out) = ``weight.T``."""
  return nn.Dense(
      features,
      dtype=dtype,
      kernel_init=torch_linear_kernel_init(),
      bias_init=torch_linear_bias_init(in_features),
      name=name)


_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotate_left(x: Array, distance: int) -> Array:
  return (x << jnp.uint32(distance)) | (x >> jnp.uint32(32 - distance))


def _threefry2x32(key1: Array, key2: Array, x1: Array, x2: Array) -> tuple[Array, Array]:
  """The Threefry-2x32 block cipher (20 rounds) as plain unrolled uint32 arithmetic.

  JAX lowers its threefry primitive on CPU as a rolled 5-iteration loop whose carries are materialised in
  memory; written out like this XLA fuses the whole hash into the consumer of the random bits.
  """
  keys = (key1, key2, key1 ^ key2 ^ jnp.uint32(0x1BD11BDA))
  x1, x2 = x1 + keys[0], x2 + keys[1]
  for block in range(5):
    for rotation in _THREEFRY_ROTATIONS[block % 2]:
      x1 = x1 + x2
      x2 = _rotate_left(x2, rotation) ^ x1
    x1 = x1 + keys[(block + 1) % 3]
    x2 = x2 + keys[(block + 2) % 3] + jnp.uint32(block + 1)
  return x1, x2


def random_bits(key: Array, shape: tuple[int, ...]) -> Array:
  """uint32 random bits, bit-identical to ``jax.random.bits(key, shape)``, cheaper on CPU for threefry keys.

  Reimplements JAX's partitionable threefry bits (a hash of the 64-bit element index under the key, with the
  two output words xor-ed) so that XLA can fuse it. Other PRNG implementations (``rbg``, ``unsafe_rbg``) and
  JAX's non-partitionable threefry mode go through ``jax.random.bits``.
  """
  typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
  impl = str(jax.random.key_impl(key)) if typed else jax.config.jax_default_prng_impl
  size = math.prod(shape)
  if 'threefry2x32' not in impl or not jax.config.jax_threefry_partitionable or size >= 2**32:
    return jax.random.bits(key, shape, jnp.uint32)
  key_data = jax.random.key_data(key) if typed else key
  index = jax.lax.iota(jnp.uint32, size).reshape(shape)
  bits1, bits2 = _threefry2x32(key_data[0], key_data[1], jnp.zeros_like(index), index)
  return bits1 ^ bits2


def bernoulli(key: Array, p: float, shape: tuple[int, ...]) -> Array:
  """Bool (shape), True with probability p; the same draws as ``jax.random.bernoulli(key, p, shape)``."""
  if jax.config.jax_enable_x64:  # JAX then draws float64 uniforms from 64-bit words.
    return jax.random.bernoulli(key, p, shape)
  mantissa = random_bits(key, shape) >> jnp.uint32(32 - 23)  # As jax.random.uniform: 23 random bits.
  uniform = jax.lax.bitcast_convert_type(mantissa | jnp.uint32(0x3F800000), jnp.float32) - 1.0
  return uniform < jnp.float32(p)


def _materialized_bernoulli(key: Array, p: float, shape: tuple[int, ...]) -> Array:
  """``bernoulli(key, p, shape)`` computed once into a buffer.

  XLA fuses cheap elementwise producers into every consumer, so the 20-round hash would be recomputed in each
  use of the mask (forward and backward pass). A conditional is a fusion boundary: its result is materialised.
  The predicate is always true but not a compile-time constant (a key word with its low bit set is non-zero).
  """
  typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
  word = (jax.random.key_data(key) if typed else key).reshape(-1)[0].astype(jnp.uint32)
  return jax.lax.cond((word | jnp.uint32(1)) != 0, lambda: bernoulli(key, p, shape),
                      lambda: jnp.ones(shape, bool))


class Dropout(nn.Module):
  """Inverted dropout with the exact semantics and random draws of ``flax.linen.Dropout``, cheaper on CPU.

  Drops each element independently with probability ``rate`` and scales the kept ones by 1 / (1 - rate).
  Same name, rng collection and ``make_rng`` calls as the Flax module, so a model gets the same masks.
  """

  rate: float
  deterministic: bool | None = None
  rng_collection: str = 'dropout'

  @nn.compact
  def __call__(self, inputs: Array, deterministic: bool | None = None) -> Array:
    deterministic = nn.merge_param('deterministic', self.deterministic, deterministic)
    if self.rate == 0.0 or deterministic:
      return inputs
    if self.rate == 1.0:
      return jnp.zeros_like(inputs)
    keep_prob = 1.0 - self.rate
    key = self.make_rng(self.rng_collection)
    # The rewrite only pays on CPU (elsewhere JAX's threefry is not a rolled loop, and a conditional costs a
    # device-to-host synchronisation); both branches draw the same mask.
    keep = jax.lax.platform_dependent(
        cpu=lambda: _materialized_bernoulli(key, keep_prob, inputs.shape),
        default=lambda: jax.random.bernoulli(key, keep_prob, inputs.shape))
    return jax.lax.select(keep, inputs / keep_prob, jnp.zeros_like(inputs))


def layer_norm(name: str | None = None, dtype: Dtype | None = None) -> nn.LayerNorm:
  # Two-pass variance as in PyTorch: Penn inputs are raw pixels, so activations can be large.
  return nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, use_fast_variance=False, dtype=dtype, name=name)


class MultiHeadAttention(nn.Module):
  """Multi-head attention in PyTorch's parameter layout.

  Parameters: ``in_proj_kernel`` (w, 3w) = ``in_proj_weight.T`` (columns [0:w] query, [w:2w] key,
  [2w:3w] value), ``in_proj_bias`` (3w,), and ``out_proj`` (a Dense w -> w). Head h uses the contiguous
  feature slice h*w/H ... (h+1)*w/H - 1, as in PyTorch.

  Attributes:
    num_heads: number of heads H; must divide the width w. Not stored in the parameters.
    dropout_rate: dropout on the attention probabilities (PyTorch drops individual probabilities).
  """

  num_heads: int
  dropout_rate: float = 0.0
  dtype: Dtype | None = None

  @nn.compact
  def __call__(self,
               query: Array,
               key_value: Array | None = None,
               *,
               key_padding_mask: Array | None = None,
               deterministic: bool = True) -> Array:
    """Attends ``query`` (..., Nq, w) to ``key_value`` (..., Nk, w) (self-attention when None).

    Args:
      query: (..., Nq, w).
      key_value: (..., Nk, w), or None for self-attention.
      key_padding_mask: optional bool (..., Nk); False marks keys that must not be attended to.
      deterministic: disables dropout.

    Returns:
      (..., Nq, w).
    """
    width = query.shape[-1]
    if width % self.num_heads:
      raise ValueError(f'attention width {width} is not divisible by num_heads={self.num_heads}')
    head_dim = width // self.num_heads
    kernel = self.param('in_proj_kernel', nn.initializers.xavier_uniform(), (width, 3 * width))
    bias = self.param('in_proj_bias', nn.initializers.zeros_init(), (3 * width,))
    kernel, bias = nn.dtypes.promote_dtype(kernel, bias, dtype=self.dtype)
    if key_value is None:
      q, k, v = jnp.split(query.astype(kernel.dtype) @ kernel + bias, 3, axis=-1)
    else:
      q = query.astype(kernel.dtype) @ kernel[:, :width] + bias[:width]
      k, v = jnp.split(key_value.astype(kernel.dtype) @ kernel[:, width:] + bias[width:], 2, axis=-1)

    def split_heads(t):
      return t.reshape(t.shape[:-1] + (self.num_heads, head_dim))

    q, k, v = split_heads(q), split_heads(k), split_heads(v)
    q = q * jnp.asarray(1.0 / math.sqrt(head_dim), q.dtype)
    logits = jnp.einsum('...qhd,...khd->...hqk', q, k)
    if key_padding_mask is not None:
      mask = key_padding_mask[..., None, None, :]
      logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)
    if self.dropout_rate > 0.0 and not deterministic:
      probs = Dropout(self.dropout_rate)(probs, deterministic=False)
    attended = jnp.einsum('...hqk,...khd->...qhd', probs, v)
    attended = attended.reshape(attended.shape[:-2] + (width,))
    return nn.Dense(
        width,
        dtype=self.dtype,
        kernel_init=torch_linear_kernel_init(),
        bias_init=nn.initializers.zeros_init(),
        name='out_proj',
    )(attended)


class EncoderLayer(nn.Module):
  """``torch.nn.TransformerEncoderLayer`` with its defaults: post-LN, ReLU FFN, no attention mask.

  ``x = LN1(x + Drop(MHA(x)));  x = LN2(x + Drop(W2 Drop(ReLU(W1 x))))``; every dropout (including the one
  on attention probabilities) uses ``dropout_rate``.
  """

  num_heads: int
  ffn_dim: int = 2048
  dropout_rate: float = 0.1
  dtype: Dtype | None = None

  @nn.compact
  def __call__(self,
               x: Array,
               *,
               key_padding_mask: Array | None = None,
               deterministic: bool = True) -> Array:
    """(..., N, w) -> (..., N, w)."""
    width = x.shape[-1]
    dropout = Dropout(self.dropout_rate, deterministic=deterministic)
    attended = MultiHeadAttention(
        self.num_heads, self.dropout_rate, dtype=self.dtype, name='self_attn')(
            x, key_padding_mask=key_padding_mask, deterministic=deterministic)
    x = layer_norm('norm1', self.dtype)(x + dropout(attended))
    hidden = nn.relu(dense(self.ffn_dim, width, 'linear1', self.dtype)(x))
    out = dense(width, self.ffn_dim, 'linear2', self.dtype)(dropout(hidden))
    return layer_norm('norm2', self.dtype)(x + dropout(out))


class Encoder(nn.Module):
  """A stack of ``num_layers`` independent :class:`EncoderLayer` (no final norm)."""

  num_layers: int
  num_heads: int
  ffn_dim: int = 2048
  dropout_rate: float = 0.1
  dtype: Dtype | None = None

  @nn.compact
  def __call__(self,
               x: Array,
               *,
               key_padding_mask: Array | None = None,
               deterministic: bool = True) -> Array:
    """(B, T, d) -> (B, T, d)."""
    for i in range(self.num_layers):
      x = EncoderLayer(
          self.num_heads, self.ffn_dim, self.dropout_rate, dtype=self.dtype, name=f'layer_{i}')(
              x, key_padding_mask=key_padding_mask, deterministic=deterministic)
    return x
