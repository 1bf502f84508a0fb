"""Cosine nearest neighbours of embeddings: shared by kNN classification (representation.py) and the kNN anomaly
distance (anomaly.py)."""

import numpy as np


def l2_normalise(x: np.ndarray) -> np.ndarray:
  """Rows scaled to unit length (zero rows stay zero)."""
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_neighbours(queries: np.ndarray, bank: np.ndarray, k: int, chunk: int = 4096
                      ) -> tuple[np.ndarray, np.ndarray]:
  """The k most cosine-similar bank rows of every query, most similar first (ties: lower bank index first).

  Args:
    queries: (N, d).
    bank: (M, d), M >= k.
    k: neighbours per query.
    chunk: queries per block (bounds the (chunk, M) similarity matrix).

  Returns:
    (indices (N, k) int, similarities (N, k) float64).
  """
  if len(bank) < k:
    raise ValueError(f'{k} nearest neighbours need a bank of at least {k} embeddings, got {len(bank)}')
  normalised_bank = l2_normalise(np.asarray(bank, np.float64))
  indices, similarities = [], []
  for start in range(0, len(queries), chunk):
    similarity = l2_normalise(np.asarray(queries[start:start + chunk], np.float64)) @ normalised_bank.T
    nearest = np.argsort(-similarity, axis=1, kind='stable')[:, :k]
    indices.append(nearest)
    similarities.append(np.take_along_axis(similarity, nearest, axis=1))
  if not indices:
    return np.zeros((0, k), np.int64), np.zeros((0, k))
  return np.concatenate(indices), np.concatenate(similarities)
