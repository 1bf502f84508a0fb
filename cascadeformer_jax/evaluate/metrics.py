"""Classification metrics from logits and labels (NumPy)."""

import numpy as np


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Per-example cross-entropy (N,)."""
  shifted = logits - logits.max(axis=-1, keepdims=True)
  log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
  return -log_probs[np.arange(len(labels)), labels]


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
  k = min(k, logits.shape[-1])
  top = np.argsort(-logits, axis=-1, kind='stable')[:, :k]
  return float(np.mean(np.any(top == labels[:, None], axis=-1)))


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  """(K, K) counts, rows = true class, columns = predicted class."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (labels, predictions), 1)
  return matrix


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
  """accuracy (top-1), top5, loss (mean cross-entropy), mean_class_accuracy and count."""
  labels = np.asarray(labels, np.int64)
  num_classes = logits.shape[-1]
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(f'labels must lie in [0, {num_classes}); got range [{labels.min()}, {labels.max()}]')
  predictions = np.argmax(logits, axis=-1)
  matrix = confusion_matrix(labels, predictions, num_classes)
  support = matrix.sum(axis=1)
  present = support > 0
  per_class = np.divide(np.diag(matrix), support, out=np.zeros(num_classes), where=present)
  return {
      'accuracy': float(np.mean(predictions == labels)),
      'top5': top_k_accuracy(logits, labels, 5),
      'loss': float(np.mean(softmax_cross_entropy(logits.astype(np.float64), labels))),
      'mean_class_accuracy': float(np.mean(per_class[present])),
      'count': int(labels.size),
  }
