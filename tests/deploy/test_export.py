"""Export: ONNX and StableHLO files that compute the JAX model's logits, written whole or not at all.

Tiny random models of every variant (1.0, 1.1, 1.2 in both forms; the 1.1 one padding-aware: masked-mean pooling
and attention padding masks on Penn Action clips, whose frame count varies) are exported. ONNX Runtime, and
jax.export in a process that cannot import this package, must reproduce the package's evaluation forward.
"""

import functools
import json
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.config import configuration
from cascadeformer_jax.data import preprocessing
from cascadeformer_jax.deploy import export
from cascadeformer_jax.deploy import serving
from cascadeformer_jax.evaluate import inference
from cascadeformer_jax.evaluate.forward import ClassifierForward
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import MaskedPretrainer
from tests import tiny_models

pytestmark = [pytest.mark.usefixtures('fast_compile'), pytest.mark.cost(40)]

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = REPO_ROOT / 'configs' / 'smoke.py'
TOLERANCE = 1e-4  # float32
PADDING_AWARE = '1.1 padding-aware'
# name: smoke config argument
MODELS = {'1.0': 'n_ucla,1.0', PADDING_AWARE: 'penn_action,1.1', '1.2 project_back': 'n_ucla,1.2',
          '1.2 concat': 'ntu60_xsub,1.2'}


def _config(name: str):
  config = configuration.load_config_file(SMOKE, MODELS[name])
  if name == PADDING_AWARE:
    config.model.update(pooling='masked_mean', attention_padding_mask=True, pos_len=64)
  return config


def _random_params(module, model_config, seed: int = 0):
  return tiny_models.random_params(module, np.zeros((1, 4, model_config.num_joints, model_config.coords), np.float32),
                                   seed)


@functools.cache
def _predictor(name: str) -> inference.Predictor:
  config = _config(name)
  model_config = configuration.model_config(config)
  params = _random_params(CascadeClassifier(model_config), model_config)
  names = [f'action {i}' for i in range(model_config.num_classes)]
  return inference.Predictor(model_config, params, preprocessing.describe(config.data, names), config.data, names, 2)


def _jax_logits(predictor: inference.Predictor, inputs: dict[str, np.ndarray]) -> np.ndarray:
  return np.asarray(ClassifierForward(predictor.model_config).batch(predictor.params, dict(inputs))['logits'])


def _inputs_to_check(signature: serving.Signature, preprocessing: dict) -> list[dict[str, np.ndarray]]:
  """New clips of the shape the export was checked with (its JAX forward is compiled already); where the frame
  count is dynamic, also three clips of another length."""
  checked = export._check_inputs(signature, preprocessing)['skeleton'].shape[:2]
  batches = [signature.sample_inputs(*checked, seed=1)]
  if signature.frames is None:
    batches.append(signature.sample_inputs(3, 11, seed=2))
  return batches


