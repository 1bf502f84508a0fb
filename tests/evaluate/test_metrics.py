"""Metrics, the NTU person-type breakdown, reports and anomaly scores on hand-made predictions."""

import csv
import json

import numpy as np
import pytest

from cascadeformer_jax.evaluate import anomaly
from cascadeformer_jax.evaluate import metrics
from cascadeformer_jax.evaluate import report

# Three classes; rows are true classes. Known confusion matrix:
#   [[2, 1, 0],
#    [0, 1, 0],
#    [1, 0, 1]]
LABELS = np.array([0, 0, 0, 1, 2, 2])
PREDICTIONS = np.array([0, 0, 1, 1, 0, 2])


def _logits(predictions, num_classes=3):
  logits = np.full((len(predictions), num_classes), -1.0)
  logits[np.arange(len(predictions)), predictions] = 2.0
  return logits


def test_known_confusion_matrix_and_metrics():
  logits = _logits(PREDICTIONS)
  np.testing.assert_array_equal(metrics.confusion_matrix(LABELS, PREDICTIONS, 3), [[2, 1, 0], [0, 1, 0], [1, 0, 1]])
  summary = metrics.classification_metrics(logits, LABELS)
  assert summary['accuracy'] == pytest.approx(4 / 6)
  assert summary['mean_class_accuracy'] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
  assert summary['top5'] == 1.0 and summary['count'] == 6
  probabilities = np.exp(2) / (np.exp(2) + 2 * np.exp(-1))
  expected_loss = -(4 * np.log(probabilities) + 2 * np.log((1 - probabilities) / 2)) / 6
  assert summary['loss'] == pytest.approx(expected_loss)


def test_top_k():
  logits = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
  assert metrics.top_k_accuracy(logits, np.array([1, 1]), 1) == 0.0
  assert metrics.top_k_accuracy(logits, np.array([1, 1]), 2) == 0.5
  assert metrics.top_k_accuracy(logits, np.array([1, 1]), 3) == 1.0


def test_labels_out_of_range():
  with pytest.raises(ValueError, match=r'labels must lie in \[0, 3\)'):
    metrics.classification_metrics(_logits(PREDICTIONS), np.array([0, 0, 0, 1, 2, 3]))


def test_ntu_person_type_breakdown():
  labels = np.array([0, 48, 49, 59, 10, 55])
  predictions = np.array([0, 1, 49, 59, 10, 50])
  breakdown = report.person_type_breakdown(labels, predictions)
  assert breakdown['single_person'] == {'accuracy': pytest.approx(2 / 3), 'count': 3}
  assert breakdown['two_person'] == {'accuracy': pytest.approx(2 / 3), 'count': 3}


def test_report_files(tmp_path):
  names = ['walk', 'sit', 'jump']
  results = report.detailed_metrics(_logits(PREDICTIONS), LABELS, names)
  results.update(split='test', model='m')
  paths = report.write_report(tmp_path, results, names, 'hand-made')
  assert json.loads(paths['results.json'].read_text())['per_class']['sit'] == {'accuracy': 1.0, 'count': 1}
  rows = list(csv.reader(paths['confusion_matrix.csv'].open()))
  assert rows[0] == ['true \\ predicted', 'walk', 'sit', 'jump']
  assert rows[3] == ['jump', '1', '0', '1']
  text = paths['report.md'].read_text()
  assert '| top-1 accuracy | 66.67 % |' in text and '| jump | 50.00 % | 2 |' in text
  assert paths['confusion_matrix.png'].stat().st_size > 1000


def test_softmax_scores():
  uniform = np.zeros((1, 4))
  confident = np.array([[20.0, 0.0, 0.0, 0.0]])
  assert anomaly.softmax_entropy(uniform)[0] == pytest.approx(np.log(4))
  assert anomaly.softmax_entropy(confident)[0] == pytest.approx(0.0, abs=1e-6)
  assert anomaly.one_minus_confidence(uniform)[0] == pytest.approx(0.75)
  assert anomaly.one_minus_confidence(confident)[0] == pytest.approx(0.0, abs=1e-6)


def test_bank_scores_grow_away_from_the_training_embeddings():
  rng = np.random.default_rng(0)
  bank = np.concatenate([rng.normal([5, 0, 0], 0.1, (50, 3)), rng.normal([0, 5, 0], 0.1, (50, 3))])
  labels = np.repeat([0, 1], 50)
  near = np.array([[5.0, 0.0, 0.0]])
  far = np.array([[0.0, 0.0, 5.0]])
  assert anomaly.knn_distance(near, bank)[0] < 1e-3
  assert anomaly.knn_distance(far, bank)[0] == pytest.approx(1.0, abs=0.05)  # Orthogonal: cosine distance 1.
  mahalanobis = anomaly.Mahalanobis(bank, labels)
  assert mahalanobis(near)[0] < 10 < mahalanobis(far)[0]
  scores = anomaly.anomaly_scores(_logits(np.array([0])), near, bank, labels)
  assert set(scores) == {'softmax_entropy', 'one_minus_confidence', 'knn_distance', 'mahalanobis'}
  with pytest.raises(ValueError, match='fewer than k=200'):
    anomaly.knn_distance(near, bank, k=200)
