"""PyTorch reference implementation of CascadeFormer, the baseline of the benchmarks.

Written from the description of the original modules in ``docs/original_code.md`` (architecture). It is built
the way the original code runs: eager PyTorch with the ``torch.nn`` built-ins the original used
(``nn.TransformerEncoder`` of post-LN ``nn.TransformerEncoderLayer`` with ReLU and FFN width 2048,
``nn.MultiheadAttention`` with ``batch_first=True``), and the original module attribute names, so the published
``state_dict`` files (and the parity goldens) load with ``load_state_dict(strict=True)``.

Modules:
  * ``T1``: frame embedding (variant 1.0 / 1.1 / 1.2) + learned positional table + encoder + linear
    reconstruction head. ``encode(x)`` gives (B, T, d); ``forward(x)`` / ``reconstruct(x)`` give (B, T, J, C).
  * ``T2``: a second encoder over T1's features.
  * ``SimpleCrossAttention`` (Penn, N-UCLA) and ``CrossAttentionWithFFN`` (NTU): query = T1, key = value = T2.
  * ``LinearHead`` (Penn, N-UCLA) and ``MLPHead`` (NTU).
  * ``Classifier``: T1 -> T2 -> cross-attention -> mean over time -> head.
  * ``Pretrainer``: T1 with its reconstruction head and the masked-MSE loss.

``build_finetune_step`` and ``build_pretrain_step`` return one optimiser step each (AdamW / Adam as in
``docs/original_code.md``, training recipes), with the masking drawn per clip in a Python loop as the original does.
"""

import dataclasses
import json
import math
import os
import pathlib
from typing import Callable

import torch
from torch import nn

VARIANTS = ('1.0', '1.1', '1.2')
LAYOUTS = ('penn', 'nucla', 'ntu')
MASK_RATIO = 0.3
LAYER_NORM_EPS = 1e-5
GOLDEN_FILE_ROLES = ('pretrained', 'finetuned_T1', 'finetuned_T2', 'finetuned_cross_attn',
                     'finetuned_head')
_META_KEYS = ('variant', 'layout', 'num_joints', 'coords', 'num_classes', 'd_model', 'num_heads',
              'num_layers', 'pos_embedding_len', 'files')


@dataclasses.dataclass(frozen=True)
class Config:
  """Sizes and dropout rates of one CascadeFormer model.

  ``layout`` selects the code family: 'penn' and 'nucla' use the simple cross-attention, the Linear head and
  the project-back 1.2 embedding; 'ntu' uses the cross-attention with FFN, the MLP head and the concat 1.2
  embedding. ``cross_attn_heads`` is the cross-attention's head count (``None``: ``num_heads``); the original
  Penn / N-UCLA evaluation used 4 (quirk Q1 of ``docs/original_code.md``).
  """
  variant: str
  layout: str
  num_joints: int
  coords: int
  d_model: int
  num_heads: int
  num_layers: int
  pos_len: int
  num_classes: int
  ffn_dim: int = 2048
  t1_dropout: float = 0.1
  spatial_dropout: float = 0.1
  t2_dropout: float = 0.1
  cross_attn_dropout: float = 0.1
  head_dropout: float = 0.0
  cross_attn_heads: int | None = None

  def __post_init__(self):
    if self.variant not in VARIANTS:
      raise ValueError(f'variant: expected one of {VARIANTS}, got {self.variant!r}')
    if self.layout not in LAYOUTS:
      raise ValueError(f'layout: expected one of {LAYOUTS}, got {self.layout!r}')
    for name in ('num_joints', 'coords', 'd_model', 'num_heads', 'num_layers', 'pos_len', 'num_classes',
                 'ffn_dim'):
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{name}: expected a positive integer, got {value!r}')
    if self.d_model % self.num_heads:
      raise ValueError(f'num_heads: {self.num_heads} does not divide d_model {self.d_model}')
    if self.cross_attn_heads is not None and (self.cross_attn_heads < 1 or
                                              self.d_model % self.cross_attn_heads):
      raise ValueError(f'cross_attn_heads: {self.cross_attn_heads} does not divide d_model {self.d_model}')
    if self.uses_concat_embedding:
      if self.d_model % self.num_joints:
        raise ValueError(f'd_model: the NTU 1.2 embedding needs num_joints ({self.num_joints}) to divide '
                         f'd_model ({self.d_model})')
      if self.spatial_width % self.num_heads:
        raise ValueError(f'num_heads: {self.num_heads} does not divide the NTU 1.2 spatial width '
                         f'{self.spatial_width}')

  @property
  def uses_concat_embedding(self) -> bool:
    return self.variant == '1.2' and self.layout == 'ntu'

  @property
  def spatial_width(self) -> int:
    """Token width of the 1.2 spatial transformer: d (project back) or d / J (concat)."""
    return self.d_model // self.num_joints if self.uses_concat_embedding else self.d_model

  @property
  def eval_cross_attn_heads(self) -> int:
    return self.num_heads if self.cross_attn_heads is None else self.cross_attn_heads

  @classmethod
  def for_layout(cls, **fields) -> 'Config':
    """A config with the training dropouts of ``fields['layout']`` (``docs/original_code.md``, training recipes)."""
    if fields.get('layout') == 'ntu':
      fields = {'t2_dropout': 0.2, 'cross_attn_dropout': 0.2, 'head_dropout': 0.3, **fields}
    return cls(**fields)

  @classmethod
  def from_meta(cls, meta: dict, source: str = 'meta.json', cross_attn_heads: int | None = None) -> 'Config':
    """Builds the config of a golden case from its parsed ``meta.json`` (``docs/golden.md``, model cases)."""
    missing = [key for key in _META_KEYS if key not in meta]
    if missing:
      raise KeyError(f'{source}: missing key(s) {missing}')
    try:
      return cls.for_layout(
          variant=meta['variant'], layout=meta['layout'], num_joints=meta['num_joints'],
          coords=meta['coords'], d_model=meta['d_model'], num_heads=meta['num_heads'],
          num_layers=meta['num_layers'], pos_len=meta['pos_embedding_len'],
          num_classes=meta['num_classes'], ffn_dim=meta.get('ffn_dim', 2048),
          cross_attn_heads=cross_attn_heads)
    except ValueError as error:
      raise ValueError(f'{source}: {error}') from error


