"""The original PyTorch state-dict layout: module detection and the mapping to our Flax parameter trees.

This is the only module that knows PyTorch key names (see the README, "Checkpoint conversion").
"""

import dataclasses
import os
import re
from collections.abc import Mapping

import numpy as np

from cascadeformer_jax.checkpoints.torch_pickle import CheckpointError
from cascadeformer_jax.models.config import ModelConfig

StateDict = Mapping[str, np.ndarray]

MODULE_T1 = 't1'
MODULE_T2 = 't2'
MODULE_CROSS_ATTENTION = 'cross_attention'
MODULE_HEAD = 'head'

# Keys of post-publication ablations in the original repository (not part of any published model).
_UNPUBLISHED_KEYS = {
    'reconstruction_head.fc1.weight': 'a residual-MLP reconstruction decoder',
    'joint_embedding.proj.weight': 'a bone "biomechanics" embedding',
}
_LAYER_SUFFIXES = (
    'self_attn.in_proj_weight', 'self_attn.in_proj_bias', 'self_attn.out_proj.weight', 'self_attn.out_proj.bias',
    'linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias',
    'norm1.weight', 'norm1.bias', 'norm2.weight', 'norm2.bias')


@dataclasses.dataclass(frozen=True)
class ModuleInfo:
  """What a state-dict file holds, read from its keys and shapes alone.

  Head counts are not recoverable from weights (an attention's parameters are the same for every head count).
  """

  module: str  # MODULE_T1, MODULE_T2, MODULE_CROSS_ATTENTION or MODULE_HEAD.
  form: str | None = None  # T1: variant '1.0' / '1.1' / '1.2'; cross-attention 'simple' / 'ffn'; head 'linear' / 'mlp'.
  spatial_form: str | None = None  # T1 1.2: 'project_back' or 'concat'.
  d_model: int | None = None
  num_layers: int | None = None
  ffn_dim: int | None = None
  pos_len: int | None = None
  joint_features: int | None = None  # J * C.
  coords: int | None = None
  spatial_width: int | None = None
  num_classes: int | None = None
  penn_naming: bool = False  # Penn 1.0 names its frame Linear `embedding`.


def describe(state: StateDict, path: str | os.PathLike = '<state dict>') -> ModuleInfo:
  """Detects the module, variant and dimensions of a state dict from its keys and shapes."""
  keys = set(state)
  for key, what in _UNPUBLISHED_KEYS.items():
    if key in keys:
      raise CheckpointError(f'{path}: key {key!r} belongs to {what}, an unpublished ablation of the original '
                            'code; only the published CascadeFormer 1.0/1.1/1.2 modules can be converted')
  if 'pos_embedding' in keys:
    return _describe_t1(state, keys, path)
  if 'cross_attention.in_proj_weight' in keys:
    d = _shape(state, 'cross_attention.out_proj.weight', path)[0]
    return ModuleInfo(MODULE_CROSS_ATTENTION, 'ffn' if 'ffn.0.weight' in keys else 'simple', d_model=d)
  if 'fc.weight' in keys:
    num_classes, d = _shape(state, 'fc.weight', path)
    return ModuleInfo(MODULE_HEAD, 'linear', d_model=d, num_classes=num_classes)
  if 'net.5.weight' in keys:
    num_classes, d = _shape(state, 'net.5.weight', path)
    return ModuleInfo(MODULE_HEAD, 'mlp', d_model=d, num_classes=num_classes)
  if keys and all(key.startswith('encoder.layers.') for key in keys):
    num_layers = _count_layers(keys, 'encoder', path)
    d = _shape(state, 'encoder.layers.0.norm1.weight', path)[0]
    ffn_dim = _shape(state, 'encoder.layers.0.linear1.weight', path)[0]
    return ModuleInfo(MODULE_T2, d_model=d, num_layers=num_layers, ffn_dim=ffn_dim)
  sample = sorted(keys)[:4]
  raise CheckpointError(f'{path}: not a CascadeFormer module state dict (keys start with {sample}); expected '
                        'a T1, T2, cross-attention or head file')


