"""Model configuration: one frozen dataclass that fully determines a CascadeFormer architecture."""

import dataclasses
from typing import Any

import jax.numpy as jnp
import ml_collections

VARIANTS = ('1.0', '1.1', '1.2')
LAYOUTS = ('penn', 'nucla', 'ntu')
SPATIAL_FORMS = ('project_back', 'concat')
CROSS_ATTENTIONS = ('simple', 'ffn')
HEADS = ('linear', 'mlp')
POOLINGS = ('mean', 'masked_mean')
RECONSTRUCTION_DECODERS = ('linear', 'mlp', 'mlp_residual')
# 'query': AMR-style cross-attention decoder with learnable queries; 'features': GFP-style feature predictors and
# target network (models/pretraining.py).
DECODERS = RECONSTRUCTION_DECODERS + ('query', 'features')
POS_INITS = ('trunc_normal', 'zeros')


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture of a CascadeFormer model (see the README for the published presets).

  Attributes:
    variant: '1.0' (linear frame embedding), '1.1' (joint-axis Conv1d), '1.2' (spatial transformer).
    layout: code family of the original: 'penn', 'nucla' (simple cross-attention, linear head, 1.2 'project
      back') or 'ntu' (cross-attention with FFN, MLP head, 1.2 'concat'). Sets the defaults below.
    num_joints: J.
    coords: C, coordinates per joint (2 or 3).
    d_model: d, width of T1, T2 and the cross-attention.
    num_heads: H of T1 and T2 (and their training head count for the cross-attention and spatial layer).
    num_layers: L, layers of T1 and of T2.
    ffn_dim: FFN width of every encoder layer (PyTorch's default 2048 in all published models).
    pos_len: P, length of the learned positional table (T must be <= P).
    num_classes: K.
    t1_dropout, t2_dropout, spatial_dropout, cross_attn_dropout, head_dropout: dropout rates.
    spatial_form: 1.2 only: 'project_back' (Penn/N-UCLA) or 'concat' (NTU). None = the layout's form.
    spatial_heads: heads of the 1.2 spatial layer; None = num_heads (as in the original).
    cross_attention: 'simple' or 'ffn'; None = the layout's form.
    cross_attn_heads: heads of the cross-attention; None = num_heads. The original evaluated Penn and N-UCLA
      with 4 (quirk Q1, docs/original_code.md); the parameters do not depend on it.
    head: 'linear' or 'mlp'; None = the layout's head.
    decoder: head of the pretraining model: 'linear' (published), 'mlp' or 'mlp_residual' (the paper's
      ablations) reconstruct the joints; 'query' is the cross-attention decoder of the query_decoder objective,
      'features' the feature predictors + target network of the feature_prediction objective.
    decoder_patch: 'query': frames per predicted temporal patch (r); clips need T divisible by r.
    decoder_layers: 'query': number of cross-attention decoder layers.
    target_width: 'features': width of the target features (0 = d_model).
    target_levels: 'features': number of hierarchy levels (level l pools 2^(l-1) frames).
    pos_init: 'trunc_normal' (std 0.02) or 'zeros' (Penn 1.0).
    pooling: 'mean' over all frames (original, includes padding) or 'masked_mean' over real frames.
    attention_padding_mask: mask padded frames out of every temporal attention (changes outputs of the
      published weights, which were trained without it).
    dtype: compute dtype ('float32' or 'bfloat16'); parameters stay float32.
  """

  variant: str
  layout: str
  num_joints: int
  coords: int
  d_model: int
  num_heads: int
  num_layers: int
  num_classes: int
  pos_len: int
  ffn_dim: int = 2048
  t1_dropout: float = 0.1
  t2_dropout: float = 0.1
  spatial_dropout: float = 0.1
  cross_attn_dropout: float = 0.1
  head_dropout: float = 0.0
  spatial_form: str | None = None
  spatial_heads: int | None = None
  cross_attention: str | None = None
  cross_attn_heads: int | None = None
  head: str | None = None
  decoder: str = 'linear'
  decoder_patch: int = 4
  decoder_layers: int = 1
  target_width: int = 0
  target_levels: int = 3
  pos_init: str = 'trunc_normal'
  pooling: str = 'mean'
  attention_padding_mask: bool = False
  dtype: str = 'float32'

  def __post_init__(self):
    layout_defaults = {
        'penn': ('project_back', 'simple', 'linear'),
        'nucla': ('project_back', 'simple', 'linear'),
        'ntu': ('concat', 'ffn', 'mlp'),
    }
    _check_choice('variant', self.variant, VARIANTS)
    _check_choice('layout', self.layout, LAYOUTS)
    spatial_form, cross_attention, head = layout_defaults[self.layout]
    if self.spatial_form is None:
      object.__setattr__(self, 'spatial_form', spatial_form)
    if self.cross_attention is None:
      object.__setattr__(self, 'cross_attention', cross_attention)
    if self.head is None:
      object.__setattr__(self, 'head', head)
    if self.spatial_heads is None:
      object.__setattr__(self, 'spatial_heads', self.num_heads)
    if self.cross_attn_heads is None:
      object.__setattr__(self, 'cross_attn_heads', self.num_heads)
    _check_choice('spatial_form', self.spatial_form, SPATIAL_FORMS)
    _check_choice('cross_attention', self.cross_attention, CROSS_ATTENTIONS)
    _check_choice('head', self.head, HEADS)
    _check_choice('decoder', self.decoder, DECODERS)
    _check_choice('pos_init', self.pos_init, POS_INITS)
    _check_choice('pooling', self.pooling, POOLINGS)
    _check_choice('dtype', self.dtype, ('float32', 'bfloat16'))
    for name in ('num_joints', 'coords', 'd_model', 'num_heads', 'num_layers', 'num_classes', 'pos_len',
                 'ffn_dim', 'spatial_heads', 'cross_attn_heads', 'decoder_patch', 'decoder_layers',
                 'target_levels'):
      value = getattr(self, name)
      if not isinstance(value, int) or value <= 0:
        raise ValueError(f'model.{name} must be a positive integer, got {value!r}')
    if not isinstance(self.target_width, int) or self.target_width < 0:
      raise ValueError(f'model.target_width must be a non-negative integer, got {self.target_width!r}')
    _check_divides('d_model', self.d_model, 'num_heads', self.num_heads)
    _check_divides('d_model', self.d_model, 'cross_attn_heads', self.cross_attn_heads)
    if self.variant == '1.2':
      if self.spatial_form == 'concat' and self.d_model % self.num_joints:
        raise ValueError(f'the 1.2 concat embedding needs d_model ({self.d_model}) divisible by '
                         f'num_joints ({self.num_joints})')
      _check_divides('spatial width', self.spatial_width, 'spatial_heads', self.spatial_heads)

  @property
  def spatial_width(self) -> int:
    """Token width of the 1.2 spatial layer: d (project back) or d / J (concat)."""
    if self.spatial_form == 'concat':
      return self.d_model // self.num_joints
    return self.d_model

  @property
  def feature_width(self) -> int:
    """Width of the feature_prediction targets."""
    return self.target_width or self.d_model

  @property
  def padding_aware(self) -> bool:
    """Whether padded frames (beyond a clip's length) are kept out of attention or pooling."""
    return self.pooling == 'masked_mean' or self.attention_padding_mask

  @property
  def compute_dtype(self) -> Any:
    return jnp.dtype(self.dtype)

  def replace(self, **changes) -> 'ModelConfig':
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: 'dict[str, Any] | ml_collections.ConfigDict') -> 'ModelConfig':
    """Builds a config from a dict or ``ConfigDict``; unknown keys are an error."""
    if isinstance(values, ml_collections.ConfigDict):
      values = values.to_dict()
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(f'unknown model config keys {unknown}; known keys: {sorted(known)}')
    return cls(**values)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
  if value not in choices:
    raise ValueError(f'model.{name} must be one of {choices}, got {value!r}')


def _check_divides(name: str, value: int, divisor_name: str, divisor: int) -> None:
  if value % divisor:
    raise ValueError(f'{name} ({value}) must be divisible by {divisor_name} ({divisor})')