def published_config(dataset: str, variant: str = '1.0') -> Config:
  """The published model sizes (``docs/original_code.md``, published configurations).

  Args:
    dataset: 'penn_action', 'n_ucla', 'ntu60_xsub' or 'ntu60_xview'.
    variant: '1.0', '1.1' or '1.2'.
  """
  if dataset == 'penn_action':
    return Config.for_layout(variant=variant, layout='penn', num_joints=13, coords=2, d_model=256,
                             num_heads=8, num_layers=4, pos_len=1000 if variant == '1.0' else 2048,
                             num_classes=15)
  if dataset == 'n_ucla':
    return Config.for_layout(variant=variant, layout='nucla', num_joints=20, coords=3, d_model=256,
                             num_heads=8, num_layers=4, pos_len=2048, num_classes=10)
  if dataset in ('ntu60_xsub', 'ntu60_xview'):
    xsub = dataset == 'ntu60_xsub'
    if variant == '1.2':
      d_model = 800 if xsub else 600
    else:
      d_model = 768 if xsub else 512
    return Config.for_layout(variant=variant, layout='ntu', num_joints=25, coords=3, d_model=d_model,
                             num_heads=16 if xsub else 8, num_layers=16 if xsub else 12, pos_len=64,
                             num_classes=60,
                             head_dropout=0.2 if (xsub and variant == '1.0') else 0.3)
  raise ValueError(f'dataset: expected penn_action, n_ucla, ntu60_xsub or ntu60_xview, got {dataset!r}')


def _encoder(width: int, num_heads: int, num_layers: int, ffn_dim: int, dropout: float) -> nn.TransformerEncoder:
  layer = nn.TransformerEncoderLayer(d_model=width, nhead=num_heads, dim_feedforward=ffn_dim, dropout=dropout,
                                     activation='relu', layer_norm_eps=LAYER_NORM_EPS, batch_first=True,
                                     norm_first=False)
  # Without masks the nested-tensor path never applies; disabling it only silences its warnings.
  return nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)


