"""Evaluation reports: results.json, per-class accuracy, confusion matrix (CSV + PNG) and report.md."""

from collections.abc import Sequence
import csv
import json
import pathlib
from typing import Any, Protocol

import numpy as np

from cascadeformer_jax.evaluate import metrics as metrics_lib

# NTU RGB+D 60 actions 50-60 (label indices 49-59) involve two people (paper Table 2); NTU120 adds 106-120.
NTU_TWO_PERSON_LABELS = tuple(range(49, 60))


class MetricWriter(Protocol):
  """Where an evaluation records its metrics next to the training curves (the run's metrics file)."""

  def write(self, stage: str, step: int, metrics: dict[str, Any], **context) -> None:
    ...


def person_type_breakdown(labels: np.ndarray, predictions: np.ndarray,
                          two_person_labels: Sequence[int] = NTU_TWO_PERSON_LABELS) -> dict[str, dict[str, float]]:
  """Top-1 accuracy on the single-person and two-person classes (default: NTU60's, labels 49-59)."""
  two_person = np.isin(labels, two_person_labels)
  result = {}
  for name, selection in (('single_person', ~two_person), ('two_person', two_person)):
    count = int(np.sum(selection))
    result[name] = {'accuracy': float(np.mean(predictions[selection] == labels[selection])) if count else None,
                    'count': count}
  return result


def detailed_metrics(logits: np.ndarray, labels: np.ndarray, class_names: list[str],
                     ntu_breakdown: bool = False, two_person_labels: Sequence[int] | None = None) -> dict[str, Any]:
  """Summary metrics plus per-class accuracy, the confusion matrix and (NTU) the person-type breakdown."""
  labels = np.asarray(labels, np.int64)
  summary = metrics_lib.classification_metrics(logits, labels)
  predictions = np.argmax(logits, axis=-1)
  matrix = metrics_lib.confusion_matrix(labels, predictions, logits.shape[-1])
  support = matrix.sum(axis=1)
  per_class = {
      name: {'accuracy': float(matrix[k, k] / support[k]) if support[k] else None, 'count': int(support[k])}
      for k, name in enumerate(class_names)}
  result = {**summary, 'per_class': per_class, 'confusion_matrix': matrix.tolist()}
  if ntu_breakdown:
    result['person_type'] = person_type_breakdown(
        labels, predictions, NTU_TWO_PERSON_LABELS if two_person_labels is None else two_person_labels)
  return result


def write_confusion_csv(path: pathlib.Path, matrix: np.ndarray, class_names: list[str]) -> None:
  """Rows: true class; columns: predicted class; the first row and column hold the class names."""
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['true \\ predicted', *class_names])
    for name, row in zip(class_names, np.asarray(matrix)):
      writer.writerow([name, *map(int, row)])


def plot_confusion(path: pathlib.Path, matrix: np.ndarray, class_names: list[str], title: str) -> None:
  """Row-normalised confusion matrix with class names on both axes (counts written in cells when K <= 20)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  matrix = np.asarray(matrix)
  num_classes = len(class_names)
  rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
  size = min(max(6.0, 0.45 * num_classes + 3), 28.0)
  figure, axis = plt.subplots(figsize=(size, size * 0.9))
  image = axis.imshow(rates, cmap='Blues', vmin=0, vmax=1)
  figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label='fraction of the true class')
  font = 9 if num_classes <= 20 else max(4, int(200 / num_classes))
  axis.set_xticks(range(num_classes), class_names, rotation=60, ha='right', fontsize=font)
  axis.set_yticks(range(num_classes), class_names, fontsize=font)
  axis.set_xlabel('predicted class')
  axis.set_ylabel('true class')
  axis.set_title(title)
  if num_classes <= 20:
    for i in range(num_classes):
      for j in range(num_classes):
        if matrix[i, j]:
          axis.text(j, i, str(int(matrix[i, j])), ha='center', va='center', fontsize=font,
                    color='white' if rates[i, j] > 0.5 else 'black')
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  plt.close(figure)


def _percent(value: float | None) -> str:
  return '—' if value is None else f'{100 * value:.2f} %'


def write_report(directory: pathlib.Path, results: dict[str, Any], class_names: list[str],
                 title: str) -> dict[str, pathlib.Path]:
  """Writes results.json, confusion_matrix.csv/.png and report.md into ``directory``; returns their paths."""
  directory = pathlib.Path(directory)
  paths = {name: directory / name for name in ('results.json', 'confusion_matrix.csv', 'confusion_matrix.png',
                                               'report.md')}
  matrix = np.asarray(results['confusion_matrix'])
  paths['results.json'].write_text(json.dumps(results, indent=2) + '\n')
  write_confusion_csv(paths['confusion_matrix.csv'], matrix, class_names)
  plot_confusion(paths['confusion_matrix.png'], matrix, class_names, title)
  lines = [f'# {title}', '', f'Model: `{results.get("model", "")}`  ', f'Split: {results.get("split", "")} '
           f'({results["count"]} clips)', '', '| metric | value |', '|---|---|',
           f'| top-1 accuracy | {_percent(results["accuracy"])} |', f'| top-5 accuracy | {_percent(results["top5"])} |',
           f'| mean class accuracy | {_percent(results["mean_class_accuracy"])} |',
           f'| cross-entropy | {results["loss"]:.4f} |']
  if results.get('published_accuracy'):
    lines.append(f'| published top-1 (paper Table 1) | {_percent(results["published_accuracy"])} |')
  if 'person_type' in results:
    for name, values in results['person_type'].items():
      lines.append(f'| {name.replace("_", "-")} classes ({values["count"]} clips) | {_percent(values["accuracy"])} |')
  for protocol, values in results.get('protocols', {}).items():
    lines.append(f'| top-1, {protocol} protocol | {_percent(values["accuracy"])} |')
  lines += ['', '## Per-class accuracy', '', '| class | accuracy | clips |', '|---|---|---|']
  for name, values in results['per_class'].items():
    lines.append(f'| {name} | {_percent(values["accuracy"])} | {values["count"]} |')
  lines += ['', 'Confusion matrix: `confusion_matrix.png` (row-normalised), counts in `confusion_matrix.csv`.', '']
  paths['report.md'].write_text('\n'.join(lines))
  return paths


def replace_section(path: pathlib.Path, heading: str, body: str) -> None:
  """Writes `## heading` + body into a markdown file, replacing that section if present (else appending)."""
  text = path.read_text() if path.exists() else ''
  marker = f'## {heading}\n'
  start = text.find(marker)
  if start >= 0:
    end = text.find('\n## ', start + len(marker))
    text = text[:start].rstrip('\n') + ('\n\n' + text[end + 1:] if end >= 0 else '')
  text = (text.rstrip('\n') + '\n\n' if text.strip() else '') + marker + '\n' + body
  path.write_text(text)
