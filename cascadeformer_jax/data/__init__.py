"""Input pipelines: per-dataset transforms (`transforms`), example checks (`examples`), grain batching.

Names and submodules are imported on first use, so that importing one module of this package (e.g. the joint
table `layouts`, which the dataset builders read) does not import the pipeline, the builders or JAX.
"""

import importlib
import pkgutil

_PUBLIC = {
    'DATASETS': 'config',
    'FOLDER': 'config',
    'default_data_config': 'config',
    'joint_parents': 'config',
    'model_input_shape': 'config',
    'padded_length': 'transforms',
    'penn_batch_frames': 'config',
    'resolve_data_dir': 'config',
    'stored_layout': 'config',
    'two_person_labels': 'config',
    'validate_data_config': 'config',
    'BadExampleError': 'examples',
    'process_example': 'examples',
    'DataIterator': 'pipeline',
    'make_eval_iterator': 'pipeline',
    'make_train_iterator': 'pipeline',
    'num_examples': 'pipeline',
    'open_data_source': 'pipeline',
}
__all__ = sorted(_PUBLIC)


def _submodules() -> list[str]:
  return [module.name for module in pkgutil.iter_modules(__path__)]


def __getattr__(name: str):
  if name not in _PUBLIC:
    if name in _submodules():  # `data.pipeline` without importing it first
      return importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(f'{__name__}.{_PUBLIC[name]}'), name)
  globals()[name] = value
  return value


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(_PUBLIC) | set(_submodules()))