class SpatialTransformer(nn.Module):
  """Variant 1.2: a one-layer transformer over the J joint tokens of every frame.

  Project back (Penn, N-UCLA): (B, T, J, C) -> (B, T, J*C), via Linear(C->d), encoder, Linear(d->C).
  Concat (NTU): (B, T, J, C) -> (B, T, J*w) with w = d / J, via Linear(C->w), encoder.
  """

  def __init__(self, config: Config):
    super().__init__()
    width = config.spatial_width
    self.joint_embedding = nn.Linear(config.coords, width)
    self.encoder = _encoder(width, config.num_heads, 1, config.ffn_dim, config.spatial_dropout)
    self.output_proj = None if config.uses_concat_embedding else nn.Linear(width, config.coords)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    batch, frames, joints, coords = x.shape
    tokens = self.encoder(self.joint_embedding(x.reshape(batch * frames, joints, coords)))
    if self.output_proj is not None:
      tokens = self.output_proj(tokens)
    return tokens.reshape(batch, frames, -1)


class T1(nn.Module):
  """First-stage transformer: frame embedding + positional table + encoder + reconstruction head."""

  def __init__(self, config: Config):
    super().__init__()
    self.config = config
    d_model, joint_features = config.d_model, config.num_joints * config.coords
    self.pos_embedding = nn.Parameter(torch.zeros(1, config.pos_len, d_model))
    if not (config.layout == 'penn' and config.variant == '1.0'):
      nn.init.trunc_normal_(self.pos_embedding, std=0.02)
    # Penn 1.0's original names its frame Linear `embedding`; every other model `joint_embedding`.
    self._embedding_name = 'embedding' if (config.layout == 'penn' and config.variant == '1.0') else 'joint_embedding'
    if config.variant == '1.1':
      self.joint_conv = nn.Sequential(
          nn.Conv1d(config.coords, config.coords, kernel_size=3, padding=1),
          nn.ReLU(),
          nn.Conv1d(config.coords, config.coords, kernel_size=1))
    if config.variant == '1.2':
      self.spatial_transformer = SpatialTransformer(config)
    if not config.uses_concat_embedding:
      self.add_module(self._embedding_name, nn.Linear(joint_features, d_model))
    self.transformer_encoder = _encoder(d_model, config.num_heads, config.num_layers, config.ffn_dim,
                                        config.t1_dropout)
    self.reconstruction_head = nn.Linear(d_model, joint_features)

  def _check_input(self, x: torch.Tensor) -> None:
    config = self.config
    if x.ndim != 4 or x.shape[2:] != (config.num_joints, config.coords):
      raise ValueError(f'x: expected shape (B, T, {config.num_joints}, {config.coords}), got {tuple(x.shape)}')
    if x.shape[1] > config.pos_len:
      raise ValueError(f'x: {x.shape[1]} frames exceed the positional table length {config.pos_len}')

  def embed(self, x: torch.Tensor) -> torch.Tensor:
    """Frame embedding plus positional table: (B, T, J, C) -> (B, T, d)."""
    self._check_input(x)
    batch, frames, joints, coords = x.shape
    if self.config.variant == '1.1':
      per_frame = x.reshape(batch * frames, joints, coords).transpose(1, 2)  # (B*T, C, J)
      x = self.joint_conv(per_frame).transpose(1, 2).reshape(batch, frames, joints, coords)
    if self.config.variant == '1.2':
      h = self.spatial_transformer(x)
    else:
      h = x.reshape(batch, frames, joints * coords)
    if not self.config.uses_concat_embedding:
      h = getattr(self, self._embedding_name)(h)
    return h + self.pos_embedding[:, :frames, :]

  def encode(self, x: torch.Tensor) -> torch.Tensor:
    """(B, T, J, C) -> features (B, T, d)."""
    return self.transformer_encoder(self.embed(x))

  def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
    """(B, T, J, C) -> reconstruction (B, T, J, C), joint-major like the input."""
    recon = self.reconstruction_head(self.encode(x))
    return recon.reshape(x.shape)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.reconstruct(x)


class T2(nn.Module):
  """Second-stage encoder: (B, T, d) -> (B, T, d); no embedding, no positional table."""

  def __init__(self, config: Config):
    super().__init__()
    self.encoder = _encoder(config.d_model, config.num_heads, config.num_layers, config.ffn_dim,
                            config.t2_dropout)

  def forward(self, features: torch.Tensor) -> torch.Tensor:
    return self.encoder(features)


