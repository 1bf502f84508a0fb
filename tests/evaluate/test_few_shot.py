"""Few-shot maths against hand-computed prototypes and cosines on fixed 2-D embeddings."""

import math

import numpy as np
import pytest

from cascadeformer_jax.evaluate import few_shot

# Training clips: class 0 at (2, 0) and (0, 3), class 1 at (-1, 0) and (0, -2) (normalised: the four unit axes).
TRAIN = np.array([[2, 0], [0, 3], [-1, 0], [0, -2]], np.float32)
TRAIN_LABELS = np.array([0, 0, 1, 1])
# Queries: (1, 1) and (0.6, -0.5) are class 0, (-1, -0.2) is class 1.
QUERIES = np.array([[1, 1], [-1, -0.2], [0.6, -0.5]], np.float32)
QUERY_LABELS = np.array([0, 1, 0])
# 1-shot accuracy of each (class-0 support, class-1 support) pair, by hand (cosine = dot of unit vectors):
#   supports (0, 2) = (1, 0), (-1, 0): q0 0.71 vs -0.71 -> 0; q1 -0.98 vs 0.98 -> 1; q2 0.77 vs -0.77 -> 0: 3/3
#   supports (0, 3) = (1, 0), (0, -1): q0 0.71 vs -0.71; q1 -0.98 vs 0.20 -> 1; q2 0.77 vs 0.64 -> 0: 3/3
#   supports (1, 2) = (0, 1), (-1, 0): q0 0.71 vs -0.71; q1 -0.20 vs 0.98; q2 -0.64 vs -0.77 -> 0: 3/3
#   supports (1, 3) = (0, 1), (0, -1): q0 0.71 vs -0.71; q1 -0.20 vs 0.20; q2 -0.64 vs 0.64 -> 1 (wrong): 2/3
ONE_SHOT_ACCURACY = {(0, 2): 1.0, (0, 3): 1.0, (1, 2): 1.0, (1, 3): 2 / 3}


def test_prototypes_and_cosines_by_hand():
  support = np.array([[0, 1], [2, 3]])
  # Means of the unit vectors: (0.5, 0.5) and (-0.5, -0.5); normalised: ±(1/√2, 1/√2).
  np.testing.assert_allclose(few_shot.prototypes(TRAIN, support, normalise=False), [[0.5, 0.5], [-0.5, -0.5]])
  r = 1 / math.sqrt(2)
  np.testing.assert_allclose(few_shot.prototypes(TRAIN, support), [[r, r], [-r, -r]], rtol=1e-6)
  predicted, cosines = few_shot.nearest_prototype(QUERIES, few_shot.prototypes(TRAIN, support))
  # q0 = (1, 1)/√2: cos 1 and -1; q1 = (-1, -0.2)/|q1|: ∓1.2/(√2·|q1|); q2 = (0.6, -0.5): ±0.1/(√2·|q2|).
  q1, q2 = math.hypot(1, 0.2), math.hypot(0.6, 0.5)
  np.testing.assert_allclose(cosines, [[1, -1], [-1.2 * r / q1, 1.2 * r / q1], [0.1 * r / q2, -0.1 * r / q2]],
                             rtol=1e-5)
  assert predicted.tolist() == [0, 1, 0]


def test_one_shot_is_nearest_neighbour():
  for (a, b), accuracy in ONE_SHOT_ACCURACY.items():
    predicted, _ = few_shot.nearest_prototype(QUERIES, few_shot.prototypes(TRAIN, np.array([[a], [b]])))
    assert np.mean(predicted == QUERY_LABELS) == pytest.approx(accuracy)


def test_runs_mean_and_std_by_hand():
  result = few_shot.evaluate(TRAIN, TRAIN_LABELS, QUERIES, QUERY_LABELS, shots='1,2', runs=6, seed=3)
  support = few_shot.sample_support(TRAIN_LABELS, 1, 6, seed=3)
  expected = [ONE_SHOT_ACCURACY[int(run[0, 0]), int(run[1, 0])] for run in support]
  assert len(set(expected)) == 2, 'the seed should draw both kinds of pairs'
  assert result['1']['accuracies'] == pytest.approx(expected)
  assert result['1']['mean'] == pytest.approx(np.mean(expected))
  assert result['1']['std'] == pytest.approx(np.sqrt(np.mean((np.array(expected) - np.mean(expected)) ** 2)))
  # 2-shot: the support is the whole class each run: prototypes ±(1, 1)/√2 -> all three right.
  assert result['2']['accuracies'] == [1.0] * 6 and result['2']['std'] == 0.0


def test_support_sampling():
  labels = np.array([0, 1, 0, 1, 0, 2, 2, 2])
  support = few_shot.sample_support(labels, 2, runs=5, seed=0)
  assert support.shape == (5, 3, 2)
  for run in support:
    for c, indices in enumerate(run):
      assert len(set(indices.tolist())) == 2 and (labels[indices] == c).all()
  np.testing.assert_array_equal(support, few_shot.sample_support(labels, 2, runs=5, seed=0))
  assert not np.array_equal(support, few_shot.sample_support(labels, 2, runs=5, seed=1))


def test_class_with_fewer_clips_than_shots():
  labels = np.array([0, 0, 0, 1, 1])
  with pytest.raises(few_shot.FewShotError, match=r'3-shot: 1 class\(es\) have fewer training clips than 3 shots '
                                                  r'\(class 1: 2\); .* with replacement \(few_shot.replace=True\)'):
    few_shot.sample_support(labels, 3, runs=2)
  support = few_shot.sample_support(labels, 3, runs=2, replace=True)
  assert (labels[support[:, 1]] == 1).all()


