"""Evaluation protocols of a classifier, reported side by side with ``--config.eval.protocols=a,b``.

A protocol is a function of the experiment config, the model config, the split and the mesh that builds an
evaluator (evaluate/evaluators.py); adding a protocol means adding an entry to ``PROTOCOLS``.
"""

from collections.abc import Callable

import jax
import ml_collections

from cascadeformer_jax.evaluate import evaluators
from cascadeformer_jax.models import ModelConfig

Factory = Callable[[ml_collections.ConfigDict, ModelConfig, str, jax.sharding.Mesh], object]


def _standard(config, model_config, split, mesh):
  return evaluators.ClassifierEvaluator(model_config, config.data, split, config.eval.batch_size, mesh)


def _cross_attn_4_heads(config, model_config, split, mesh):
  # The original evaluated Penn Action and N-UCLA with a 4-head cross-attention (quirk Q1, docs/original_code.md).
  return _standard(config, model_config.replace(cross_attn_heads=4), split, mesh)


def _padding_aware(config, model_config, split, mesh):
  # Padded frames masked out of attention and pooling (changes the outputs of the published weights).
  return _standard(config, model_config.replace(pooling='masked_mean', attention_padding_mask=True), split, mesh)


def _per_clip(config, model_config, split, mesh):
  # One clip per device and batch: no padding, so predictions do not depend on the batch composition (Penn).
  data_config = config.data
  if data_config.layout == 'penn':  # Not even up to a length bucket.
    data_config = data_config.copy_and_resolve_references()
    data_config.penn.update(length_buckets=(), pad_multiple=1)
  return evaluators.ClassifierEvaluator(model_config, data_config, split, mesh.devices.size, mesh)


def _multi_clip(config, model_config, split, mesh):
  # Three windows per clip (start, centre, end; eval.multi_clip_fraction of the clip each), probabilities averaged.
  return evaluators.MultiClipEvaluator(model_config, config.data, split, config.eval.batch_size, mesh,
                                       config.eval.multi_clip_fraction)


PROTOCOLS: dict[str, Factory] = {
    'standard': _standard,
    'cross_attn_4_heads': _cross_attn_4_heads,
    'padding_aware': _padding_aware,
    'per_clip': _per_clip,
    'multi_clip': _multi_clip,
}


def requested(config: ml_collections.ConfigDict) -> list[str]:
  """The extra protocols of ``config.eval.protocols`` (comma-separated), checked."""
  names = [name for name in config.eval.get('protocols', '').split(',') if name]
  unknown = sorted(set(names) - set(PROTOCOLS))
  if unknown:
    raise ValueError(f'unknown evaluation protocols {unknown} in config.eval.protocols; known: {sorted(PROTOCOLS)}')
  if 'multi_clip' in names and config.data.layout != 'ntu':
    raise ValueError(f'the multi_clip protocol needs an NTU-style dataset, not {config.data.name}')
  return names


def make(name: str, config: ml_collections.ConfigDict, model_config: ModelConfig, split: str,
         mesh: jax.sharding.Mesh):
  return PROTOCOLS[name](config, model_config, split, mesh)