class SimpleCrossAttention(nn.Module):
  """Penn / N-UCLA: LN(q + Dropout(MHA(q, kv, kv))); attention-probability dropout 0."""

  def __init__(self, d_model: int, num_heads: int, dropout: float):
    super().__init__()
    self.cross_attention = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
    self.norm = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
    self.dropout = nn.Dropout(dropout)

  def forward(self, query: torch.Tensor, key_value: torch.Tensor) -> torch.Tensor:
    """(B, T, d), (B, T, d) -> (B, T, d)."""
    # need_weights keeps its default (True), as the original calls it.
    attended, _ = self.cross_attention(query, key_value, key_value)
    return self.norm(query + self.dropout(attended))


class CrossAttentionWithFFN(nn.Module):
  """NTU: cross-attention block with a d->d->d ReLU FFN, post-LN, dropout p everywhere."""

  def __init__(self, d_model: int, num_heads: int, dropout: float):
    super().__init__()
    self.cross_attention = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
    self.norm1 = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
    self.dropout1 = nn.Dropout(dropout)
    self.ffn = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Dropout(dropout),
                             nn.Linear(d_model, d_model))
    self.norm2 = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
    self.dropout2 = nn.Dropout(dropout)

  def forward(self, query: torch.Tensor, key_value: torch.Tensor) -> torch.Tensor:
    """(B, T, d), (B, T, d) -> (B, T, d)."""
    attended, _ = self.cross_attention(query, key_value, key_value)
    x = self.norm1(query + self.dropout1(attended))
    return self.norm2(x + self.dropout2(self.ffn(x)))


class LinearHead(nn.Module):
  """Penn / N-UCLA: (B, d) -> (B, K)."""

  def __init__(self, d_model: int, num_classes: int):
    super().__init__()
    self.fc = nn.Linear(d_model, num_classes)

  def forward(self, pooled: torch.Tensor) -> torch.Tensor:
    return self.fc(pooled)


class MLPHead(nn.Module):
  """NTU: LN -> Dropout -> Linear(d->d) -> ReLU -> Dropout -> Linear(d->K); (B, d) -> (B, K)."""

  def __init__(self, d_model: int, num_classes: int, dropout: float):
    super().__init__()
    self.net = nn.Sequential(nn.LayerNorm(d_model, eps=LAYER_NORM_EPS), nn.Dropout(dropout),
                             nn.Linear(d_model, d_model), nn.ReLU(), nn.Dropout(dropout),
                             nn.Linear(d_model, num_classes))

  def forward(self, pooled: torch.Tensor) -> torch.Tensor:
    return self.net(pooled)


def make_cross_attention(config: Config, num_heads: int | None = None) -> nn.Module:
  """The layout's cross-attention block with ``num_heads`` heads (default: the config's evaluation count)."""
  heads = config.eval_cross_attn_heads if num_heads is None else num_heads
  if config.layout == 'ntu':
    return CrossAttentionWithFFN(config.d_model, heads, config.cross_attn_dropout)
  return SimpleCrossAttention(config.d_model, heads, config.cross_attn_dropout)


def make_head(config: Config) -> nn.Module:
  if config.layout == 'ntu':
    return MLPHead(config.d_model, config.num_classes, config.head_dropout)
  return LinearHead(config.d_model, config.num_classes)


