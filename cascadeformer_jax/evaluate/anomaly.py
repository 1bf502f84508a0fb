"""Per-clip anomaly scores from a classifier's outputs (higher = more unusual).

Softmax entropy and 1 - top-1 confidence need only the logits; the kNN distance and the Mahalanobis distance
compare a clip's pooled embedding with a bank of training embeddings (features + labels).
"""

import warnings

import numpy as np

from cascadeformer_jax.evaluate import neighbours

# Banks of fewer clips than this give kNN and Mahalanobis scores that say little; a warning says so.
MIN_BANK_SIZE = 20


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
  _warn_if_small(len(bank), 'kNN distance')
  _, similarities = neighbours.cosine_neighbours(features, bank, k)
  return 1.0 - similarities[:, k - 1]


def _warn_if_small(size: int, score: str) -> None:
  if size < MIN_BANK_SIZE:
    warnings.warn(f'the feature bank has only {size} clips (fewer than {MIN_BANK_SIZE}): the {score} scores are '
                  'unreliable; make the bank from a training split', stacklevel=3)


class Mahalanobis:
  """Class-conditional Gaussians with a shared covariance (Lee et al., 2018) fitted on the bank.

  The shared covariance is shrunk towards a scaled identity, the more the fewer degrees of freedom the bank has
  (clips minus classes) compared with the feature width: fully (a scaled squared distance) when the bank has no
  more clips than classes, ``shrinkage`` when it has plenty.
  """

  def __init__(self, bank: np.ndarray, labels: np.ndarray, shrinkage: float = 1e-3):
    bank = bank.astype(np.float64)
    labels = np.asarray(labels)
    self.classes = np.unique(labels)
    self.means = np.stack([bank[labels == c].mean(axis=0) for c in self.classes])
    centred = bank - self.means[np.searchsorted(self.classes, labels)]
    dims = bank.shape[1]
    degrees_of_freedom = len(bank) - len(self.classes)
    covariance = centred.T @ centred / max(degrees_of_freedom, 1)
    _warn_if_small(len(bank), 'Mahalanobis')
    if degrees_of_freedom < dims:
      warnings.warn(f'the feature bank has {len(bank)} clips in {len(self.classes)} classes for {dims}-dimensional '
                    'features: its covariance is singular and is shrunk towards a scaled identity', stacklevel=2)
    weight = float(np.clip(1.0 - degrees_of_freedom / dims, shrinkage, 1.0))
    scale = np.trace(covariance) / dims
    if scale <= 0:  # No spread within classes (e.g. one clip per class): use the spread of the whole bank.
      scale = np.trace(np.atleast_2d(np.cov(bank, rowvar=False))) / dims if len(bank) > 1 else 0.0
    scale = scale if scale > 0 else 1.0
    shrunk = (1.0 - weight) * covariance + weight * scale * np.eye(dims)
    self.precision = np.linalg.pinv(shrunk, hermitian=True)

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
