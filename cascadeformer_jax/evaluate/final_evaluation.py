"""The evaluation a finished run reports: the test split under the standard protocol plus the requested extra
protocols, with per-class accuracy, the confusion matrix and report files."""

import pathlib
import time
from typing import Any

import jax
import ml_collections

from cascadeformer_jax.data import sources
from cascadeformer_jax.evaluate import protocols
from cascadeformer_jax.evaluate import report
from cascadeformer_jax.models import ModelConfig


class FinalEvaluation:
  """Evaluates a classifier on ``config.data.eval_split``; ``write`` puts results.json, report.md and the confusion
  matrix (CSV and PNG) into a directory."""

  def __init__(self, config: ml_collections.ConfigDict, model_config: ModelConfig, mesh: jax.sharding.Mesh):
    self.config, self.model_config = config, model_config
    self.split = config.data.eval_split
    self.standard = protocols.make('standard', config, model_config, self.split, mesh)
    self.extra = {name: protocols.make(name, config, model_config, self.split, mesh)
                  for name in protocols.requested(config)}

  def run(self, params: Any, model_location: str) -> dict[str, Any]:
    started = time.time()
    predicted = self.standard.predict(params)
    class_names = sources.class_names(self.config.data)
    details = report.detailed_metrics(predicted['logits'], predicted['label'], class_names,
                                      ntu_breakdown=self.config.data.tfds_name == 'ntu_rgbd60')
    results = {'split': self.split, 'model': model_location, **details}
    if self.config.get('published_accuracy'):
      results['published_accuracy'] = self.config.published_accuracy / 100.0
    if self.extra:
      results['protocols'] = {name: evaluator.run(params) for name, evaluator in self.extra.items()}
    results['seconds'] = round(time.time() - started, 2)
    self.class_names = class_names
    return results

  def write(self, directory: pathlib.Path, results: dict[str, Any]) -> None:
    """Writes the report files (process 0 only)."""
    if jax.process_index() != 0:
      return
    title = f'{self.config.data.name}: CascadeFormer {self.model_config.variant} ({self.split} split)'
    report.write_report(directory, results, self.class_names, title)