class Classifier(nn.Module):
  """Cascade fine-tuning model: T1 -> T2 -> cross-attention -> mean over time -> head."""

  def __init__(self, config: Config):
    super().__init__()
    self.config = config
    self.t1 = T1(config)
    self.t2 = T2(config)
    self.cross_attn = make_cross_attention(config)
    self.head = make_head(config)

  def intermediates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, T, J, C) -> t1_features, t2_features, fused (B, T, d); pooled (B, d); logits (B, K)."""
    t1_features = self.t1.encode(x)
    t2_features = self.t2(t1_features)
    fused = self.cross_attn(t1_features, t2_features)
    pooled = fused.mean(dim=1)
    return {'t1_features': t1_features, 't2_features': t2_features, 'fused': fused, 'pooled': pooled,
            'logits': self.head(pooled)}

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """(B, T, J, C) -> logits (B, K)."""
    return self.intermediates(x)['logits']


def masked_mse(recon: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
  """Mean squared error over the masked scalar entries of the whole batch.

  Args:
    recon: (B, T, J, C) reconstruction.
    target: (B, T, J, C) unmasked input.
    mask: (B, T, J) bool, True where the slot was masked.
    eps: added to the count of masked entries (the original training loss adds 1e-8).

  Returns:
    A scalar: sum over masked slots and all C of (recon - target)^2, divided by (masked slots * C + eps).
  """
  if recon.shape != target.shape:
    raise ValueError(f'recon: shape {tuple(recon.shape)} differs from target {tuple(target.shape)}')
  if mask.dtype != torch.bool or mask.shape != target.shape[:3]:
    raise ValueError(f'mask: expected a bool tensor of shape {tuple(target.shape[:3])}, '
                     f'got {mask.dtype} {tuple(mask.shape)}')
  weights = mask.unsqueeze(-1).expand_as(target)
  squared = (recon - target) ** 2 * weights
  return squared.sum() / (weights.sum() + eps)


def random_mask(batch: int, frames: int, joints: int, mask_ratio: float = MASK_RATIO,
                generator: torch.Generator | None = None) -> torch.Tensor:
  """The original per-clip mask: ``max(1, floor(ratio*T*J))`` distinct (frame, joint) slots per clip.

  Drawn clip by clip with ``torch.randperm`` in a Python loop, as the original does. Returns (B, T, J) bool.
  """
  slots = frames * joints
  count = max(1, int(mask_ratio * slots))
  mask = torch.zeros(batch, slots, dtype=torch.bool)
  for clip in range(batch):
    mask[clip, torch.randperm(slots, generator=generator)[:count]] = True
  return mask.reshape(batch, frames, joints)


def apply_mask(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
  """Sets all C coordinates of masked slots to 0: (B, T, J, C), (B, T, J) bool -> (B, T, J, C)."""
  if mask.dtype != torch.bool or mask.shape != x.shape[:3]:
    raise ValueError(f'mask: expected a bool tensor of shape {tuple(x.shape[:3])}, '
                     f'got {mask.dtype} {tuple(mask.shape)}')
  return x.masked_fill(mask.unsqueeze(-1), 0.0)


class Pretrainer(nn.Module):
  """Masked pretraining model: T1 with its reconstruction head, and the masked-MSE loss."""

  def __init__(self, config: Config):
    super().__init__()
    self.config = config
    self.t1 = T1(config)

  def forward(self, x_masked: torch.Tensor) -> torch.Tensor:
    """(B, T, J, C) masked input -> reconstruction (B, T, J, C)."""
    return self.t1.reconstruct(x_masked)

  def loss(self, x: torch.Tensor, mask: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Masked MSE of the reconstruction of ``apply_mask(x, mask)`` against the unmasked ``x`` (B, T, J, C)."""
    return masked_mse(self(apply_mask(x, mask)), x, mask, eps=eps)


def _load_state_dict(module: nn.Module, path: pathlib.Path) -> None:
  if not path.is_file():
    raise FileNotFoundError(f'{path}: checkpoint file not found')
  state = torch.load(path, map_location='cpu', weights_only=True)
  try:
    module.load_state_dict(state, strict=True)
  except RuntimeError as error:
    raise ValueError(f'{path}: does not match {type(module).__name__} of the configured model: {error}') from error


@dataclasses.dataclass
class GoldenCase:
  """The modules of one golden case, in eval mode, with the five checkpoint files loaded."""
  config: Config
  pretrainer: Pretrainer
  classifier: Classifier


def load_golden_case(case_dir: str | os.PathLike, cross_attn_heads: int | None = None) -> GoldenCase:
  """Builds the modules described by ``case_dir/meta.json`` and loads the case's five ``.pt`` files.

  Args:
    case_dir: a golden case folder (``docs/golden.md``).
    cross_attn_heads: head count of the classifier's cross-attention (default: ``num_heads``).
  """
  case_dir = pathlib.Path(case_dir)
  meta_path = case_dir / 'meta.json'
  if not meta_path.is_file():
    raise FileNotFoundError(f'{meta_path}: meta.json not found')
  try:
    meta = json.loads(meta_path.read_text())
  except json.JSONDecodeError as error:
    raise ValueError(f'{meta_path}: not valid JSON: {error}') from error
  if not isinstance(meta, dict):
    raise ValueError(f'{meta_path}: expected a JSON object, got {type(meta).__name__}')
  config = Config.from_meta(meta, source=str(meta_path), cross_attn_heads=cross_attn_heads)
  files = meta['files']
  missing = [role for role in GOLDEN_FILE_ROLES if role not in files]
  if missing:
    raise KeyError(f'{meta_path}: files is missing role(s) {missing}')

  pretrainer = Pretrainer(config)
  classifier = Classifier(config)
  _load_state_dict(pretrainer.t1, case_dir / files['pretrained'])
  _load_state_dict(classifier.t1, case_dir / files['finetuned_T1'])
  _load_state_dict(classifier.t2, case_dir / files['finetuned_T2'])
  _load_state_dict(classifier.cross_attn, case_dir / files['finetuned_cross_attn'])
  _load_state_dict(classifier.head, case_dir / files['finetuned_head'])
  pretrainer.eval()
  classifier.eval()
  return GoldenCase(config=config, pretrainer=pretrainer, classifier=classifier)


