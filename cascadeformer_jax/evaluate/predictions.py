"""Runs a model over a whole evaluation split on the device mesh and gathers the results on every host."""

from collections.abc import Callable, Iterable
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np

from cascadeformer_jax.run import partitioning

MODEL_INPUT_KEYS = ('skeleton', 'label', 'lengths')


def model_inputs(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  return {key: batch[key] for key in MODEL_INPUT_KEYS if key in batch}


def gather_predictions(predict: Callable[..., Any], batches: Iterable[dict[str, np.ndarray]],
                       mesh: jax.sharding.Mesh, *extra_args) -> dict[str, np.ndarray]:
  """Applies ``predict(global_batch, *extra_args, batch_index)`` to every batch.

  ``predict`` returns an array or a tuple of arrays with a leading batch axis. Returns, on every process, the
  concatenated outputs ('outputs', a list per output) and the batches' 'label' and 'index' of the valid
  (non-padding) examples, in evaluation order.
  """
  outputs, labels, indices = [], [], []
  for batch_index, batch in enumerate(batches):
    global_inputs = partitioning.global_batch(model_inputs(batch), mesh)
    result = predict(global_inputs, *extra_args, batch_index)
    result = result if isinstance(result, tuple) else (result,)
    host = multihost_utils.process_allgather(
        (result, partitioning.global_batch({'valid': batch['valid'], 'label': batch['label'],
                                            'index': batch['index']}, mesh)), tiled=True)
    result_host, meta = host
    valid = np.asarray(meta['valid'], bool)
    outputs.append(tuple(np.asarray(r)[valid] for r in result_host))
    labels.append(np.asarray(meta['label'])[valid])
    indices.append(np.asarray(meta['index'])[valid])
  if not outputs:
    raise ValueError('the evaluation split is empty')
  num_outputs = len(outputs[0])
  return {
      'outputs': [np.concatenate([o[i] for o in outputs]) for i in range(num_outputs)],
      'label': np.concatenate(labels),
      'index': np.concatenate(indices),
  }
