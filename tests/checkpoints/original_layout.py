"""Random state dicts in the original PyTorch layout for any config (written independently of the converter)."""

import numpy as np

from cascadeformer_jax.models import ModelConfig


def _encoder_layer(prefix: str, width: int, ffn: int) -> dict[str, tuple[int, ...]]:
  return {
      f'{prefix}.self_attn.in_proj_weight': (3 * width, width), f'{prefix}.self_attn.in_proj_bias': (3 * width,),
      f'{prefix}.self_attn.out_proj.weight': (width, width), f'{prefix}.self_attn.out_proj.bias': (width,),
      f'{prefix}.linear1.weight': (ffn, width), f'{prefix}.linear1.bias': (ffn,),
      f'{prefix}.linear2.weight': (width, ffn), f'{prefix}.linear2.bias': (width,),
      f'{prefix}.norm1.weight': (width,), f'{prefix}.norm1.bias': (width,),
      f'{prefix}.norm2.weight': (width,), f'{prefix}.norm2.bias': (width,),
  }


def shapes(config: ModelConfig) -> dict[str, dict[str, tuple[int, ...]]]:
  """Role -> key -> shape of the five published files for ``config``."""
  d, joint_features, ffn = config.d_model, config.num_joints * config.coords, config.ffn_dim
  t1 = {'pos_embedding': (1, config.pos_len, d)}
  penn_naming = config.layout == 'penn' and config.variant == '1.0'
  if config.variant == '1.1':
    t1.update({'joint_conv.0.weight': (config.coords, config.coords, 3), 'joint_conv.0.bias': (config.coords,),
               'joint_conv.2.weight': (config.coords, config.coords, 1), 'joint_conv.2.bias': (config.coords,)})
  if config.variant == '1.2':
    width = config.spatial_width
    t1.update({'spatial_transformer.joint_embedding.weight': (width, config.coords),
               'spatial_transformer.joint_embedding.bias': (width,)})
    t1.update(_encoder_layer('spatial_transformer.encoder.layers.0', width, ffn))
    if config.spatial_form == 'project_back':
      t1.update({'spatial_transformer.output_proj.weight': (config.coords, width),
                 'spatial_transformer.output_proj.bias': (config.coords,)})
  if not (config.variant == '1.2' and config.spatial_form == 'concat'):
    name = 'embedding' if penn_naming else 'joint_embedding'
    t1.update({f'{name}.weight': (d, joint_features), f'{name}.bias': (d,)})
  for i in range(config.num_layers):
    t1.update(_encoder_layer(f'transformer_encoder.layers.{i}', d, ffn))
  t1.update({'reconstruction_head.weight': (joint_features, d), 'reconstruction_head.bias': (joint_features,)})
  t2 = {}
  for i in range(config.num_layers):
    t2.update(_encoder_layer(f'encoder.layers.{i}', d, ffn))
  cross = {'cross_attention.in_proj_weight': (3 * d, d), 'cross_attention.in_proj_bias': (3 * d,),
           'cross_attention.out_proj.weight': (d, d), 'cross_attention.out_proj.bias': (d,)}
  if config.cross_attention == 'simple':
    cross.update({'norm.weight': (d,), 'norm.bias': (d,)})
  else:
    cross.update({'norm1.weight': (d,), 'norm1.bias': (d,), 'ffn.0.weight': (d, d), 'ffn.0.bias': (d,),
                  'ffn.3.weight': (d, d), 'ffn.3.bias': (d,), 'norm2.weight': (d,), 'norm2.bias': (d,)})
  k = config.num_classes
  if config.head == 'linear':
    head = {'fc.weight': (k, d), 'fc.bias': (k,)}
  else:
    head = {'net.0.weight': (d,), 'net.0.bias': (d,), 'net.2.weight': (d, d), 'net.2.bias': (d,),
            'net.5.weight': (k, d), 'net.5.bias': (k,)}
  return {'pretrained': t1, 'finetuned_T1': t1, 'finetuned_T2': t2, 'finetuned_cross_attn': cross,
          'finetuned_head': head}


def random_state_dicts(config: ModelConfig, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
  rng = np.random.default_rng(seed)
  return {role: {key: (0.05 * rng.standard_normal(shape)).astype(np.float32) for key, shape in keys.items()}
          for role, keys in shapes(config).items()}
