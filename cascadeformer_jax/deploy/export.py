"""Writes an export folder: the classifier as one file, what preparing its inputs needs, and a README.

    <output>/model.onnx | model.stablehlo   the classifier, parameters included (deploy/serving.py: inputs, outputs)
    <output>/preprocessing.json             the model's stored preprocessing (data/preprocessing.py), which
                                            `prepare_clip` reads to turn raw clips into inputs with NumPy alone
    <output>/classes.json                   the class names, in the order of the logits
    <output>/export.json                    format, inputs and outputs, source model, versions, the check below
    <output>/README.md                      how to prepare inputs and run the model

Before anything is written the exported file is run (ONNX Runtime, or ``jax.export.deserialize``) on random clips
and compared with the package's evaluation forward; an export whose logits differ by more than CHECK_TOLERANCE is
refused. The folder is written under a temporary name beside ``output`` and renamed when complete, so a failed or
interrupted export leaves nothing at ``output``.
"""

import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import shutil
import time
from typing import Any

import ml_collections
import numpy as np

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.checkpoints import model_sources
from cascadeformer_jax.deploy import onnx_format
from cascadeformer_jax.deploy import serving
from cascadeformer_jax.deploy import stablehlo_format
from cascadeformer_jax.evaluate import inference
from cascadeformer_jax.evaluate.forward import ClassifierForward
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.run import io_checks

FORMAT = 'cascadeformer_jax.export/1'
EXTRA = 'export'
FORMATS = ('onnx', 'stablehlo')
MODEL_FILES = {'onnx': 'model.onnx', 'stablehlo': 'model.stablehlo'}
REQUIRED_MODULES = {'onnx': onnx_format.MODULES, 'stablehlo': stablehlo_format.MODULES}
CHECK_CLIPS = 2
# Largest logit difference between the exported model and JAX, relative to the largest |logit| (at least 1).
CHECK_TOLERANCE = 1e-3


def package_version() -> str:
  try:
    return importlib.metadata.version('cascadeformer-jax')
  except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
    return 'not installed'


class MissingExtraError(ValueError):
  """A format needs the optional extra 'export', which is not installed."""


def check_installed(fmt: str) -> None:
  """Raises MissingExtraError (one line naming the extra and what is missing) unless the modules that ``fmt``
  needs can be imported."""
  missing = [name for name in REQUIRED_MODULES[fmt] if importlib.util.find_spec(name) is None]
  if missing:
    raise MissingExtraError(
        f"--format={fmt} needs the optional extra '{EXTRA}', which is not installed ({', '.join(missing)} "
        f"missing): pip install 'cascadeformer-jax[{EXTRA}]' (from a checkout: pip install -c constraints.txt "
        f"-e '.[{EXTRA}]')")


class ExportCheckError(ValueError):
  """The exported model does not compute what the JAX model computes."""


@dataclasses.dataclass(frozen=True)
class ExportResult:
  output: pathlib.Path
  model_file: str
  model_bytes: int
  convert_seconds: float
  max_abs_difference: float
  signature: serving.Signature


def check_request(fmt: str, output: str | os.PathLike) -> pathlib.Path:
  """Refuses, before any work, an unknown format, a missing optional extra and an output folder that cannot be
  written or already holds something. Returns the output folder's absolute path."""
  if fmt not in FORMATS:
    raise ValueError(f'--format={fmt}: unknown format; expected one of {", ".join(FORMATS)}')
  check_installed(fmt)
  output = pathlib.Path(output).absolute()
  if output.exists() and not output.is_dir():
    raise ValueError(f'--output={output}: is a file, not a folder')
  if output.is_dir() and any(output.iterdir()):
    raise ValueError(f'--output={output}: the folder exists and is not empty; pass a new folder')
  # The folder is written beside its final place and renamed: that place's parent must be writable.
  io_checks.check_writable(output.parent if output.exists() else output, 'export folder')
  return output


def load_model(source: str, config: ml_collections.ConfigDict | None = None,
               model_config: ModelConfig | None = None) -> inference.Predictor:
  """The classifier at ``source`` with its preprocessing (``config`` only for a model that stores none)."""
  try:
    loaded = model_sources.load(source, (checkpoint_io.CLASSIFIER,), model_config)
  except checkpoint_io.ModelDirError:
    if not _holds_pretrained(source, model_config):
      raise
    raise checkpoint_io.ModelDirError(
        f'{source}: holds a pretrained T1 only (the pretraining stage), no classifier; export a fine-tuned model '
        f'(fine-tune it first: --config.mode=finetune --config.init_from={source})') from None
  return inference.Predictor.for_model(loaded, config)


