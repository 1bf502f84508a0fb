"""CascadeFormer: T1 (frame embedding + positional table + encoder), the pretraining model and the classifier.

Shapes: B batch, T frames, J joints, C coordinates, d model width, K classes.

    pretraining:  x (B, T, J, C) -> T1 -> decoder -> reconstruction (B, T, J, C)
    classifier:   x -> T1 = f1 (B, T, d) -> T2 = f2 -> CrossAttention(q=f1, kv=f2) -> mean over T -> head (B, K)
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from cascadeformer_jax.models.config import ModelConfig
from cascadeformer_jax.models.layers import dense
from cascadeformer_jax.models.layers import Dropout
from cascadeformer_jax.models.layers import Encoder
from cascadeformer_jax.models.layers import EncoderLayer
from cascadeformer_jax.models.layers import layer_norm
from cascadeformer_jax.models.layers import MultiHeadAttention
from cascadeformer_jax.models.layers import torch_linear_bias_init
from cascadeformer_jax.models.layers import torch_linear_kernel_init

Array = jax.Array


def flatten_joints(x: Array) -> Array:
  """(..., J, C) -> (..., J*C), joint-major: [j0c0, j0c1, j1c0, ...] as in the original."""
  return x.reshape(x.shape[:-2] + (x.shape[-2] * x.shape[-1],))


class FrameEmbedding(nn.Module):
  """Variant-specific embedding of each frame's joints: (B, T, J, C) -> (B, T, d).

  1.0: Linear(J*C -> d) on the flattened frame.
  1.1: per frame, Conv1d(C -> C, k=3, zero pad 1) along the joint axis -> ReLU -> Conv1d(k=1) -> Linear.
  1.2 project back: per frame, Linear(C -> d) per joint -> one encoder layer over the J joint tokens ->
      Linear(d -> C) -> Linear(J*C -> d).
  1.2 concat: per frame, Linear(C -> d/J) per joint -> one encoder layer over the joint tokens -> concatenate.
  """

  config: ModelConfig

  @nn.compact
  def __call__(self, x: Array, *, deterministic: bool = True) -> Array:
    cfg = self.config
    dtype = cfg.compute_dtype
    num_joints, coords = x.shape[-2:]
    if (num_joints, coords) != (cfg.num_joints, cfg.coords):
      raise ValueError(f'input has {num_joints} joints x {coords} coordinates per frame, but the model '
                       f'expects {cfg.num_joints} x {cfg.coords} (input shape {x.shape})')
    x = x.astype(dtype)
    if cfg.variant == '1.1':
      frames = x.reshape((-1, num_joints, coords))
      conv_kwargs = dict(features=coords, dtype=dtype, kernel_init=torch_linear_kernel_init())
      frames = nn.Conv(kernel_size=(3,), padding=((1, 1),), name='conv_k3',
                       bias_init=torch_linear_bias_init(3 * coords), **conv_kwargs)(frames)
      frames = nn.relu(frames)
      frames = nn.Conv(kernel_size=(1,), padding='VALID', name='conv_k1',
                       bias_init=torch_linear_bias_init(coords), **conv_kwargs)(frames)
      x = frames.reshape(x.shape)
    elif cfg.variant == '1.2':
      width = cfg.spatial_width
      tokens = dense(width, coords, 'joint_linear', dtype)(x)
      tokens = EncoderLayer(
          cfg.spatial_heads, cfg.ffn_dim, cfg.spatial_dropout, dtype=dtype, name='spatial_layer')(
              tokens, deterministic=deterministic)
      if cfg.spatial_form == 'concat':
        return flatten_joints(tokens)
      x = dense(coords, width, 'output_proj', dtype)(tokens)
    return dense(cfg.d_model, num_joints * coords, 'frame_linear', dtype)(flatten_joints(x))


class T1(nn.Module):
  """Temporal transformer T1: frame embedding + learned positional table + L encoder layers.

  (B, T, J, C) -> (B, T, d). Requires T <= pos_len. ``positions`` (B, T) int gives each input frame's index in
  the positional table (default 0..T-1), so a subset of a clip's frames can be encoded (the query-decoder
  pretraining encodes only the visible frames).
  """

  config: ModelConfig

  @nn.compact
  def __call__(self,
               x: Array,
               *,
               frame_mask: Array | None = None,
               positions: Array | None = None,
               deterministic: bool = True) -> Array:
    cfg = self.config
    if x.ndim != 4:
      raise ValueError(f'T1 expects input of shape (B, T, J, C), got {x.shape}')
    num_frames = x.shape[1]
    if num_frames > cfg.pos_len:
      raise ValueError(f'clips of {num_frames} frames exceed the positional table length '
                       f'pos_len={cfg.pos_len}')
    if cfg.pos_init == 'zeros':
      pos_init = nn.initializers.zeros_init()
    else:
      pos_init = nn.initializers.truncated_normal(stddev=0.02, lower=-2.0 / 0.02, upper=2.0 / 0.02)
    pos_embedding = self.param('pos_embedding', pos_init, (1, cfg.pos_len, cfg.d_model))
    h = FrameEmbedding(cfg, name='embedding')(x, deterministic=deterministic)
    if positions is None:
      h = h + pos_embedding[:, :num_frames].astype(h.dtype)
    else:
      h = h + jnp.take(pos_embedding[0], positions, axis=0).astype(h.dtype)
    return Encoder(
        cfg.num_layers, cfg.num_heads, cfg.ffn_dim, cfg.t1_dropout, dtype=cfg.compute_dtype,
        name='encoder')(h, key_padding_mask=_attention_mask(cfg, frame_mask), deterministic=deterministic)


class ReconstructionDecoder(nn.Module):
  """Per-frame reconstruction of the joints from T1 features: (B, T, d) -> (B, T, J, C).

  'linear' is the published decoder; 'mlp' (Linear-ReLU-Linear) and 'mlp_residual' (linear + MLP branch) are
  the paper's decoder ablations.
  """

  config: ModelConfig

  @nn.compact
  def __call__(self, features: Array) -> Array:
    cfg = self.config
    out_features = cfg.num_joints * cfg.coords
    d = features.shape[-1]
    dtype = cfg.compute_dtype
    if cfg.decoder == 'linear':
      out = dense(out_features, d, 'linear', dtype)(features)
    else:
      hidden = nn.relu(dense(d, d, 'fc1', dtype)(features))
      out = dense(out_features, d, 'fc2', dtype)(hidden)
      if cfg.decoder == 'mlp_residual':
        out = out + dense(out_features, d, 'linear', dtype)(features)
    return out.reshape(features.shape[:-1] + (cfg.num_joints, cfg.coords))


class CrossAttention(nn.Module):
  """Cross-attention fusion with query = T1 features, key = value = T2 features: (B, T, d) x2 -> (B, T, d).

  'simple' (Penn, N-UCLA): ``LN(f1 + Drop(MHA(f1, f2)))`` with no dropout on attention probabilities.
  'ffn' (NTU): ``x = LN1(f1 + Drop(MHA(f1, f2)));  LN2(x + Drop(W_b Drop(ReLU(W_a x))))`` (W: d -> d).
  """

  config: ModelConfig

  @nn.compact
  def __call__(self,
               query: Array,
               key_value: Array,
               *,
               key_padding_mask: Array | None = None,
               deterministic: bool = True) -> Array:
    cfg = self.config
    dtype = cfg.compute_dtype
    rate = cfg.cross_attn_dropout
    dropout = Dropout(rate, deterministic=deterministic)
    attention_dropout = rate if cfg.cross_attention == 'ffn' else 0.0
    attended = MultiHeadAttention(cfg.cross_attn_heads, attention_dropout, dtype=dtype, name='attention')(
        query, key_value, key_padding_mask=key_padding_mask, deterministic=deterministic)
    x = layer_norm('norm1', dtype)(query + dropout(attended))
    if cfg.cross_attention == 'simple':
      return x
    d = x.shape[-1]
    hidden = dropout(nn.relu(dense(d, d, 'ffn_a', dtype)(x)))
    return layer_norm('norm2', dtype)(x + dropout(dense(d, d, 'ffn_b', dtype)(hidden)))


class ClassificationHead(nn.Module):
  """(B, d) -> (B, K). 'linear': one Linear. 'mlp': LN -> Drop -> Linear(d, d) -> ReLU -> Drop -> Linear."""

  config: ModelConfig

  @nn.compact
  def __call__(self, pooled: Array, *, deterministic: bool = True) -> Array:
    cfg = self.config
    dtype = cfg.compute_dtype
    d = pooled.shape[-1]
    if cfg.head == 'linear':
      return dense(cfg.num_classes, d, 'fc', dtype)(pooled)
    dropout = Dropout(cfg.head_dropout, deterministic=deterministic)
    x = dropout(layer_norm('norm', dtype)(pooled))
    x = dropout(nn.relu(dense(d, d, 'fc1', dtype)(x)))
    return dense(cfg.num_classes, d, 'fc2', dtype)(x)


def _attention_mask(cfg: ModelConfig, frame_mask: Array | None) -> Array | None:
  if cfg.attention_padding_mask and frame_mask is not None:
    return frame_mask.astype(bool)
  return None


def padding_frame_mask(lengths: Array | None, num_frames: int) -> Array | None:
  """(B,) real clip lengths -> (B, T) bool, True on real frames; None without lengths."""
  if lengths is None:
    return None
  return jnp.arange(num_frames)[None, :] < lengths[:, None]


def batch_frame_mask(batch: dict[str, Array], padding_aware: bool) -> Array | None:
  """The (B, T) real-frame mask of a batch (``skeleton``, optional ``lengths``) for a padding-aware model; None
  otherwise, so that padded frames take part as in the original code."""
  if not padding_aware:
    return None
  return padding_frame_mask(batch.get('lengths'), batch['skeleton'].shape[1])


def pool_frames(fused: Array, frame_mask: Array | None, pooling: str) -> Array:
  """(B, T, d) -> (B, d): plain mean over all T (original), or mean over frames where frame_mask is True."""
  if pooling == 'mean' or frame_mask is None:
    return jnp.mean(fused, axis=1)
  weights = frame_mask.astype(fused.dtype)[..., None]
  return jnp.sum(fused * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)


class MaskedPretrainer(nn.Module):
  """Stage 1 model: T1 followed by the reconstruction decoder. (B, T, J, C) -> (B, T, J, C)."""

  config: ModelConfig

  def setup(self):
    self.t1 = T1(self.config)
    self.decoder = ReconstructionDecoder(self.config)

  def __call__(self,
               x: Array,
               *,
               frame_mask: Array | None = None,
               deterministic: bool = True) -> Array:
    features = self.t1(x, frame_mask=frame_mask, deterministic=deterministic)
    return self.decoder(features).astype(jnp.float32)

  def encode(self, x: Array, *, frame_mask: Array | None = None, deterministic: bool = True) -> Array:
    return self.t1(x, frame_mask=frame_mask, deterministic=deterministic)


class CascadeClassifier(nn.Module):
  """Stage 2 model: T1 -> T2 -> cross-attention -> frame pooling -> head. (B, T, J, C) -> (B, K) logits.

  With ``return_intermediates=True`` returns a dict with 't1_features', 't2_features', 'fused' (B, T, d),
  'pooled' (B, d) and 'logits' (B, K).
  """

  config: ModelConfig

  def setup(self):
    cfg = self.config
    self.t1 = T1(cfg)
    self.t2 = Encoder(cfg.num_layers, cfg.num_heads, cfg.ffn_dim, cfg.t2_dropout, dtype=cfg.compute_dtype)
    self.cross_attention = CrossAttention(cfg)
    self.head = ClassificationHead(cfg)

  def __call__(self,
               x: Array,
               *,
               frame_mask: Array | None = None,
               deterministic: bool = True,
               return_intermediates: bool = False):
    cfg = self.config
    key_mask = _attention_mask(cfg, frame_mask)
    t1_features = self.t1(x, frame_mask=frame_mask, deterministic=deterministic)
    t2_features = self.t2(t1_features, key_padding_mask=key_mask, deterministic=deterministic)
    fused = self.cross_attention(
        t1_features, t2_features, key_padding_mask=key_mask, deterministic=deterministic)
    pooled = pool_frames(fused, frame_mask, cfg.pooling)
    logits = self.head(pooled, deterministic=deterministic).astype(jnp.float32)
    if not return_intermediates:
      return logits
    return {
        't1_features': t1_features,
        't2_features': t2_features,
        'fused': fused,
        'pooled': pooled,
        'logits': logits,
    }
