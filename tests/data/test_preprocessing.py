"""The stored test-time transform, applied with NumPy alone, gives the evaluation pipeline's model inputs.

An export folder tells a deployment to prepare raw clips with `prepare_clip` and the model's preprocessing.json;
here that runs in a fresh interpreter where JAX and ml_collections cannot be imported, on the raw clips of
N-UCLA, NTU RGB+D (one and two actors) and Penn Action (varying lengths, occluded joints), and must match what the
evaluation pipeline feeds the model.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from cascadeformer_jax import data
from cascadeformer_jax.data import preprocessing
from tests.data import fakes

SOURCES = {'n_ucla': lambda: fakes.nucla_source(6), 'ntu60_xsub': lambda: fakes.ntu_source(6),
           'penn_action': lambda: fakes.penn_source(6)}

NUMPY_ONLY = r"""
import json, pathlib, sys
for blocked in ('jax', 'jaxlib', 'flax', 'ml_collections', 'tensorflow_datasets', 'grain'):
  sys.modules[blocked] = None  # importing any of them fails
import numpy as np
from cascadeformer_jax.data.preprocessing import prepare_clip
folder = pathlib.Path(sys.argv[1])
outputs = {}
for name in json.loads((folder / 'datasets.json').read_text()):
  description = json.loads((folder / f'{name}.json').read_text())
  with np.load(folder / f'{name}.npz') as clips:
    for key in clips.files:
      skeleton, length = prepare_clip(clips[key], description, key)
      outputs[f'{name}/{key}/skeleton'], outputs[f'{name}/{key}/length'] = skeleton, np.int32(length)
np.savez(folder / 'prepared.npz', **outputs)
print('blocked modules loaded:', sorted(m for m in ('jax', 'ml_collections') if sys.modules.get(m)))
"""


def _raw_clip(example: dict) -> np.ndarray:
  """A user's clip: what the dataset stores, with occluded joints at 0 (the stored examples flag them)."""
  skeleton = np.asarray(example['skeleton'])
  if 'visibility' in example:
    skeleton = np.where(np.asarray(example['visibility'])[..., None], skeleton, 0)
  return skeleton


def test_prepare_clip_with_numpy_alone_gives_the_evaluation_inputs(tmp_path):
  expected = {}
  for name, make_source in SOURCES.items():
    config = data.default_data_config(name)
    source = make_source()
    description = preprocessing.describe(config, [f'class {i}' for i in range(config.num_classes)])
    (tmp_path / f'{name}.json').write_text(json.dumps(description))
    np.savez(tmp_path / f'{name}.npz', **{str(i): _raw_clip(example) for i, example in enumerate(source)})
    for batch in data.make_eval_iterator(config, 4, source=source, process_index=0, process_count=1):
      for index, skeleton, length, valid in zip(batch['index'], batch['skeleton'], batch['lengths'], batch['valid']):
        if valid:
          expected[f'{name}/{index}'] = (skeleton, int(length))
  (tmp_path / 'datasets.json').write_text(json.dumps(list(SOURCES)))
  done = subprocess.run([sys.executable, '-c', NUMPY_ONLY, str(tmp_path)], capture_output=True, text=True,
                        timeout=300, cwd=tmp_path)
  assert done.returncode == 0, done.stderr[-3000:]
  assert 'blocked modules loaded: []' in done.stdout
  with np.load(tmp_path / 'prepared.npz') as prepared:
    assert len(prepared.files) == 2 * len(expected) == 2 * 18
    for key, (skeleton, length) in expected.items():
      prepared_skeleton, prepared_length = prepared[f'{key}/skeleton'], int(prepared[f'{key}/length'])
      assert prepared_length == length, key
      # Evaluation pads a batch to its longest clip (Penn: to a length bucket); the real frames must agree.
      np.testing.assert_allclose(prepared_skeleton[:length], skeleton[:length], rtol=1e-6, atol=1e-5, err_msg=key)
      assert not prepared_skeleton[length:].any() and not skeleton[length:].any(), key