@pytest.mark.parametrize('kwargs, match', [
    (dict(shots='1,x'), r'few_shot.shots=.*comma-separated positive integers'),
    (dict(shots='0'), r'positive integers'),
    (dict(runs=0), r'few_shot.runs=0'),
    (dict(procedure='knn'), r"procedure 'knn'"),
    (dict(classes=[0]), r'query class\(es\) \[1\] have no support clips'),
])
def test_bad_settings(kwargs, match):
  with pytest.raises(few_shot.FewShotError, match=match):
    few_shot.evaluate(TRAIN, TRAIN_LABELS, QUERIES, QUERY_LABELS, **kwargs)


def test_original_procedure_draws_and_unnormalised_prototype():
  # Draws: per shot count a generator seeded 42; 1-shot one scalar choice per class, k-shot choice(k, replace=False).
  rng = np.random.default_rng(42)
  pairs = [(int(rng.choice([0, 1])), int(rng.choice([2, 3]))) for _ in range(4)]
  result = few_shot.evaluate(TRAIN, TRAIN_LABELS, QUERIES, QUERY_LABELS, shots='1', runs=4,
                             procedure='original_transfer_ucla')
  assert result['1']['accuracies'] == pytest.approx([ONE_SHOT_ACCURACY[pair] for pair in pairs])
  # k-shot prototypes are means of unit vectors, not normalised again: class 0 from (1, 0) and (0, 1) -> (0.5, 0.5),
  # class 1 from (-1, 0) twice -> (-1, 0). Query (-0.3, 0.8): cosines 0.41 vs 0.35 (class 0) but dot products
  # 0.25 vs 0.30 (class 1).
  train = np.array([[1, 0], [0, 1], [-1, 0], [-2, 0]], np.float32)
  query, label = np.array([[-0.3, 0.8]], np.float32), np.array([0])
  original = few_shot.evaluate(train, TRAIN_LABELS, query, label, shots='2', runs=1, procedure='original_transfer_ucla')
  cosine = few_shot.evaluate(train, TRAIN_LABELS, query, label, shots='2', runs=1)
  assert original['2']['mean'] == 0.0 and cosine['2']['mean'] == 1.0
  # Fewer clips than shots: the original silently samples with replacement.
  assert few_shot.evaluate(train, TRAIN_LABELS, query, label, shots='3', runs=2,
                           procedure='original_transfer_ucla')['3']['runs'] == 2


PROTOCOL = {'evaluation_classes': [1, 3], 'exemplars': ['S001C001P001R001A001', 'S002C001P001R001A003']}


def test_one_shot_protocol():
  names = ['S001C001P001R001A001', 'S001C001P002R001A002', 'S002C001P001R001A003', 'S003C001P001R001A001',
           'S003C001P001R001A003', b'S003C001P002R001A003']
  labels = np.array([0, 1, 2, 0, 2, 2])
  embeddings = np.array([[1, 0], [5, 5], [0, 1], [0.9, 0.2], [0.7, 0.6], [0.2, 0.9]], np.float32)
  support, support_labels, queries = few_shot.one_shot_protocol_split(names, labels, PROTOCOL)
  assert support.tolist() == [0, 2] and support_labels.tolist() == [0, 2] and queries.tolist() == [3, 4, 5]
  result = few_shot.evaluate_one_shot_protocol(embeddings, labels, names, PROTOCOL)['1']
  # Queries (0.9, 0.2) -> exemplar (1, 0); (0.7, 0.6) -> (1, 0), wrong; (0.2, 0.9) -> (0, 1).
  assert result['mean'] == pytest.approx(2 / 3) and result['std'] == 0.0 and result['num_queries'] == 3


def test_one_shot_protocol_missing_exemplar():
  with pytest.raises(few_shot.FewShotError, match=r"exemplar\(s\) \['S002C001P001R001A003'\] \(1 of 2\) are not"):
    few_shot.one_shot_protocol_split(['S001C001P001R001A001'], np.array([0]), PROTOCOL)
  with pytest.raises(few_shot.FewShotError, match='exemplar S001C001P001R001A001 has label 1, expected 0'):
    few_shot.one_shot_protocol_split(PROTOCOL['exemplars'], np.array([1, 2]), PROTOCOL)


def test_report_section_is_replaced_not_repeated(tmp_path):
  from cascadeformer_jax.evaluate import report  # pylint: disable=g-import-not-at-top
  results = {'model': 'm', 'embedding': 'pooled', 'procedure': 'prototype', 'support_split': 'train',
             'query_split': 'test', 'runs': 10, 'seed': 0, 'num_queries': 464, 'num_classes': 10,
             'shots': {'1': {'mean': 0.45, 'std': 0.013, 'runs': 10}}}
  path = tmp_path / 'report.md'
  path.write_text('# Run\n\n## Per class\n\nrows\n')
  for _ in range(2):
    report.replace_section(path, 'Few-shot', few_shot.markdown_section(results))
  text = path.read_text()
  assert text.count('## Few-shot') == 1 and text.startswith('# Run\n\n## Per class\n\nrows\n\n## Few-shot')
  assert '| 1 | 45.00 ± 1.30 % | 10 |' in text and 'cosine nearest prototype, support clips' in text