def _describe_t1(state: StateDict, keys: set[str], path) -> ModuleInfo:
  pos_shape = _shape(state, 'pos_embedding', path)
  if len(pos_shape) != 3 or pos_shape[0] != 1:
    raise CheckpointError(f'{path}: key \'pos_embedding\' has shape {pos_shape}, expected (1, P, d)')
  _, pos_len, d = pos_shape
  joint_features = _shape(state, 'reconstruction_head.weight', path)[0]
  common = dict(
      module=MODULE_T1, d_model=d, pos_len=pos_len, joint_features=joint_features,
      num_layers=_count_layers(keys, 'transformer_encoder', path),
      ffn_dim=_shape(state, 'transformer_encoder.layers.0.linear1.weight', path)[0])
  if 'embedding.weight' in keys:
    return ModuleInfo(form='1.0', penn_naming=True, **common)
  if 'joint_conv.0.weight' in keys:
    coords = _shape(state, 'joint_conv.0.weight', path)[0]
    return ModuleInfo(form='1.1', coords=coords, **common)
  if 'spatial_transformer.joint_embedding.weight' in keys:
    width, coords = _shape(state, 'spatial_transformer.joint_embedding.weight', path)
    if 'spatial_transformer.output_proj.weight' in keys:
      spatial_form = 'project_back'
    elif 'joint_embedding.weight' not in keys:
      spatial_form = 'concat'
    else:
      raise CheckpointError(f'{path}: a 1.2 spatial transformer with a frame Linear but no output projection '
                            'matches no published form')
    return ModuleInfo(form='1.2', spatial_form=spatial_form, coords=coords, spatial_width=width, **common)
  if 'joint_embedding.weight' in keys:
    return ModuleInfo(form='1.0', **common)
  raise CheckpointError(f'{path}: T1 file without a recognisable frame embedding (no key '
                        "'joint_embedding.weight', 'embedding.weight', 'joint_conv.0.weight' or "
                        "'spatial_transformer.joint_embedding.weight')")


def _count_layers(keys: set[str], prefix: str, path) -> int:
  pattern = re.compile(rf'^{re.escape(prefix)}\.layers\.(\d+)\.')
  indices = {int(m.group(1)) for key in keys if (m := pattern.match(key))}
  if not indices:
    raise CheckpointError(f'{path}: no {prefix}.layers.* keys')
  missing = sorted(set(range(max(indices) + 1)) - indices)
  if missing:
    raise CheckpointError(f'{path}: {prefix}.layers.{missing[0]}.* is missing (layers must be 0..L-1)')
  return max(indices) + 1


def _shape(state: StateDict, key: str, path) -> tuple[int, ...]:
  if key not in state:
    raise CheckpointError(f'{path}: missing key {key!r}')
  return tuple(state[key].shape)


def check_compatible(info: ModuleInfo, config: ModelConfig, path) -> None:
  """Raises a CheckpointError naming the file when the detected module disagrees with the config."""

  def mismatch(what: str, found, expected, key: str):
    raise CheckpointError(f'{path}: the weights have {what} = {found} (key {key!r}) but the config says '
                          f'{expected}')

  if info.module == MODULE_T1:
    if info.form != config.variant:
      mismatch('variant', info.form, f'variant={config.variant!r}', _variant_key(info))
    if info.form == '1.2' and info.spatial_form != config.spatial_form:
      mismatch('1.2 spatial form', repr(info.spatial_form), f'spatial_form={config.spatial_form!r}',
               'spatial_transformer.joint_embedding.weight')
    if info.joint_features != config.num_joints * config.coords:
      mismatch('joints x coordinates', info.joint_features,
               f'num_joints x coords = {config.num_joints} x {config.coords} = '
               f'{config.num_joints * config.coords}', 'reconstruction_head.weight')
    if info.coords is not None and info.coords != config.coords:
      mismatch('coordinates per joint', info.coords, f'coords={config.coords}', _variant_key(info))
    if info.pos_len != config.pos_len:
      mismatch('positional table length', info.pos_len, f'pos_len={config.pos_len}', 'pos_embedding')
    if info.d_model != config.d_model:
      mismatch('model width', info.d_model, f'd_model={config.d_model}', 'pos_embedding')
  elif info.d_model != config.d_model:
    mismatch('model width', info.d_model, f'd_model={config.d_model}', _width_key(info))
  if info.num_layers is not None and info.num_layers != config.num_layers:
    prefix = 'transformer_encoder' if info.module == MODULE_T1 else 'encoder'
    mismatch('number of layers', info.num_layers, f'num_layers={config.num_layers}', f'{prefix}.layers.*')
  if info.ffn_dim is not None and info.ffn_dim != config.ffn_dim:
    prefix = 'transformer_encoder' if info.module == MODULE_T1 else 'encoder'
    mismatch('FFN width', info.ffn_dim, f'ffn_dim={config.ffn_dim}', f'{prefix}.layers.0.linear1.weight')
  if info.module == MODULE_CROSS_ATTENTION and info.form != config.cross_attention:
    mismatch('cross-attention form', repr(info.form), f'cross_attention={config.cross_attention!r}',
             'ffn.0.weight' if info.form == 'ffn' else 'norm.weight')
  if info.module == MODULE_HEAD:
    if info.form != config.head:
      mismatch('head form', repr(info.form), f'head={config.head!r}', _width_key(info))
    if info.num_classes != config.num_classes:
      mismatch('number of classes', info.num_classes, f'num_classes={config.num_classes}', _width_key(info))


