"""Per-example counter-based random streams: determinism, independence from the batch, distributions."""

import collections
import itertools
import math

import numpy as np
import pytest

from cascadeformer_jax.data import random_streams


def _streams(indices, words=(3, 1, 0)):
  return random_streams.ExampleStreams(random_streams.example_keys(words, np.asarray(indices)))


def test_keys_depend_on_every_word_and_index():
  keys = random_streams.example_keys((0, 3, 0), np.arange(1000))
  assert len(np.unique(keys)) == 1000
  for words in ((1, 3, 0), (0, 4, 0), (0, 3, 1), (0, 3)):
    assert not np.intersect1d(keys, random_streams.example_keys(words, np.arange(1000))).size


def test_a_row_does_not_depend_on_its_batch():
  whole = _streams(np.arange(10))
  for purpose, count, start in ((1, 5, 0), (2, 64, 0), (1, 3, 5)):
    alone = np.concatenate([_streams([i]).uniform(purpose, count, start) for i in range(10)])
    np.testing.assert_array_equal(whole.uniform(purpose, count, start), alone)
    np.testing.assert_array_equal(whole[[7, 2]].uniform(purpose, count, start), alone[[7, 2]])
  # `start` reads further along the same stream.
  np.testing.assert_array_equal(whole.uniform(1, 8)[:, 5:], whole.uniform(1, 3, start=5))
  assert not np.isin(whole.uniform(1, 8), whole.uniform(2, 8)).any()


def test_uniform_moments_and_independence():
  u = _streams(np.arange(20000)).uniform(1, 6)
  assert u.min() >= 0 and u.max() < 1
  np.testing.assert_allclose(u.mean(axis=0), 0.5, atol=0.01)
  np.testing.assert_allclose(u.var(axis=0), 1 / 12, atol=0.003)
  correlation = np.corrcoef(np.concatenate([u, _streams(np.arange(20000), (4, 1, 0)).uniform(1, 2)], axis=1).T)
  assert np.abs(correlation - np.eye(8)).max() < 0.03
  # Neighbouring example indices give unrelated values.
  assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 0.03


def _chi_square_ok(counts, expected):
  """Pearson chi-square below the 99.9 % quantile (Wilson-Hilferty approximation)."""
  counts = np.asarray(counts, np.float64)
  statistic = ((counts - expected) ** 2 / expected).sum()
  dof = len(counts) - 1
  quantile = dof * (1 - 2 / (9 * dof) + 3.09 * math.sqrt(2 / (9 * dof))) ** 3
  return statistic < quantile


def test_distinct_integers_are_uniform_subsets():
  n = 40000
  draws = _streams(np.arange(n)).distinct_integers(5, 7, 3)
  assert draws.shape == (n, 3) and (np.diff(draws, axis=1) > 0).all()
  assert draws.min() == 0 and draws.max() == 6
  subsets = collections.Counter(map(tuple, draws))
  assert set(subsets) == set(itertools.combinations(range(7), 3))
  assert _chi_square_ok(list(subsets.values()), n / math.comb(7, 3))


def test_distinct_integers_whole_population_and_row_independence():
  streams = _streams(np.arange(6))
  populations = np.array([64, 65, 100, 1000, 6400, 64])
  draws = streams.distinct_integers(5, populations, 64)
  np.testing.assert_array_equal(draws[0], np.arange(64))
  assert ((draws < populations[:, None]).all() and (np.diff(draws, axis=1) > 0).all())
  for i in range(6):  # rows that needed longer stretches of their stream agree with rows drawn alone
    np.testing.assert_array_equal(streams[[i]].distinct_integers(5, populations[i], 64)[0], draws[i])
  with pytest.raises(ValueError, match='distinct values from a population of 10'):
    streams.distinct_integers(5, 10, 64)


def test_smallest_marks_uniform_subsets_of_the_given_sizes():
  u = _streams(np.arange(30000)).uniform(1, 5)
  sizes = np.arange(30000) % 5 + 1
  chosen = random_streams.smallest(u, sizes)
  np.testing.assert_array_equal(chosen.sum(axis=1), sizes)
  pairs = collections.Counter(map(tuple, np.argwhere(chosen[sizes == 2])[:, 1].reshape(-1, 2)))
  assert len(pairs) == 10 and _chi_square_ok(list(pairs.values()), (sizes == 2).sum() / 10)
