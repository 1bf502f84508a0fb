"""Per-clip anomaly scores from a classifier's outputs (higher = more unusual).

Softmax entropy and 1 - top-1 confidence need only the logits; the kNN distance and the Mahalanobis distance
compare a clip's pooled embedding with a bank of training embeddings (features + labels).
"""

import numpy as np

from cascadeformer_jax.evaluate import neighbours


def softmax(logits: np.ndarray) -> np.ndarray:
  shifted = logits - logits.max(axis=-1, keepdims=True)
  exp = np.exp(shifted)
  return exp / exp.sum(axis=-1, keepdims=True)


def softmax_entropy(logits: np.ndarray) -> np.ndarray:
  """(N, K) -> (N,) entropy of the predicted class distribution, in nats."""
  probabilities = softmax(logits.astype(np.float64))
  return -np.sum(probabilities * np.log(np.clip(probabilities, 1e-300, None)), axis=-1)


def one_minus_confidence(logits: np.ndarray) -> np.ndarray:
  """(N, K) -> (N,) 1 - max softmax probability."""
  return 1.0 - softmax(logits.astype(np.float64)).max(axis=-1)


def knn_distance(features: np.ndarray, bank: np.ndarray, k: int = 1) -> np.ndarray:
  """(N, d), bank (M, d) -> (N,) cosine distance (1 - cosine similarity) to the k-th nearest bank embedding."""
  if len(bank) < k:
    raise ValueError(f'the feature bank has {len(bank)} embeddings, fewer than k={k}')
  _, similarities = neighbours.cosine_neighbours(features, bank, k)
  return 1.0 - similarities[:, k - 1]


class Mahalanobis:
  """Class-conditional Gaussians with a shared covariance (Lee et al., 2018) fitted on the bank."""

  def __init__(self, bank: np.ndarray, labels: np.ndarray, shrinkage: float = 1e-3):
    bank = bank.astype(np.float64)
    labels = np.asarray(labels)
    self.classes = np.unique(labels)
    self.means = np.stack([bank[labels == c].mean(axis=0) for c in self.classes])
    centred = bank - self.means[np.searchsorted(self.classes, labels)]
    covariance = centred.T @ centred / max(len(bank) - 1, 1)
    dims = covariance.shape[0]
    # Shrinkage keeps the estimate invertible when the bank has fewer clips per class than dimensions.
    ridge = max(shrinkage * np.trace(covariance) / dims, 1e-12)
    self.precision = np.linalg.pinv(covariance + ridge * np.eye(dims), hermitian=True)

  def __call__(self, features: np.ndarray) -> np.ndarray:
    """(N, d) -> (N,) squared Mahalanobis distance to the closest class mean."""
    diff = features.astype(np.float64)[:, None, :] - self.means[None]
    return np.einsum('nkd,de,nke->nk', diff, self.precision, diff).min(axis=1)


def anomaly_scores(logits: np.ndarray, features: np.ndarray | None = None, bank: np.ndarray | None = None,
                   bank_labels: np.ndarray | None = None, k: int = 1) -> dict[str, np.ndarray]:
  """The four scores of the authors' follow-up; kNN and Mahalanobis only when a bank is given."""
  scores = {'softmax_entropy': softmax_entropy(logits), 'one_minus_confidence': one_minus_confidence(logits)}
  if bank is not None and features is not None:
    scores['knn_distance'] = knn_distance(features, bank, k)
    if bank_labels is not None:
      scores['mahalanobis'] = Mahalanobis(bank, bank_labels)(features)
  return scores
