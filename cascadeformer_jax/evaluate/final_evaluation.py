"""The evaluation a finished run reports: the test split under the standard protocol plus the requested extra
protocols, with per-class accuracy, the confusion matrix and report files, and the per-clip scores of the test
split (and of the hold-out split when the run has one) for ensembles (evaluate/ensemble.py)."""

import pathlib
import time
from typing import Any

import jax
import ml_collections

from cascadeformer_jax import data as data_lib
from cascadeformer_jax.run import workdir as workdir_lib
from cascadeformer_jax.data import sources
from cascadeformer_jax.evaluate import ensemble
from cascadeformer_jax.evaluate import protocols
from cascadeformer_jax.evaluate import report
from cascadeformer_jax.models import ModelConfig


class FinalEvaluation:
  """Evaluates a classifier on ``config.data.eval_split``; ``write`` puts results.json, report.md, the confusion
  matrix (CSV and PNG) and the per-clip scores (scores.npz, scores_holdout.npz) into a directory."""

  def __init__(self, config: ml_collections.ConfigDict, model_config: ModelConfig, mesh: jax.sharding.Mesh):
    self.config, self.model_config = config, model_config
    self.split = config.data.eval_split
    self.standard = protocols.make('standard', config, model_config, self.split, mesh)
    self.extra = {name: protocols.make(name, config, model_config, self.split, mesh)
                  for name in protocols.requested(config)}
    # The hold-out split (when the run has one) is scored too, so that ensemble weights can be chosen on it.
    self.holdout = (protocols.make('standard', config, model_config, 'holdout', mesh)
                    if config.data.holdout_fraction > 0 and self.split != 'holdout' else None)
    self.scores: dict[str, dict[str, Any]] = {}

  def run(self, params: Any, model_location: str) -> dict[str, Any]:
    started = time.time()
    predicted = self.standard.predict(params)
    class_names = sources.class_names(self.config.data)
    two_person = data_lib.two_person_labels(self.config.data)
    details = report.detailed_metrics(predicted['logits'], predicted['label'], class_names,
                                      ntu_breakdown=two_person is not None, two_person_labels=two_person)
    self.scores = {self.split: predicted}
    if self.holdout is not None:
      self.scores['holdout'] = self.holdout.predict(params)
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
    workdir = workdir_lib.Workdir(directory)
    for split, predicted in self.scores.items():
      ids = sources.sample_ids(self.config.data, split, predicted['index'])
      ensemble.save_scores(workdir.scores_file(split), predicted['logits'], predicted['label'], ids, split,
                           self.config.data.name, data_identity=self.config.data.get('identity', ''))