def _variant_key(info: ModuleInfo) -> str:
  return {'1.1': 'joint_conv.0.weight', '1.2': 'spatial_transformer.joint_embedding.weight'}.get(
      info.form, 'embedding.weight' if info.penn_naming else 'joint_embedding.weight')


def _width_key(info: ModuleInfo) -> str:
  return {
      MODULE_T2: 'encoder.layers.0.norm1.weight',
      MODULE_CROSS_ATTENTION: 'cross_attention.out_proj.weight',
      MODULE_HEAD: 'fc.weight' if info.form == 'linear' else 'net.5.weight',
  }.get(info.module, 'pos_embedding')


class _Reader:
  """Takes tensors out of a state dict by key, checking shapes; reports leftovers."""

  def __init__(self, state: StateDict, path):
    self._state = state
    self._path = path
    self._unused = set(state)

  def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in self._state:
      raise CheckpointError(f'{self._path}: missing key {key!r}')
    value = self._state[key]
    if tuple(value.shape) != tuple(shape):
      raise CheckpointError(f'{self._path}: key {key!r} has shape {tuple(value.shape)}, expected {tuple(shape)} '
                            'for this config')
    if not np.issubdtype(value.dtype, np.floating):
      raise CheckpointError(f'{self._path}: key {key!r} has dtype {value.dtype}, expected floating point')
    self._unused.discard(key)
    return value

  def linear(self, prefix: str, in_features: int, out_features: int) -> dict[str, np.ndarray]:
    return {'kernel': _f32(self.take(f'{prefix}.weight', (out_features, in_features)).T),
            'bias': _f32(self.take(f'{prefix}.bias', (out_features,)))}

  def layer_norm(self, prefix: str, width: int) -> dict[str, np.ndarray]:
    return {'scale': _f32(self.take(f'{prefix}.weight', (width,))),
            'bias': _f32(self.take(f'{prefix}.bias', (width,)))}

  def attention(self, prefix: str, width: int) -> dict:
    return {
        'in_proj_kernel': _f32(self.take(f'{prefix}.in_proj_weight', (3 * width, width)).T),
        'in_proj_bias': _f32(self.take(f'{prefix}.in_proj_bias', (3 * width,))),
        'out_proj': self.linear(f'{prefix}.out_proj', width, width),
    }

  def encoder_layer(self, prefix: str, width: int, ffn_dim: int) -> dict:
    return {
        'self_attn': self.attention(f'{prefix}.self_attn', width),
        'linear1': self.linear(f'{prefix}.linear1', width, ffn_dim),
        'linear2': self.linear(f'{prefix}.linear2', ffn_dim, width),
        'norm1': self.layer_norm(f'{prefix}.norm1', width),
        'norm2': self.layer_norm(f'{prefix}.norm2', width),
    }

  def encoder(self, prefix: str, config: ModelConfig) -> dict:
    return {f'layer_{i}': self.encoder_layer(f'{prefix}.layers.{i}', config.d_model, config.ffn_dim)
            for i in range(config.num_layers)}

  def conv1d(self, prefix: str, channels: int, kernel_size: int) -> dict[str, np.ndarray]:
    weight = self.take(f'{prefix}.weight', (channels, channels, kernel_size))
    # PyTorch (out, in, k) -> Flax (k, in, out); both cross-correlate, so no flip.
    return {'kernel': _f32(weight.transpose(2, 1, 0)), 'bias': _f32(self.take(f'{prefix}.bias', (channels,)))}

  def finish(self) -> None:
    if self._unused:
      raise CheckpointError(f'{self._path}: unexpected keys {sorted(self._unused)[:5]} for this config '
                            f'({len(self._unused)} in all)')


