"""StableHLO through ``jax.export``: the serving function lowered with symbolic dimensions, serialized.

The file is ``jax.export.Exported.serialize()``: the StableHLO module (parameters included as constants), its
input and output types and calling convention. Any process with JAX (and ``flatbuffers``, which JAX's serializer
imports) runs it without this package::

    exported = jax.export.deserialize(pathlib.Path('model.stablehlo').read_bytes())
    logits = exported.call(skeleton)            # padding-aware models: exported.call(skeleton, lengths)

It is lowered for the platform JAX runs on when exporting (``jax.default_backend()``; export.json says which).
"""

import importlib.metadata
from typing import Any, Callable, Mapping

import jax
import numpy as np

from cascadeformer_jax.deploy import serving

# JAX's serializer imports it; it is not one of JAX's own requirements.
MODULES = ('flatbuffers',)


def convert(function: Callable[..., Any], signature: serving.Signature) -> bytes:
  exported = jax.export.export(jax.jit(function))(*signature.abstract_inputs())
  return bytes(exported.serialize())


def load(serialized: bytes) -> jax.export.Exported:
  return jax.export.deserialize(bytearray(serialized))


def run(exported: jax.export.Exported, inputs: Mapping[str, np.ndarray], signature: serving.Signature) -> np.ndarray:
  return np.asarray(exported.call(*(inputs[name] for name in signature.input_names)))


def versions() -> dict[str, str]:
  return {name: importlib.metadata.version(name) for name in ('jax', 'jaxlib') + MODULES}