def _holds_pretrained(source: str, model_config: ModelConfig | None) -> bool:
  try:
    model_sources.load(source, (checkpoint_io.PRETRAINED,), model_config, any_pretraining_head=True)
  except (ValueError, OSError):
    return False
  return True


def _check_inputs(signature: serving.Signature, preprocessing: dict[str, Any]) -> dict[str, np.ndarray]:
  frames = signature.frames or min(int(preprocessing['input_shape'][0]), signature.max_frames)
  return signature.sample_inputs(CHECK_CLIPS, frames)


def _reference_logits(predictor: inference.Predictor, inputs: dict[str, np.ndarray]) -> np.ndarray:
  batch = {'skeleton': inputs[serving.SKELETON]}
  if serving.LENGTHS in inputs:
    batch['lengths'] = inputs[serving.LENGTHS]
  return np.asarray(ClassifierForward(predictor.model_config).batch(predictor.params, batch)['logits'])


def _exported_logits(fmt: str, model: bytes, signature: serving.Signature,
                     inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, Any]]:
  """The exported model's logits on ``inputs`` and facts about the file (platforms)."""
  if fmt == 'onnx':
    return onnx_format.run(onnx_format.session(model), inputs), {'opset': onnx_format.OPSET}
  exported = stablehlo_format.load(model)
  return stablehlo_format.run(exported, inputs, signature), {'platforms': list(exported.platforms)}


def _convert(fmt: str, predictor: inference.Predictor, signature: serving.Signature) -> bytes:
  function = serving.serving_function(predictor.model_config, predictor.params)
  if fmt == 'onnx':
    return onnx_format.convert(function, signature, onnx_format.metadata_props(predictor.preprocessing))
  return stablehlo_format.convert(function, signature)


def export(predictor: inference.Predictor, fmt: str, output: str | os.PathLike, source: str) -> ExportResult:
  """Exports ``predictor`` (from :func:`load_model`) as ``fmt`` into the new folder ``output``."""
  output = check_request(fmt, output)
  signature = serving.signature(predictor.model_config, predictor.preprocessing)
  start = time.perf_counter()
  model = _convert(fmt, predictor, signature)
  convert_seconds = time.perf_counter() - start
  inputs = _check_inputs(signature, predictor.preprocessing)
  exported, facts = _exported_logits(fmt, model, signature, inputs)
  reference = _reference_logits(predictor, inputs)
  difference = float(np.max(np.abs(exported - reference))) if exported.shape == reference.shape else float('inf')
  scale = max(1.0, float(np.max(np.abs(reference))))
  if not difference <= CHECK_TOLERANCE * scale:
    raise ExportCheckError(
        f'{source}: the {fmt} export does not reproduce the model (largest logit difference to JAX {difference:.3g} '
        f'on {CHECK_CLIPS} random clips, allowed {CHECK_TOLERANCE * scale:.3g}); nothing was written')
  check = {'clips': CHECK_CLIPS, 'frames': int(inputs[serving.SKELETON].shape[1]), 'against': 'JAX evaluation forward',
           'max_abs_difference': difference}
  metadata = {
      'format': FORMAT, 'model_format': fmt, 'model_file': MODEL_FILES[fmt], 'model_bytes': len(model),
      **signature.describe(), **facts, 'source': source, 'dataset': predictor.preprocessing['dataset'],
      'model': predictor.model_config.to_dict(), 'check': check, 'convert_seconds': round(convert_seconds, 3),
      'exported_with': {'cascadeformer-jax': package_version(),
                        **(onnx_format.versions() if fmt == 'onnx' else stablehlo_format.versions())},
      'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds')}
  files = {
      MODEL_FILES[fmt]: model,
      'preprocessing.json': _json(predictor.preprocessing),
      'classes.json': _json(list(predictor.class_names)),
      'export.json': _json(metadata),
      'README.md': readme(fmt, signature, predictor, source, check).encode(),
  }
  _write_folder(output, files)
  return ExportResult(output, MODEL_FILES[fmt], len(model), convert_seconds, difference, signature)


def _json(value: Any) -> bytes:
  return (json.dumps(value, indent=1, allow_nan=False) + '\n').encode()