def _f32(value: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(value, dtype=np.float32)


def t1_params(state: StateDict, config: ModelConfig, path) -> tuple[dict, dict]:
  """Converts a T1 file: returns (T1 params, reconstruction-decoder params) in our Flax layout."""
  info = describe(state, path)
  if info.module != MODULE_T1:
    raise CheckpointError(f'{path}: expected a T1 file, found a {info.module} file')
  check_compatible(info, config, path)
  reader = _Reader(state, path)
  d, joints, coords = config.d_model, config.num_joints, config.coords
  frame_linear_name = 'embedding' if info.penn_naming else 'joint_embedding'
  embedding = {}
  if config.variant == '1.1':
    embedding['conv_k3'] = reader.conv1d('joint_conv.0', coords, 3)
    embedding['conv_k1'] = reader.conv1d('joint_conv.2', coords, 1)
  if config.variant == '1.2':
    width = config.spatial_width
    embedding['joint_linear'] = reader.linear('spatial_transformer.joint_embedding', coords, width)
    embedding['spatial_layer'] = reader.encoder_layer('spatial_transformer.encoder.layers.0', width,
                                                      config.ffn_dim)
    if config.spatial_form == 'project_back':
      embedding['output_proj'] = reader.linear('spatial_transformer.output_proj', width, coords)
  if not (config.variant == '1.2' and config.spatial_form == 'concat'):
    embedding['frame_linear'] = reader.linear(frame_linear_name, joints * coords, d)
  t1 = {
      'pos_embedding': _f32(reader.take('pos_embedding', (1, config.pos_len, d))),
      'embedding': embedding,
      'encoder': reader.encoder('transformer_encoder', config),
  }
  decoder = {'linear': reader.linear('reconstruction_head', d, joints * coords)}
  reader.finish()
  return t1, decoder


def t2_params(state: StateDict, config: ModelConfig, path) -> dict:
  info = describe(state, path)
  if info.module != MODULE_T2:
    raise CheckpointError(f'{path}: expected a T2 file, found a {info.module} file')
  check_compatible(info, config, path)
  reader = _Reader(state, path)
  params = reader.encoder('encoder', config)
  reader.finish()
  return params


def cross_attention_params(state: StateDict, config: ModelConfig, path) -> dict:
  info = describe(state, path)
  if info.module != MODULE_CROSS_ATTENTION:
    raise CheckpointError(f'{path}: expected a cross-attention file, found a {info.module} file')
  check_compatible(info, config, path)
  reader = _Reader(state, path)
  d = config.d_model
  params = {'attention': reader.attention('cross_attention', d)}
  if config.cross_attention == 'simple':
    params['norm1'] = reader.layer_norm('norm', d)
  else:
    params['norm1'] = reader.layer_norm('norm1', d)
    params['ffn_a'] = reader.linear('ffn.0', d, d)
    params['ffn_b'] = reader.linear('ffn.3', d, d)
    params['norm2'] = reader.layer_norm('norm2', d)
  reader.finish()
  return params


def head_params(state: StateDict, config: ModelConfig, path) -> dict:
  info = describe(state, path)
  if info.module != MODULE_HEAD:
    raise CheckpointError(f'{path}: expected a head file, found a {info.module} file')
  check_compatible(info, config, path)
  reader = _Reader(state, path)
  d, k = config.d_model, config.num_classes
  if config.head == 'linear':
    params = {'fc': reader.linear('fc', d, k)}
  else:
    params = {'norm': reader.layer_norm('net.0', d), 'fc1': reader.linear('net.2', d, d),
              'fc2': reader.linear('net.5', d, k)}
  reader.finish()
  return params
