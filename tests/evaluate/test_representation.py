"""Linear probe and kNN retrieval on hand-made features."""

import ml_collections
import numpy as np
import pytest

from cascadeformer_jax.evaluate import representation


def _blobs(num_per_class, num_classes=3, dims=8, spread=0.3, seed=0):
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(num_classes, dims)) * 3
  labels = np.repeat(np.arange(num_classes), num_per_class)
  return centres[labels] + spread * rng.normal(size=(len(labels), dims)), labels


def test_linear_probe_separates_blobs_and_not_noise():
  train, test = _blobs(40, seed=1), _blobs(20, seed=1)
  result = representation.linear_probe(*train, *test, num_classes=3, epochs=30, batch_size=16, lr=0.1)
  assert result['accuracy'] == 1.0 and result['train_accuracy'] == 1.0
  rng = np.random.default_rng(2)
  noise = representation.linear_probe(rng.normal(size=(300, 4)), rng.integers(0, 3, 300),
                                      rng.normal(size=(3000, 4)), rng.integers(0, 3, 3000), num_classes=3,
                                      epochs=30)
  assert noise['accuracy'] < 0.4


def test_linear_probe_is_deterministic_and_uses_the_seed():
  train, test = _blobs(30, spread=3.0, seed=3), _blobs(30, spread=3.0, seed=4)
  first = representation.linear_probe(*train, *test, num_classes=3, epochs=5, batch_size=8, seed=0)
  assert first == representation.linear_probe(*train, *test, num_classes=3, epochs=5, batch_size=8, seed=0)


def test_standardise_uses_training_statistics():
  train = np.array([[0.0, 10.0], [2.0, 30.0]])
  scaled_train, scaled_test = representation.standardise(train, np.array([[1.0, 20.0], [3.0, 40.0]]))
  np.testing.assert_allclose(scaled_train, [[-1, -1], [1, 1]])
  np.testing.assert_allclose(scaled_test, [[0, 0], [2, 2]])


def test_knn_by_hand():
  bank = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.1]])
  bank_labels = np.array([0, 1, 2, 1])
  queries = np.array([[10.0, 0.5], [0.1, 3.0], [1.0, 1.1], [-2.0, 0.0]])  # cosine: scale does not matter
  np.testing.assert_array_equal(representation.knn_predict(bank, bank_labels, queries, k=1), [0, 1, 2, 1])
  assert representation.knn_accuracy(bank, bank_labels, queries, np.array([0, 1, 1, 1]), k=1) == 0.75
  # k=3: majority of the three most similar; a three-way tie goes to the most similar.
  np.testing.assert_array_equal(representation.knn_predict(bank, bank_labels, np.array([[0.0, 1.0]]), k=3), [1])
  np.testing.assert_array_equal(representation.knn_predict(bank, bank_labels, np.array([[1.0, 0.05]]), k=3), [0])
  with pytest.raises(ValueError, match='k=5 needs at least 5'):
    representation.knn_predict(bank, bank_labels, queries, k=5)


def test_evaluate_representation_rejects_nonfinite_features():
  probe = ml_collections.ConfigDict(dict(epochs=2, batch_size=8, lr=0.1, momentum=0.9, weight_decay=0.0,
                                         knn_k=1, seed=0))
  features, labels = _blobs(5)
  results = representation.evaluate_representation((features, labels), (features, labels), 3, probe)
  assert results['knn_accuracy'] == 1.0 and results['num_train'] == 15
  broken = features.copy()
  broken[3, 1] = np.nan
  with pytest.raises(ValueError, match='train features contain NaN'):
    representation.evaluate_representation((broken, labels), (features, labels), 3, probe)