def _write_folder(output: pathlib.Path, files: dict[str, bytes]) -> None:
  """Writes ``files`` into a temporary folder beside ``output``, then renames it to ``output`` (an empty folder
  there is replaced); on any failure or interruption the temporary folder is removed."""
  staging = output.parent / f'.{output.name}.partial-{os.getpid()}'
  try:
    with io_checks.checked_write('export folder', staging):
      output.parent.mkdir(parents=True, exist_ok=True)
      staging.mkdir()
      for name, content in files.items():
        (staging / name).write_bytes(content)
      if output.is_dir() and not any(output.iterdir()):
        output.rmdir()
      staging.rename(output)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise


def _shape(entry: dict[str, Any]) -> str:
  return '(' + ', '.join(str(d) for d in entry['shape']) + (',)' if len(entry['shape']) == 1 else ')')


def readme(fmt: str, signature: serving.Signature, predictor: inference.Predictor, source: str,
           check: dict[str, Any]) -> str:
  """The README of an export folder."""
  described = signature.describe()
  preprocessing = predictor.preprocessing
  layout = preprocessing['stored_layout']
  persons = int(preprocessing['persons'])
  raw = f'(T, {persons}, {len(layout["joints"])}, {preprocessing["data"]["num_coords"]})' if persons else \
      f'(T, {len(layout["joints"])}, {preprocessing["data"]["num_coords"]})'
  notes = {
      serving.SKELETON: 'clips from `prepare_clip`, zero-padded to a common frame count',
      serving.LENGTHS: "each clip's real frame count (the second value `prepare_clip` returns)",
      serving.LOGITS: 'class scores in the order of classes.json (softmax gives probabilities)',
  }
  rows = [f'| {entry["name"]} | {entry["dtype"]} | {_shape(entry)} | {notes[entry["name"]]} |'
          for entry in described['inputs'] + described['outputs']]
  frames = (f'`frames` may be any count up to {signature.max_frames}.' if signature.frames is None else
            f'Every prepared clip has {signature.frames} frames.')
  call = "{'skeleton': skeleton[None]" + (", 'lengths': np.array([length], np.int32)}" if signature.takes_lengths
                                          else '}')
  if fmt == 'onnx':
    run_lines = ['import onnxruntime', "session = onnxruntime.InferenceSession('model.onnx')",
                 f"logits = session.run(['logits'], {call})[0]"]
  else:
    arguments = 'skeleton[None]' + (', np.array([length], np.int32)' if signature.takes_lengths else '')
    run_lines = ['import jax  # and flatbuffers, which its deserializer imports',
                 "exported = jax.export.deserialize(pathlib.Path('model.stablehlo').read_bytes())",
                 f'logits = np.asarray(exported.call({arguments}))']
  code = '\n'.join(['import json, pathlib', 'import numpy as np',
                    'from cascadeformer_jax.data.preprocessing import prepare_clip', '',
                    "preprocessing = json.loads(pathlib.Path('preprocessing.json').read_text())",
                    "classes = json.loads(pathlib.Path('classes.json').read_text())",
                    'skeleton, length = prepare_clip(raw_clip, preprocessing)  # raw_clip: ' + raw] + run_lines +
                   ['print(classes[int(logits[0].argmax())])'])
  return f"""# CascadeFormer classifier ({fmt})

Exported from `{source}` ({preprocessing['dataset']}, variant {predictor.model_config.variant},
{len(predictor.class_names)} classes) by cascadeformer-jax {package_version()}. Checked when exported:
on {check['clips']} random clips of {check['frames']} frames its logits differ from the JAX model's by at most
{check['max_abs_difference']:.2g}.

| file | what |
|---|---|
| `{MODEL_FILES[fmt]}` | the classifier, parameters included |
| `preprocessing.json` | the test-time transform and its settings, as the model was trained |
| `classes.json` | class names in the order of the logits |
| `export.json` | inputs, outputs, source model, versions, the check above |

## Inputs and outputs

| name | dtype | shape | |
|---|---|---|---|
{chr(10).join(rows)}

`batch` may be any size. {frames}

## Preparing inputs with NumPy only

A raw clip is a float array {raw} in the `{layout['name']}` joint layout ({len(layout['joints'])} joints, listed
in preprocessing.json). `cascadeformer_jax.data.preprocessing.prepare_clip` applies the model's test-time
transform to it with NumPy alone: that module and those it imports need neither JAX nor ml_collections, so a
deployment prepares inputs with NumPy and this package's source.

```python
{code}
```
"""
