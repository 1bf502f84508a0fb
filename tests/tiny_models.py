"""Tiny random classifiers saved as model directories with their preprocessing, and clips to feed them: for tests
that need a model to run but not a trained one."""

import pathlib

import jax
import numpy as np

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.config import configuration
from cascadeformer_jax.data import preprocessing
from cascadeformer_jax.data import sources
from cascadeformer_jax.models import CascadeClassifier

SMOKE = pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'smoke.py'
NUCLA_FRAMES = 16  # the smoke N-UCLA model's frame count


def random_params(module, x: np.ndarray, seed: int = 0):
  """Random parameters of the shapes ``module.init`` gives, without compiling the initialisers (seconds on a busy
  machine): kernels scaled by 1/sqrt(fan in), LayerNorm scales near 1, the rest small."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(module.init, jax.random.key(0), x)['params']

  def draw(path, leaf):
    name = jax.tree_util.keystr(path[-1:])
    if 'scale' in name:
      return (1 + rng.normal(0, 0.1, leaf.shape)).astype(np.float32)
    scale = 1 / np.sqrt(leaf.shape[0]) if 'kernel' in name else 0.2
    return rng.normal(0, scale, leaf.shape).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def save_nucla_model(directory: pathlib.Path) -> pathlib.Path:
  """A tiny random N-UCLA classifier saved as a model directory with its preprocessing."""
  config = configuration.load_config_file(SMOKE, 'n_ucla,1.0')
  model_config = configuration.model_config(config)
  x = np.zeros((1, NUCLA_FRAMES, model_config.num_joints, model_config.coords), np.float32)
  params = random_params(CascadeClassifier(model_config), x)
  stored = preprocessing.describe(config.data, sources.class_names(config.data))
  checkpoint_io.save_model_dir(directory, model_config, {checkpoint_io.CLASSIFIER: params}, preprocessing=stored)
  return directory


def recorded_clip(frames: int, seed: int = 0) -> np.ndarray:
  """A (frames, 20, 3) N-UCLA clip of a skeleton moving smoothly (every joint a small random walk)."""
  rng = np.random.default_rng(seed)
  rest = rng.normal(0, 0.3, (1, 20, 3))
  steps = np.cumsum(rng.normal(0, 0.05, (frames, 20, 3)), axis=0)
  return (rest + steps + [0, 0, 2.5]).astype(np.float32)
