"""Importing and running the builders loads only the bottom layer of `cascadeformer_jax` (the joint table and the
`run` room), never the input pipeline, the models or JAX: the two packages do not import each other at run time."""

import json
import os
import subprocess
import sys

from tests import test_layering
from tests.conftest import REPO_ROOT

# A fresh interpreter imports the builders, builds the tiny synthetic dataset through the command's entry point and
# reports the modules it loaded at each step.
_SCRIPT = """
import json, sys
loaded = {}
def ours():
  return sorted(m for m in sys.modules if m.split('.')[0] == 'cascadeformer_jax')
import data_builders
loaded['import'] = ours()
from data_builders import build
assert build.main(['synthetic_actions', '--config=tiny', '--data_dir=' + sys.argv[1], '--quiet']) == 0
loaded['build'] = ours()
loaded['heavy'] = sorted(m for m in ('jax', 'flax', 'optax', 'grain') if m in sys.modules)
print(json.dumps(loaded))
"""


def _bottom_layer(module: str) -> bool:
  """The package and `data` package modules themselves (their imports are lazy) or a module of a bottom part."""
  if module in ('cascadeformer_jax', 'cascadeformer_jax.data'):
    return True
  part = module.split('.', 1)[1]
  return any(part == leaf or part.startswith(leaf + '.') for leaf in test_layering.LAYERS[0])


def test_builders_load_only_the_bottom_layer(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-c', _SCRIPT, str(tmp_path)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  loaded = json.loads(result.stdout.strip().splitlines()[-1])
  assert loaded['import'] == ['cascadeformer_jax', 'cascadeformer_jax.data', 'cascadeformer_jax.data.layouts']
  assert 'cascadeformer_jax.run.cli' in loaded['build']
  assert [module for module in loaded['build'] if not _bottom_layer(module)] == []
  assert loaded['heavy'] == []


def test_data_package_names_resolve_on_first_use():
  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax import data
  from cascadeformer_jax.data import config
  from cascadeformer_jax.data import pipeline
  from cascadeformer_jax.data import transforms
  # pylint: enable=g-import-not-at-top
  assert data.make_train_iterator is pipeline.make_train_iterator
  assert data.DATASETS is config.DATASETS
  assert data.transforms is transforms
  assert set(data.__all__) <= set(dir(data))
  for name in data.__all__:
    assert getattr(data, name) is not None
