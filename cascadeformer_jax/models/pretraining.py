"""Pretraining heads beyond the published reconstruction decoder (the seed methods of the pretraining objectives).

QueryPretrainer (objective 'query_decoder', after AMR): T1 encodes only the visible frames; a decoupled decoder
of learnable queries, one per temporal patch of r frames, reads the T1 features by cross-attention (queries do
not attend to each other) and predicts every patch's r frames of joints.

FeaturePredictionPretrainer (objective 'feature_prediction', after GFP): a lightweight target network turns the
clean clip's frame differences into hierarchical features (level l pools 2^(l-1) frames); per-level predictors
on top of T1's features of the masked clip predict them. The target network trains jointly; the loss
(objectives/losses.py) regularises its features with VICReg-style variance/covariance terms.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from cascadeformer_jax.models.cascadeformer import flatten_joints
from cascadeformer_jax.models.cascadeformer import MaskedPretrainer
from cascadeformer_jax.models.cascadeformer import T1
from cascadeformer_jax.models.config import ModelConfig
from cascadeformer_jax.models.config import RECONSTRUCTION_DECODERS
from cascadeformer_jax.models.layers import dense
from cascadeformer_jax.models.layers import Dropout
from cascadeformer_jax.models.layers import layer_norm
from cascadeformer_jax.models.layers import MultiHeadAttention

Array = jax.Array

OBJECTIVES = ('masked_joints', 'focal', 'query_decoder', 'feature_prediction')
# The pretraining head each objective needs (None: any reconstruction decoder).
OBJECTIVE_DECODERS = {'masked_joints': None, 'focal': None, 'query_decoder': 'query',
                      'feature_prediction': 'features'}


def model_config_for_objective(objective: str, config: ModelConfig) -> ModelConfig:
  """Sets ``decoder`` to the head the objective needs; a conflicting explicit decoder is an error."""
  if objective not in OBJECTIVES:
    raise ValueError(f'config.pretrain.objective must be one of {OBJECTIVES}, got {objective!r}')
  needed = OBJECTIVE_DECODERS[objective]
  if needed is None:
    if config.decoder not in RECONSTRUCTION_DECODERS:
      raise ValueError(f"the {objective} objective reconstructs joints: model.decoder must be one of "
                       f"{RECONSTRUCTION_DECODERS}, got {config.decoder!r}")
    return config
  if config.decoder not in (needed, 'linear'):
    raise ValueError(f"the {objective} objective uses model.decoder='{needed}', got {config.decoder!r}")
  return config.replace(decoder=needed)


class QueryDecoderLayer(nn.Module):
  """Post-LN cross-attention layer: ``x = LN1(x + Drop(MHA(x, memory)));  LN2(x + Drop(FFN(x)))``."""

  num_heads: int
  ffn_dim: int
  dropout_rate: float
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, queries: Array, memory: Array, *, deterministic: bool = True) -> Array:
    width = queries.shape[-1]
    dropout = Dropout(self.dropout_rate, deterministic=deterministic)
    attended = MultiHeadAttention(self.num_heads, self.dropout_rate, dtype=self.dtype, name='cross_attn')(
        queries, memory, deterministic=deterministic)
    x = layer_norm('norm1', self.dtype)(queries + dropout(attended))
    hidden = nn.relu(dense(self.ffn_dim, width, 'linear1', self.dtype)(x))
    return layer_norm('norm2', self.dtype)(x + dropout(dense(width, self.ffn_dim, 'linear2', self.dtype)(hidden)))


def num_patches(num_frames: int, patch: int) -> int:
  return math.ceil(num_frames / patch)


class QueryDecoder(nn.Module):
  """(B, N, d) encoder features -> (B, T, J, C): one learnable query per r-frame patch, r*J*C outputs each."""

  config: ModelConfig

  @nn.compact
  def __call__(self, memory: Array, num_frames: int, *, deterministic: bool = True) -> Array:
    cfg = self.config
    patch, d = cfg.decoder_patch, cfg.d_model
    count = num_patches(num_frames, patch)
    table = self.param('queries', nn.initializers.truncated_normal(stddev=0.02),
                       (num_patches(cfg.pos_len, patch), d))
    if count > table.shape[0]:
      raise ValueError(f'{num_frames} frames need {count} patch queries; the decoder has {table.shape[0]} '
                       f'(pos_len={cfg.pos_len}, decoder_patch={patch})')
    x = jnp.broadcast_to(table[:count].astype(cfg.compute_dtype), (memory.shape[0], count, d))
    for i in range(cfg.decoder_layers):
      x = QueryDecoderLayer(cfg.num_heads, cfg.ffn_dim, cfg.t1_dropout, dtype=cfg.compute_dtype,
                            name=f'layer_{i}')(x, memory, deterministic=deterministic)
    out = dense(patch * cfg.num_joints * cfg.coords, d, 'output', cfg.compute_dtype)(x)
    out = out.reshape(memory.shape[0], count * patch, cfg.num_joints, cfg.coords)
    return out[:, :num_frames]


class QueryPretrainer(nn.Module):
  """T1 over (a subset of) the frames + the query decoder. Called without ``positions`` it encodes all frames."""

  config: ModelConfig

  def setup(self):
    self.t1 = T1(self.config)
    self.decoder = QueryDecoder(self.config)

  def __call__(self,
               x: Array,
               *,
               positions: Array | None = None,
               num_frames: int | None = None,
               frame_mask: Array | None = None,
               deterministic: bool = True) -> Array:
    """x (B, N, J, C) visible frames at ``positions`` (B, N) of clips of ``num_frames`` -> (B, T, J, C)."""
    features = self.t1(x, positions=positions, frame_mask=frame_mask, deterministic=deterministic)
    return self.decoder(features, num_frames or x.shape[1], deterministic=deterministic).astype(jnp.float32)

  def encode(self, x: Array, *, frame_mask: Array | None = None, deterministic: bool = True) -> Array:
    return self.t1(x, frame_mask=frame_mask, deterministic=deterministic)


def pool_pairs(x: Array) -> Array:
  """Averages neighbouring frames: (B, T, w) -> (B, T // 2, w) (an odd last frame is dropped)."""
  pairs = x.shape[1] // 2
  return x[:, :2 * pairs].reshape(x.shape[0], pairs, 2, x.shape[-1]).mean(axis=2)


def frame_differences(clips: Array) -> Array:
  """x_t - x_{t-1} with a zero first frame: (B, T, J, C) -> (B, T, J, C)."""
  return jnp.concatenate([jnp.zeros_like(clips[:, :1]), clips[:, 1:] - clips[:, :-1]], axis=1)


class TargetNetwork(nn.Module):
  """Frame differences -> hierarchical features [(B, T, w), (B, T/2, w), ...], ``target_levels`` of them."""

  config: ModelConfig

  @nn.compact
  def __call__(self, clips: Array) -> list[Array]:
    cfg = self.config
    width, dtype = cfg.feature_width, cfg.compute_dtype
    if clips.shape[1] < 2 ** (cfg.target_levels - 1):
      raise ValueError(f'{cfg.target_levels} feature levels need clips of at least '
                       f'{2 ** (cfg.target_levels - 1)} frames, got {clips.shape[1]}')
    h = flatten_joints(frame_differences(clips.astype(dtype)))
    h = dense(width, h.shape[-1], 'level_0_out', dtype)(nn.relu(dense(width, h.shape[-1], 'level_0_in', dtype)(h)))
    levels = [h]
    for level in range(1, cfg.target_levels):
      h = pool_pairs(h)
      h = dense(width, width, f'level_{level}_out', dtype)(nn.relu(dense(width, width, f'level_{level}_in', dtype)(h)))
      levels.append(h)
    return [level.astype(jnp.float32) for level in levels]


class FeaturePredictor(nn.Module):
  """T1 features (B, T, d) -> per-level predictions of the target features (MLP d -> d -> w per level)."""

  config: ModelConfig

  @nn.compact
  def __call__(self, features: Array) -> list[Array]:
    cfg = self.config
    width, dtype, d = cfg.feature_width, cfg.compute_dtype, cfg.d_model
    predictions = []
    for level in range(cfg.target_levels):
      if level:
        features = pool_pairs(features)
      hidden = nn.relu(dense(d, d, f'level_{level}_in', dtype)(features))
      predictions.append(dense(width, d, f'level_{level}_out', dtype)(hidden).astype(jnp.float32))
    return predictions


class FeaturePredictionPretrainer(nn.Module):
  """T1 + feature predictors + target network: (masked clip, clean clip) -> (predictions, targets) per level."""

  config: ModelConfig

  def setup(self):
    self.t1 = T1(self.config)
    self.predictor = FeaturePredictor(self.config)
    self.target_network = TargetNetwork(self.config)

  def __call__(self,
               x: Array,
               *,
               clean: Array | None = None,
               frame_mask: Array | None = None,
               deterministic: bool = True) -> tuple[list[Array], list[Array]]:
    features = self.t1(x, frame_mask=frame_mask, deterministic=deterministic)
    return self.predictor(features), self.target_network(x if clean is None else clean)

  def encode(self, x: Array, *, frame_mask: Array | None = None, deterministic: bool = True) -> Array:
    return self.t1(x, frame_mask=frame_mask, deterministic=deterministic)


def pretraining_module(config: ModelConfig) -> nn.Module:
  """The stage-1 model for ``config.decoder``: all of them hold T1 under the name 't1'."""
  if config.decoder in RECONSTRUCTION_DECODERS:
    return MaskedPretrainer(config)
  if config.decoder == 'query':
    return QueryPretrainer(config)
  if config.decoder == 'features':
    return FeaturePredictionPretrainer(config)
  raise ValueError(f'unknown decoder {config.decoder!r}')