def use_all_cores() -> int:
  """Sets PyTorch's intra-op threads to the number of cores, as the benchmarks require; returns it."""
  cores = os.cpu_count() or 1
  torch.set_num_threads(cores)
  return cores


def finetune_hyperparameters(config: Config) -> dict[str, float]:
  """Learning rate, weight decay and label smoothing of the fine-tuning recipe.

  See ``docs/original_code.md``, training recipes.
  """
  if config.layout == 'ntu':
    cross_view = config.d_model in (512, 600)
    learning_rate = 1e-4 if (cross_view and config.variant != '1.2') else 3e-5
    return {'learning_rate': learning_rate, 'weight_decay': 1e-2, 'label_smoothing': 0.05}
  if config.layout == 'nucla' and config.variant != '1.1':
    return {'learning_rate': 3e-5, 'weight_decay': 1e-2, 'label_smoothing': 0.0}
  return {'learning_rate': 3e-5, 'weight_decay': 1e-4, 'label_smoothing': 0.0}


@dataclasses.dataclass
class TrainStep:
  """A model in train mode, its optimiser and ``step(*batch) -> detached loss``."""
  model: nn.Module
  optimizer: torch.optim.Optimizer
  step: Callable[..., torch.Tensor]
  scheduler: torch.optim.lr_scheduler.LRScheduler | None = None


def build_finetune_step(config: Config, seed: int = 0, model: Classifier | None = None) -> TrainStep:
  """One cascade fine-tuning step: AdamW over T1, T2, cross-attention and head; cross-entropy.

  ``step(x, labels)`` takes x (B, T, J, C) float32 and labels (B,) int64. The per-epoch schedules of the
  recipe are not part of a step and are left out.
  """
  use_all_cores()
  if model is None:
    torch.manual_seed(seed)
    model = Classifier(config)
  model.train()
  hyper = finetune_hyperparameters(config)
  optimizer = torch.optim.AdamW(model.parameters(), lr=hyper['learning_rate'],
                                weight_decay=hyper['weight_decay'])
  criterion = nn.CrossEntropyLoss(label_smoothing=hyper['label_smoothing'])

  def step(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    loss = criterion(model(x), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()

  return TrainStep(model=model, optimizer=optimizer, step=step)


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
  """HF ``get_cosine_schedule_with_warmup`` multiplier at ``step``."""
  if step < warmup_steps:
    return step / max(1, warmup_steps)
  progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
  return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def build_pretrain_step(config: Config, seed: int = 0, total_steps: int | None = None,
                        model: Pretrainer | None = None) -> TrainStep:
  """One masked-pretraining step: Adam 1e-4, a fresh per-clip random mask, masked MSE (+1e-8 as the original).

  ``step(x)`` takes the unmasked x (B, T, J, C). For NTU with ``total_steps`` given, the lr follows the
  per-step warmup-cosine schedule (warmup 5 % of ``total_steps``), stepped after every update.
  """
  use_all_cores()
  if model is None:
    torch.manual_seed(seed)
    model = Pretrainer(config)
  model.train()
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
  scheduler = None
  if config.layout == 'ntu' and total_steps is not None:
    warmup_steps = int(0.05 * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step_index: warmup_cosine_factor(step_index, warmup_steps, total_steps))

  def step(x: torch.Tensor) -> torch.Tensor:
    batch, frames, joints, _ = x.shape
    mask = random_mask(batch, frames, joints)
    loss = model.loss(x, mask, eps=1e-8)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if scheduler is not None:
      scheduler.step()
    return loss.detach()

  return TrainStep(model=model, optimizer=optimizer, step=step, scheduler=scheduler)
