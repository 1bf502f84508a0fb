"""CascadeFormer in JAX/Flax: models, checkpoint conversion, data, training and evaluation."""

import importlib

# Imported on first use, so that a module of the package (e.g. the input pipeline in a worker process) does not
# pay for JAX and the models.
_PUBLIC = {
    'Classifier': 'cascadeformer_jax.api',
    'load_classifier': 'cascadeformer_jax.api',
    'load_pretrained': 'cascadeformer_jax.api',
    'Pretrained': 'cascadeformer_jax.api',
    'ModelConfig': 'cascadeformer_jax.models',
    'published_model_config': 'cascadeformer_jax.models.presets',
    'StreamingClassifier': 'cascadeformer_jax.evaluate.streaming',
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
  if name not in _PUBLIC:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(_PUBLIC[name]), name)
  globals()[name] = value
  return value


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(_PUBLIC))

__version__ = '0.1.0'