def _one_clip(inputs: dict[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
  return {key: value[index:index + 1] for key, value in inputs.items()}


@pytest.mark.parametrize('name', list(MODELS))
def test_onnx_runtime_reproduces_the_jax_logits(name, tmp_path):
  ort = pytest.importorskip('onnxruntime', reason="ONNX export needs the optional extra 'export' (pip install -c "
                            "constraints.txt -e '.[export]')")
  predictor = _predictor(name)
  result = export.export(predictor, 'onnx', tmp_path / 'export', f'runs/{name}')
  assert result.max_abs_difference <= TOLERANCE
  session = ort.InferenceSession(str(tmp_path / 'export' / 'model.onnx'), providers=['CPUExecutionProvider'])
  frames, joints, coords = predictor.preprocessing['input_shape']
  shapes = {entry.name: entry.shape for entry in session.get_inputs()}
  if name == PADDING_AWARE:
    assert shapes == {'skeleton': ['batch', 'frames', joints, coords], 'lengths': ['batch']}
  else:
    assert shapes == {'skeleton': ['batch', frames, joints, coords]}
  for inputs in _inputs_to_check(result.signature, predictor.preprocessing):
    expected = _jax_logits(predictor, inputs)
    np.testing.assert_allclose(session.run(['logits'], inputs)[0], expected, rtol=0, atol=TOLERANCE)
    for index in range(len(expected)):  # and one clip at a time
      np.testing.assert_allclose(session.run(['logits'], _one_clip(inputs, index))[0], expected[index:index + 1],
                                 rtol=0, atol=TOLERANCE)
  if name == PADDING_AWARE:
    # Padded frames change nothing: a clip alone and zero-padded to more frames give the same logits.
    inputs = result.signature.sample_inputs(1, 6)
    padded = dict(inputs, skeleton=np.pad(inputs['skeleton'], ((0, 0), (0, 5), (0, 0), (0, 0))))
    np.testing.assert_allclose(session.run(['logits'], padded)[0], session.run(['logits'], inputs)[0], rtol=0,
                               atol=TOLERANCE)
    _check_folder(tmp_path / 'export', predictor)


def _check_folder(folder: pathlib.Path, predictor: inference.Predictor) -> None:
  import onnx  # pylint: disable=g-import-not-at-top

  assert sorted(p.name for p in folder.iterdir()) == ['README.md', 'classes.json', 'export.json', 'model.onnx',
                                                      'preprocessing.json']
  assert not list(folder.parent.glob('.export.partial-*'))
  assert json.loads((folder / 'classes.json').read_text()) == predictor.class_names
  assert json.loads((folder / 'preprocessing.json').read_text()) == predictor.preprocessing
  metadata = json.loads((folder / 'export.json').read_text())
  assert metadata['inputs'] == [{'name': 'skeleton', 'dtype': 'float32', 'shape': ['batch', 'frames', 13, 2]},
                                {'name': 'lengths', 'dtype': 'int32', 'shape': ['batch']}]
  assert metadata['outputs'] == [{'name': 'logits', 'dtype': 'float32', 'shape': ['batch', 15]}]
  assert metadata['source'] == f'runs/{PADDING_AWARE}' and metadata['model']['pooling'] == 'masked_mean'
  assert metadata['exported_with']['jax2onnx'] == '0.13.0'
  properties = {p.key: p.value for p in onnx.load(str(folder / 'model.onnx')).metadata_props}
  assert json.loads(properties['class_names']) == predictor.class_names
  readme = (folder / 'README.md').read_text()
  assert '| lengths | int32 | (batch,) |' in readme
  # The README's snippet, as a deployment runs it: NumPy and ONNX Runtime, JAX blocked, on a raw clip.
  raw_clip = np.random.default_rng(0).uniform(0, 480, (9, 13, 2)).astype(np.float32)
  np.save(folder.parent / 'clip.npy', raw_clip)
  snippet = re.findall(r'```python\n(.*?)```', readme, re.S)[0]
  script = ("import sys\nsys.modules['jax'] = None\nimport numpy as np\nraw_clip = np.load('../clip.npy')\n" + snippet
            + 'print(json.dumps(logits.tolist()))\n')
  done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300, cwd=folder)
  assert done.returncode == 0, done.stderr[-3000:]
  printed_class, printed_logits = done.stdout.strip().splitlines()
  expected = predictor.predict_raw([raw_clip], ['clip'])['logits']
  np.testing.assert_allclose(json.loads(printed_logits), expected, rtol=0, atol=TOLERANCE)
  assert printed_class == predictor.class_names[int(expected.argmax())]


FRESH_PROCESS = r"""
import pathlib, sys
sys.modules['cascadeformer_jax'] = None  # this package cannot be imported
import jax, numpy as np
jax.config.update('jax_disable_most_optimizations', True)  # a tiny model (tests/conftest.py: fast_compile)
folder = pathlib.Path(sys.argv[1])
exported = jax.export.deserialize(bytearray((folder / 'export' / 'model.stablehlo').read_bytes()))
outputs = {}
with np.load(folder / 'inputs.npz') as inputs:
  for key in sorted({key.split('/')[0] for key in inputs.files}):
    outputs[key] = np.asarray(exported.call(inputs[f'{key}/skeleton'], inputs[f'{key}/lengths']))
np.savez(folder / 'outputs.npz', **outputs)
print('modules of the package:', sorted(m for m in sys.modules if m.startswith('cascadeformer_jax') and sys.modules[m]))
"""


def test_stablehlo_runs_in_a_fresh_process_without_the_package(tmp_path):
  pytest.importorskip('flatbuffers', reason="StableHLO export needs the optional extra 'export'")
  predictor = _predictor(PADDING_AWARE)
  result = export.export(predictor, 'stablehlo', tmp_path / 'export', 'test')
  assert result.max_abs_difference <= TOLERANCE
  metadata = json.loads((tmp_path / 'export' / 'export.json').read_text())
  assert metadata['platforms'] == [jax.default_backend()]
  assert [entry['shape'] for entry in metadata['inputs']] == [['batch', 'frames', 13, 2], ['batch']]
  batches = _inputs_to_check(result.signature, predictor.preprocessing)  # 2 clips of 64 frames, 3 of 11
  np.savez(tmp_path / 'inputs.npz', **{f'{i}/{key}': value for i, batch in enumerate(batches)
                                        for key, value in batch.items()})
  done = subprocess.run([sys.executable, '-c', FRESH_PROCESS, str(tmp_path)], capture_output=True, text=True,
                        timeout=300, cwd=tmp_path)
  assert done.returncode == 0, done.stderr[-3000:]
  assert 'modules of the package: []' in done.stdout
  with np.load(tmp_path / 'outputs.npz') as outputs:
    assert sorted(outputs.files) == ['0', '1']
    for i, batch in enumerate(batches):
      np.testing.assert_allclose(outputs[str(i)], _jax_logits(predictor, batch), rtol=0, atol=TOLERANCE)


def test_unknown_formats_missing_extras_and_unwritable_folders_are_refused_before_any_work(tmp_path, monkeypatch):
  find_spec = export.importlib.util.find_spec
  missing = set()
  # The extra's modules count as installed unless named in `missing` (so this runs with or without the extra).
  extra_modules = {name for modules in export.REQUIRED_MODULES.values() for name in modules}
  monkeypatch.setattr(export.importlib.util, 'find_spec', lambda name, *args: None if name in missing else (
      object() if name in extra_modules else find_spec(name, *args)))
  with pytest.raises(ValueError, match='^--format=tflite: unknown format; expected one of onnx, stablehlo$'):
    export.check_request('tflite', tmp_path / 'out')
  (tmp_path / 'file').write_text('')
  with pytest.raises(export.io_checks.WriteError, match=f'cannot write the export folder {tmp_path}/file/out: '):
    export.check_request('stablehlo', tmp_path / 'file' / 'out')
  (tmp_path / 'full').mkdir()
  (tmp_path / 'full' / 'x').write_text('')
  with pytest.raises(ValueError, match='exists and is not empty'):
    export.check_request('onnx', tmp_path / 'full')
  assert export.check_request('onnx', tmp_path / 'new' / 'out') == tmp_path / 'new' / 'out'
  missing.add('jax2onnx')
  with pytest.raises(export.MissingExtraError, match=r"^--format=onnx needs the optional extra 'export', which is not "
                     r'installed \(jax2onnx missing\)'):
    export.check_request('onnx', tmp_path / 'out')
  missing.add('flatbuffers')
  with pytest.raises(export.MissingExtraError, match=r"^--format=stablehlo needs the optional extra 'export'.* "
                     r'\(flatbuffers missing\)'):
    export.check_request('stablehlo', tmp_path / 'out')
  assert not (tmp_path / 'out').exists() and not (tmp_path / 'new').exists()


def test_a_failed_check_or_write_leaves_nothing(tmp_path, monkeypatch):
  pytest.importorskip('flatbuffers', reason="StableHLO export needs the optional extra 'export'")
  predictor = _predictor('1.0')
  reference = export._reference_logits
  monkeypatch.setattr(export, '_reference_logits', lambda *args: reference(*args) + 0.5)
  with pytest.raises(export.ExportCheckError, match='does not reproduce the model .* nothing was written'):
    export.export(predictor, 'stablehlo', tmp_path / 'out', 'test')
  monkeypatch.setattr(export, '_reference_logits', reference)
  monkeypatch.setattr(export, 'readme', lambda *args: (_ for _ in ()).throw(OSError(28, 'No space left on device')))
  with pytest.raises(OSError):
    export.export(predictor, 'stablehlo', tmp_path / 'out', 'test')
  assert list(tmp_path.iterdir()) == []


def test_pretraining_only_and_old_model_directories_are_refused_in_one_line(tmp_path):
  predictor = _predictor('1.0')
  config = predictor.model_config
  pretrained = _random_params(MaskedPretrainer(config), config)
  checkpoint_io.save_model_dir(tmp_path / 'pretrained', config, {checkpoint_io.PRETRAINED: pretrained},
                               preprocessing=predictor.preprocessing)
  with pytest.raises(checkpoint_io.ModelDirError, match='holds a pretrained T1 only .* no classifier'):
    export.load_model(str(tmp_path / 'pretrained'))
  checkpoint_io.save_model_dir(tmp_path / 'old', config, {checkpoint_io.CLASSIFIER: predictor.params})
  with pytest.raises(checkpoint_io.ModelDirError, match='does not store its preprocessing .* pass --config='):
    export.load_model(str(tmp_path / 'old'))
  # With the config it was trained with, it exports (the dataset's class names).
  described = export.load_model(str(tmp_path / 'old'), _config('1.0')).preprocessing
  assert described == dict(predictor.preprocessing, class_names=described['class_names'])
  assert len(described['class_names']) == config.num_classes
