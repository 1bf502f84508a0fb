"""ONNX through jax2onnx, and ONNX Runtime to run (and check) the result.

jax2onnx 0.13.0 is the newest release that installs beside this package: its later releases require
orbax-checkpoint<0.11.37, below the orbax-checkpoint this package needs. It converts the traced JAX program
(``jax.make_jaxpr`` of the serving function) primitive by primitive, with symbolic dimensions kept as named ONNX
dimensions, so the graph computes what the JAX forward computes.
"""

import contextlib
import io
import json
import logging
import os
import pathlib
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from cascadeformer_jax.deploy import serving

MODULES = ('jax2onnx', 'onnx', 'onnxruntime')
OPSET = 23
# Libraries that log conversion details (and the import failures of converters this model does not use) as
# warnings.
_NOISY_LOGGERS = ('jax2onnx', 'onnx_ir')


@contextlib.contextmanager
def _quiet_converters() -> Iterator[None]:
  loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
  levels = [logger.level for logger in loggers]
  for logger in loggers:
    logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    for logger, level in zip(loggers, levels):
      logger.setLevel(level)


def _import_converters() -> None:
  """Imports the jax and flax converters of jax2onnx only.

  Before its first conversion jax2onnx imports all of its ~500 converter and example modules (Equinox, dm-pix and
  model zoo examples among them), which compiles dozens of XLA programs: about 25 s on 2 cores, against 2-4 s for
  the two trees this model needs. Where this jax2onnx lacks the internals used here, it imports all of them itself.
  """
  from jax2onnx.plugins import plugin_system  # pylint: disable=g-import-not-at-top

  import_tree = getattr(plugin_system, '_import_tree', None)
  if import_tree is None or getattr(plugin_system, '_already_imported_plugins', True):
    return
  root = pathlib.Path(plugin_system.__file__).parent
  for tree in ('jax', 'flax'):
    import_tree(root / tree, f'jax2onnx.plugins.{tree}')
  plugin_system._already_imported_plugins = True  # pylint: disable=protected-access


def convert(function: Callable[..., Any], signature: serving.Signature,
            metadata: Mapping[str, str] | None = None) -> bytes:
  """The serialized ONNX model of ``function`` (float32, opset OPSET), with ``metadata`` as model properties."""
  import jax2onnx  # pylint: disable=g-import-not-at-top
  import onnx  # pylint: disable=g-import-not-at-top

  # jax2onnx prints debugging lines of some converters (Conv) to stdout.
  with _quiet_converters(), contextlib.redirect_stdout(io.StringIO()):
    _import_converters()
    model = jax2onnx.to_onnx(function, inputs=list(signature.abstract_inputs()), model_name='cascadeformer',
                             opset=OPSET, input_names=list(signature.input_names), output_names=[serving.LOGITS])
  onnx.helper.set_model_props(model, dict(metadata or {}))
  onnx.checker.check_model(model)
  return model.SerializeToString()


def session(model: bytes | str | os.PathLike, threads: int = 0) -> Any:
  """An ONNX Runtime CPU session. Its worker threads sleep between runs instead of spinning (the default), which
  would take the cores from whatever runs next in the process."""
  import onnxruntime  # pylint: disable=g-import-not-at-top

  options = onnxruntime.SessionOptions()
  options.intra_op_num_threads = threads
  options.add_session_config_entry('session.intra_op.allow_spinning', '0')
  options.log_severity_level = 3  # errors only
  if not isinstance(model, bytes):
    model = os.fspath(model)
  return onnxruntime.InferenceSession(model, options, providers=['CPUExecutionProvider'])


def run(model_session: Any, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
  return np.asarray(model_session.run([serving.LOGITS], dict(inputs))[0])


def versions() -> dict[str, str]:
  import importlib.metadata  # pylint: disable=g-import-not-at-top

  return {name: importlib.metadata.version(name) for name in MODULES}


def metadata_props(preprocessing: Mapping[str, Any]) -> dict[str, str]:
  """Model properties that make the .onnx file describe itself (the same JSON as the folder's files)."""
  return {'class_names': json.dumps(preprocessing.get('class_names')), 'preprocessing': json.dumps(preprocessing)}
