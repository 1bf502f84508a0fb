"""Self-supervised evaluation of a frozen T1: linear probe and kNN retrieval on pooled clip features.

Features are T1's outputs averaged over frames (over real frames when the model is padding-aware), computed
once per clip with the evaluation preprocessing (no augmentation).
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cascadeformer_jax.evaluate import neighbours


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
  """Scales every feature dimension to zero mean and unit variance on the training features."""
  mean = train.mean(axis=0)
  scale = np.maximum(train.std(axis=0), 1e-6)
  return [((x - mean) / scale).astype(np.float32) for x in (train, *others)]


def linear_probe(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                 test_labels: np.ndarray, num_classes: int, *, epochs: int = 100, batch_size: int = 256,
                 lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0,
                 seed: int = 0) -> dict[str, float]:
  """Trains a linear classifier on frozen, standardised features (the MAMP/GFP/AMR protocol).

  SGD with momentum and a cosine learning-rate decay over ``epochs`` epochs of shuffled mini-batches,
  cross-entropy loss. Returns train and test top-1 accuracy.
  """
  train_features, test_features = standardise(np.asarray(train_features, np.float64),
                                              np.asarray(test_features, np.float64))
  train_labels = np.asarray(train_labels, np.int32)
  num_train, dims = train_features.shape
  if num_train == 0:
    raise ValueError('the linear probe needs training features, got none')
  batch_size = min(batch_size, num_train)
  steps_per_epoch = num_train // batch_size
  total_steps = epochs * steps_per_epoch
  schedule = optax.cosine_decay_schedule(lr, max(total_steps, 1))
  optimizer = optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(schedule, momentum))
  params = {'kernel': jnp.zeros((dims, num_classes)), 'bias': jnp.zeros((num_classes,))}

  def logits_fn(params, x):
    return x @ params['kernel'] + params['bias']

  def loss_fn(params, x, y):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits_fn(params, x), y))

  x_all, y_all = jnp.asarray(train_features), jnp.asarray(train_labels)

  @jax.jit
  def train(params, key):
    def epoch(carry, epoch_key):
      order = jax.random.permutation(epoch_key, num_train)[:steps_per_epoch * batch_size]

      def step(carry, batch_indices):
        params, opt_state = carry
        grads = jax.grad(loss_fn)(params, x_all[batch_indices], y_all[batch_indices])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

      carry, _ = jax.lax.scan(step, carry, order.reshape(steps_per_epoch, batch_size))
      return carry, None

    (params, _), _ = jax.lax.scan(epoch, (params, optimizer.init(params)), jax.random.split(key, epochs))
    return params

  params = train(params, jax.random.key(seed))
  train_predictions = np.asarray(jnp.argmax(logits_fn(params, x_all), -1))
  test_predictions = np.asarray(jnp.argmax(logits_fn(params, jnp.asarray(test_features)), -1))
  return {'train_accuracy': float(np.mean(train_predictions == train_labels)),
          'accuracy': float(np.mean(test_predictions == np.asarray(test_labels)))}


def knn_predict(train_features: np.ndarray, train_labels: np.ndarray, query_features: np.ndarray,
                k: int = 1) -> np.ndarray:
  """Labels of the queries by cosine-similarity kNN (majority vote of k, ties to the most similar)."""
  train_labels = np.asarray(train_labels)
  if len(train_features) < k:
    raise ValueError(f'kNN with k={k} needs at least {k} training clips, got {len(train_features)}')
  nearest, _ = neighbours.cosine_neighbours(query_features, train_features, k)
  predictions = []
  for row in train_labels[nearest]:
    values, counts = np.unique(row, return_counts=True)
    winners = set(values[counts == counts.max()])
    predictions.append(next(label for label in row if label in winners))
  return np.asarray(predictions, train_labels.dtype)


def knn_accuracy(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                 test_labels: np.ndarray, k: int = 1) -> float:
  """Top-1 accuracy of cosine-similarity kNN retrieval (k=1: the label of the nearest training clip)."""
  predictions = knn_predict(train_features, train_labels, test_features, k)
  return float(np.mean(predictions == np.asarray(test_labels)))


def evaluate_representation(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                            num_classes: int, probe: Any) -> dict[str, Any]:
  """Linear-probe and kNN accuracy of (features, labels) pairs; ``probe`` holds the probe settings."""
  for name, (features, _) in (('train', train), ('test', test)):
    if not np.all(np.isfinite(features)):
      raise ValueError(f'the {name} features contain NaN or inf; the pretrained T1 is broken')
  linear = linear_probe(*train, *test, num_classes, epochs=int(probe.epochs), batch_size=int(probe.batch_size),
                        lr=float(probe.lr), momentum=float(probe.momentum),
                        weight_decay=float(probe.weight_decay), seed=int(probe.seed))
  return {
      'linear_probe_accuracy': linear['accuracy'],
      'linear_probe_train_accuracy': linear['train_accuracy'],
      'knn_accuracy': knn_accuracy(*train, *test, k=int(probe.knn_k)),
      'knn_k': int(probe.knn_k),
      'num_train': int(len(train[0])),
      'num_test': int(len(test[0])),
  }
