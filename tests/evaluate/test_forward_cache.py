"""Evaluators and protocols of one model on the same input shapes share one compiled forward (evaluate/forward.py),
and sharing it changes no output."""

import pathlib

import jax
import numpy as np

from cascadeformer_jax.config import configuration
from cascadeformer_jax.evaluate import evaluators
from cascadeformer_jax.evaluate import forward
from cascadeformer_jax.evaluate import protocols
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.run import partitioning

SMOKE = pathlib.Path(__file__).resolve().parents[2] / 'configs' / 'smoke.py'


def test_protocols_and_windows_of_one_model_compile_once(fixture_data_dir, fast_compile):
  config = configuration.load_config_file(SMOKE, 'ntu60_xsub,1.0')
  config.data.data_dir = str(fixture_data_dir)
  model_config = configuration.model_config(config)
  mesh = partitioning.make_mesh()
  x = np.zeros((1, config.data.num_frames, model_config.num_joints, model_config.coords), np.float32)
  params = partitioning.replicate(CascadeClassifier(model_config).init(jax.random.key(0), x)['params'], mesh)
  forward.FORWARDS.clear()

  standard = protocols.make('standard', config, model_config, 'test', mesh).predict(params)
  protocols.make('multi_clip', config, model_config, 'test', mesh).run(params)  # three more evaluators
  again = evaluators.ClassifierEvaluator(model_config, config.data, 'test', config.eval.batch_size, mesh)
  assert forward.FORWARDS.traces(forward.CLASSIFIER, model_config, mesh) == 1
  np.testing.assert_array_equal(again.predict(params)['logits'], standard['logits'])
  assert forward.FORWARDS.traces(forward.CLASSIFIER, model_config, mesh) == 1 and len(forward.FORWARDS) == 1

  # Another model config (the padding-aware protocol) is another function, compiled once too.
  protocols.make('padding_aware', config, model_config, 'test', mesh).run(params)
  aware = model_config.replace(pooling='masked_mean', attention_padding_mask=True)
  assert forward.FORWARDS.traces(forward.CLASSIFIER, aware, mesh) == 1 and len(forward.FORWARDS) == 2

  # The shared executable gives exactly what a forward compiled for this evaluator alone gives.
  batch = {'skeleton': np.asarray(jax.random.normal(jax.random.key(1), (config.eval.batch_size,) + x.shape[1:]))}
  alone = forward.ForwardCache().get(forward.CLASSIFIER, model_config, mesh)(params, batch)
  shared = forward.ClassifierForward(model_config, mesh).batch(params, batch)
  for name in forward.BATCH_OUTPUTS:
    np.testing.assert_array_equal(np.asarray(shared[name]), np.asarray(alone[name]))


def test_compilation_settings_outside_jit_keys_are_part_of_the_cache_key(fast_compile):
  model_config = configuration.model_config(configuration.load_config_file(SMOKE, 'synthetic_actions,1.0'))
  cache = forward.ForwardCache(capacity=2)
  fast = cache.get(forward.CLASSIFIER, model_config)
  assert cache.get(forward.CLASSIFIER, model_config) is fast
  jax.config.update('jax_disable_most_optimizations', False)
  assert cache.get(forward.CLASSIFIER, model_config) is not fast and len(cache) == 2
  # Beyond its capacity the cache forgets the least recently used function.
  cache.get(forward.T1_POOLED, model_config)
  jax.config.update('jax_disable_most_optimizations', True)
  assert len(cache) == 2 and cache.get(forward.CLASSIFIER, model_config) is not fast
