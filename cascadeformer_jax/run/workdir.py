"""The layout of a training work directory, named in one place.

::

    <workdir>/
      config.json  metrics.jsonl  tensorboard/  curves.png        resolved config, metrics, curves
      pretrain/checkpoints/  pretrain/final/                       stage 1: Orbax checkpoints, final model directory
      finetune/checkpoints/  finetune/best/  finetune/final/       stage 2: ... and the selected model directory
      <stage>/recipe.json                                          what the stage is trained with (recipe.py)
      run.lock                                                     the live run that holds the directory
      results.json  report.md  confusion_matrix.{png,csv}          test evaluation
      scores.npz  scores_holdout.npz                               per-clip logits of the test (and hold-out) split
      probe.json                                                   --config.mode=probe
      few_shot.json                                                --config.mode=few_shot (and a report.md section)
      eval/<name>/                                                 --config.mode=eval once results exist: the same
                                                                   report files, beside the run's own
"""

import os
import pathlib

PRETRAIN = 'pretrain'
FINETUNE = 'finetune'
STAGES = (PRETRAIN, FINETUNE)

CONFIG_FILE = 'config.json'
METRICS_FILE = 'metrics.jsonl'
RESULTS_FILE = 'results.json'
PROBE_FILE = 'probe.json'
FEW_SHOT_FILE = 'few_shot.json'
REPORT_FILE = 'report.md'


def scores_file_name(split: str) -> str:
  """'scores.npz' for the test split, 'scores_<split>.npz' for another (e.g. the hold-out)."""
  return 'scores.npz' if split == 'test' else f'scores_{split}.npz'


class Workdir:
  """Paths of one work directory (nothing is created here)."""

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path).absolute()

  def __repr__(self) -> str:
    return f'Workdir({str(self.path)!r})'

  def stage_dir(self, stage: str) -> pathlib.Path:
    if stage not in STAGES:
      raise ValueError(f'unknown stage {stage!r}; expected one of {STAGES}')
    return self.path / stage

  def checkpoints_dir(self, stage: str) -> pathlib.Path:
    return self.stage_dir(stage) / 'checkpoints'

  def final_dir(self, stage: str) -> pathlib.Path:
    """Model directory written when the stage completes."""
    return self.stage_dir(stage) / 'final'

  def recipe_file(self, stage: str) -> pathlib.Path:
    """The stage's recipe (cascadeformer_jax/run/recipe.py), written when the stage starts training."""
    return self.stage_dir(stage) / 'recipe.json'

  def best_dir(self, stage: str) -> pathlib.Path:
    """Model directory of the best validation epoch (only with select_best != 'last')."""
    return self.stage_dir(stage) / 'best'

  @property
  def config_file(self) -> pathlib.Path:
    return self.path / CONFIG_FILE

  @property
  def metrics_file(self) -> pathlib.Path:
    return self.path / METRICS_FILE

  @property
  def results_file(self) -> pathlib.Path:
    return self.path / RESULTS_FILE

  @property
  def probe_file(self) -> pathlib.Path:
    return self.path / PROBE_FILE

  @property
  def few_shot_file(self) -> pathlib.Path:
    return self.path / FEW_SHOT_FILE

  @property
  def report_file(self) -> pathlib.Path:
    return self.path / REPORT_FILE

  def evaluation_dir(self, name: str) -> pathlib.Path:
    """Where an evaluation that is not the run's own writes its report files."""
    return self.path / 'eval' / name

  def scores_file(self, split: str = 'test') -> pathlib.Path:
    """Per-clip scores of a split (evaluate/ensemble.py reads them)."""
    return self.path / scores_file_name(split)

  def model_dirs(self) -> list[pathlib.Path]:
    """Where a work directory keeps its models, in the order a user pointing at it means them:
    the selected classifier, the final classifier, the pretrained T1."""
    return [self.best_dir(FINETUNE), self.final_dir(FINETUNE), self.final_dir(PRETRAIN)]

  def classifier_dirs(self, selection: str = 'last') -> list[pathlib.Path]:
    """The classifier a finished run reports: best when model selection was on, else final."""
    dirs = [self.final_dir(FINETUNE)]
    return dirs if selection == 'last' else [self.best_dir(FINETUNE)] + dirs
