"""kNN and Mahalanobis scores: warnings for small banks and a covariance that stays well conditioned."""

import warnings

import numpy as np
import pytest

from cascadeformer_jax.evaluate import anomaly


def test_tiny_bank_warns_and_gives_a_scaled_distance():
  rng = np.random.default_rng(0)
  bank, labels = rng.normal(size=(2, 64)), np.array([0, 1])
  queries = rng.normal(size=(5, 64))
  with pytest.warns(UserWarning, match='only 2 clips'):
    scores = anomaly.Mahalanobis(bank, labels)(queries)
  # With no spread within classes the covariance is the bank's overall variance times the identity.
  scale = np.trace(np.cov(bank, rowvar=False)) / 64
  expected = np.min(((queries[:, None] - bank[None]) ** 2).sum(-1), axis=1) / scale
  np.testing.assert_allclose(scores, expected, rtol=1e-6)
  assert np.all(scores < 1e3)
  with pytest.warns(UserWarning, match='only 2 clips'):
    anomaly.knn_distance(queries, bank)


def test_large_bank_is_quiet_and_matches_the_sample_covariance():
  rng = np.random.default_rng(1)
  labels = rng.integers(0, 4, 4000)
  means = rng.normal(size=(4, 8)) * 3
  bank = means[labels] + rng.normal(size=(4000, 8)) * np.arange(1, 9)
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    model = anomaly.Mahalanobis(bank, labels)
    anomaly.knn_distance(bank[:3], bank)
  query = means[:1] + np.arange(1, 9)  # one standard deviation along every axis of class 0
  assert model(query)[0] == pytest.approx(8.0, rel=0.1)
