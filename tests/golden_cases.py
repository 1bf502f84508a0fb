"""The golden cases of the original PyTorch code and how to build our config for each."""

import dataclasses
import json
import pathlib

import numpy as np

from cascadeformer_jax.models import ModelConfig

CASES = ('penn_action_1_0', 'penn_action_1_1', 'penn_action_1_2', 'n_ucla_1_0', 'n_ucla_1_1', 'n_ucla_1_2',
         'ntu60_1_0', 'ntu60_1_1', 'ntu60_1_2')
ROLES = ('pretrained', 'finetuned_T1', 'finetuned_T2', 'finetuned_cross_attn', 'finetuned_head')


@dataclasses.dataclass
class GoldenCase:
  name: str
  path: pathlib.Path
  meta: dict
  arrays: dict
  config: ModelConfig

  def file(self, role: str) -> pathlib.Path:
    return self.path / self.meta['files'][role]


def model_config_from_meta(meta: dict) -> ModelConfig:
  return ModelConfig(
      variant=meta['variant'], layout=meta['layout'], num_joints=meta['num_joints'], coords=meta['coords'],
      d_model=meta['d_model'], num_heads=meta['num_heads'], num_layers=meta['num_layers'],
      num_classes=meta['num_classes'], pos_len=meta['pos_embedding_len'], ffn_dim=meta['ffn_dim'])


def load_case(golden_dir: pathlib.Path, name: str) -> GoldenCase:
  path = golden_dir / name
  meta = json.loads((path / 'meta.json').read_text())
  with np.load(path / 'golden.npz') as data:
    arrays = dict(data)
  return GoldenCase(name, path, meta, arrays, model_config_from_meta(meta))
