"""Linear baselines on synthetic_actions: how much do static poses vs. motion reveal the class?

  python -m data_builders.synthetic_actions.baseline [--seed=0] [--num_subjects=40] [--clips_per_class=5]

generates the clips of the given configuration in memory (the same clips the builder writes) and trains two
multinomial logistic regressions (numpy, full-batch gradient descent, L2 strength chosen on held-out training
subjects), then prints their test accuracies:
* `mean_pose`: features = the per-clip mean of every joint coordinate (2 x 25 x 3 = 150);
* `motion`: the mean pose plus per-clip statistics of the trajectories: standard deviation over time, mean absolute
  velocity and mean absolute acceleration of every coordinate (600 features).
"""

import argparse
from collections.abc import Callable, Sequence

import numpy as np

from data_builders.synthetic_actions import generator


def mean_pose_features(skeleton: np.ndarray) -> np.ndarray:
  """(T, 2, 25, 3) -> (150,) per-clip mean joint positions."""
  return skeleton.reshape(len(skeleton), -1).mean(axis=0)


def motion_features(skeleton: np.ndarray) -> np.ndarray:
  """(T, 2, 25, 3) -> (600,) mean, std, mean |velocity|, mean |acceleration| of every coordinate."""
  flat = skeleton.reshape(len(skeleton), -1).astype(np.float64)
  velocity = np.diff(flat, axis=0)
  acceleration = np.diff(velocity, axis=0)
  return np.concatenate([flat.mean(0), flat.std(0), np.abs(velocity).mean(0), np.abs(acceleration).mean(0)])


def train_logistic_regression(x: np.ndarray, y: np.ndarray, num_classes: int, l2: float,
                              steps: int = 1500, learning_rate: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
  """Multinomial logistic regression by full-batch gradient descent with Nesterov momentum.

  Args:
    x: (N, F) standardised features; y: (N,) int labels.

  Returns:
    (weights (F, K), bias (K,)).
  """
  weights = np.zeros((x.shape[1], num_classes))
  bias = np.zeros(num_classes)
  velocity_w, velocity_b = np.zeros_like(weights), np.zeros_like(bias)
  one_hot = np.eye(num_classes)[y]
  for _ in range(steps):
    look_w, look_b = weights + 0.9 * velocity_w, bias + 0.9 * velocity_b
    logits = x @ look_w + look_b
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    error = (probs - one_hot) / len(x)
    grad_w = x.T @ error + l2 * look_w
    grad_b = error.sum(axis=0)
    velocity_w = 0.9 * velocity_w - learning_rate * grad_w
    velocity_b = 0.9 * velocity_b - learning_rate * grad_b
    weights, bias = weights + velocity_w, bias + velocity_b
  return weights, bias


def _accuracy(x, y, weights, bias) -> float:
  return float(np.mean((x @ weights + bias).argmax(axis=1) == y))


def evaluate(features: Callable[[np.ndarray], np.ndarray], train: Sequence[tuple[np.ndarray, int, int]],
             test: Sequence[tuple[np.ndarray, int, int]], l2_grid: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1),
             num_classes: int = len(generator.CLASS_NAMES)) -> tuple[float, float]:
  """Test accuracy of a logistic regression on `features`, and the chosen L2 strength.

  Args:
    train, test: (skeleton (T, 2, 25, 3), label, subject) triples. The L2 strength is chosen on the training
      subjects whose id is divisible by 3, with the model fitted on the others; the final model uses all of them.
  """
  x_train = np.stack([features(skeleton) for skeleton, _, _ in train])
  y_train = np.array([label for _, label, _ in train])
  subjects = np.array([subject for _, _, subject in train])
  x_test = np.stack([features(skeleton) for skeleton, _, _ in test])
  y_test = np.array([label for _, label, _ in test])
  mean, std = x_train.mean(0), x_train.std(0) + 1e-6
  x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
  held_out = subjects % 3 == 0
  scores = []
  for l2 in l2_grid:
    weights, bias = train_logistic_regression(x_train[~held_out], y_train[~held_out], num_classes, l2)
    scores.append(_accuracy(x_train[held_out], y_train[held_out], weights, bias))
  best_l2 = l2_grid[int(np.argmax(scores))]
  weights, bias = train_logistic_regression(x_train, y_train, num_classes, best_l2)
  return _accuracy(x_test, y_test, weights, bias), best_l2


def generate_split(seed: int, subjects: Sequence[int], clips_per_class: int, min_frames: int = 40,
                   max_frames: int = 120) -> list[tuple[np.ndarray, int, int]]:
  clips = []
  for spec in generator.clip_specs(tuple(subjects), clips_per_class):
    skeleton, _, _ = generator.generate_clip(seed, spec, min_frames, max_frames)
    clips.append((skeleton, spec.label, spec.subject))
  return clips


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--num_subjects', type=int, default=40)
  parser.add_argument('--test_subject_every', type=int, default=4)
  parser.add_argument('--clips_per_class', type=int, default=5)
  args = parser.parse_args(argv)
  split = generator.subject_split(args.num_subjects, args.test_subject_every)
  train = generate_split(args.seed, split.train_subjects, args.clips_per_class)
  test = generate_split(args.seed, split.test_subjects, args.clips_per_class)
  print(f'synthetic_actions seed={args.seed}: {len(train)} train / {len(test)} test clips, '
        f'{len(generator.CLASS_NAMES)} classes (chance {1 / len(generator.CLASS_NAMES):.1%})')
  results = {}
  for name, features in (('mean_pose', mean_pose_features), ('motion', motion_features)):
    accuracy, l2 = evaluate(features, train, test)
    results[name] = accuracy
    print(f'  logistic regression on {name:9s} features: test accuracy {accuracy:.1%} (l2={l2:g})')
  return results


if __name__ == '__main__':
  main()
