"""The probe evaluation of a run: linear-probe and kNN accuracy of a frozen T1 on the run's dataset, into
probe.json and the metrics file."""

import json
import time
from typing import Any

import jax
import ml_collections

from cascadeformer_jax.evaluate import evaluators
from cascadeformer_jax.evaluate import report
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.run import workdir as workdir_lib


def evaluate_probe(config: ml_collections.ConfigDict, model_config: ModelConfig, mesh: jax.sharding.Mesh,
                   t1_params: Any, writer: report.MetricWriter, workdir: workdir_lib.Workdir,
                   started: float | None = None) -> dict[str, Any]:
  """Linear-probe and kNN accuracy of the T1 parameters `t1_params` (host arrays); writes probe.json.

  Args:
    config: the experiment config (its data, probe and eval settings).
    model_config: the architecture of the T1.
    mesh: the device mesh the features are computed on.
    t1_params: the frozen T1's parameters (pretrained, or a random baseline).
    writer: the run's metrics file.
    workdir: where probe.json goes (written by process 0).
    started: when the evaluation began (default: now), so that finding the T1 counts in 'seconds'.
  """
  started = time.time() if started is None else started
  evaluator = evaluators.ProbeEvaluator(model_config, config.data, config.probe, config.eval.batch_size, mesh)
  results = evaluator.run(partitioning.replicate(t1_params, mesh))
  results = {'split': config.data.eval_split, 'label_fraction': config.data.get('label_fraction', 1.0), **results,
             'seconds': round(time.time() - started, 2)}
  writer.write('probe', 0, {k: v for k, v in results.items() if isinstance(v, float)}, split=config.data.eval_split)
  if jax.process_index() == 0:
    workdir.probe_file.write_text(json.dumps(results, indent=2) + '\n')
  return results
