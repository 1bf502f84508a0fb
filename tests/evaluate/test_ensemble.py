"""Ensemble fusion by hand on fixed scores, the refusals, and the CLI end to end on generated score files."""

import json
import subprocess
import sys

import numpy as np
import pytest

from cascadeformer_jax import ensemble as ensemble_cli
from cascadeformer_jax.evaluate import ensemble
from tests import failure_injection
from tests.conftest import REPO_ROOT

IDS = np.array(['c0', 'c1', 'c2'])
LABELS = np.array([1, 1, 2])
# Logits = log-probabilities, so softmax gives these probabilities back.
PROBS_A = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])    # predicts 0, 1, 2: 2/3 right
PROBS_B = np.array([[0.1, 0.8, 0.1], [0.55, 0.35, 0.1], [0.3, 0.3, 0.4]])  # predicts 1, 0, 2: 2/3 right


def _stream(probs, ids=IDS, labels=LABELS, split='test', dataset='ntu60_xsub', path=''):
  return ensemble.StreamScores(logits=np.log(probs).astype(np.float32), labels=np.asarray(labels),
                               sample_ids=np.asarray(ids), split=split, dataset=dataset, path=path)


def test_fusion_by_hand():
  a, b = _stream(PROBS_A, path='A'), _stream(PROBS_B, path='B')
  # 1:1 -> [0.7, 1.1, 0.2], [0.75, 0.85, 0.4], [0.4, 0.5, 1.1]: all right.
  np.testing.assert_allclose(ensemble.fuse([a, b], [1, 1]), PROBS_A + PROBS_B, rtol=1e-6)
  results = ensemble.ensemble_results([a, b], [1, 1])
  assert results['ensemble']['top1'] == 1.0
  assert [row['top1'] for row in results['streams']] == pytest.approx([2 / 3, 2 / 3])
  # Mean class accuracy over the classes present (1 and 2): (1/2 + 1/1) / 2 for each stream.
  assert [row['mean_class_accuracy'] for row in results['streams']] == [0.75, 0.75]
  # 1:3 -> clip 1 = [1.85, 1.55, 0.6]: class 0, wrong.
  assert ensemble.ensemble_results([a, b], [1, 3])['ensemble']['top1'] == pytest.approx(2 / 3)
  assert ensemble.ensemble_results([a, b], [1, 3])['ensemble']['mean_class_accuracy'] == 0.75


def test_streams_are_matched_by_sample_id():
  order = [2, 0, 1]
  b = _stream(PROBS_B[order], ids=IDS[order], labels=LABELS[order], path='B')
  np.testing.assert_allclose(ensemble.fuse(ensemble.align([_stream(PROBS_A), b]), [1, 1]), PROBS_A + PROBS_B,
                             rtol=1e-6)


@pytest.mark.parametrize('other, match', [
    (dict(split='holdout'), r"B scored split 'holdout' but A scored 'test'"),
    (dict(dataset='ntu120_xsub'), r"B scored dataset 'ntu120_xsub' but A scored 'ntu60_xsub'"),
    (dict(ids=np.array(['c0', 'c1', 'c9'])), r'B scored other clips: it lacks 1 clip\(s\) of A \(e.g. c2\) and has 1 '
                                             r'clip\(s\) that A lacks \(e.g. c9\)'),
    (dict(labels=np.array([1, 0, 2])), r'B labels clip c1 as 0 but A as 1'),
])
def test_refuses_streams_that_do_not_belong_together(other, match):
  with pytest.raises(ensemble.EnsembleError, match=match):
    ensemble.align([_stream(PROBS_A, path='A'), _stream(PROBS_B, path='B', **other)])


def test_streams_of_other_data_under_the_same_clip_names_are_refused(tmp_path):
  paths = [ensemble.save_scores(tmp_path / name / 'scores.npz', np.log(probs), LABELS, IDS, 'test', 'mine',
                                data_identity=f'sha256:{name * 64}')
           for name, probs in (('a', PROBS_A), ('b', PROBS_B))]
  streams = [ensemble.load_scores(path) for path in paths]
  assert streams[0].data_identity == 'sha256:' + 'a' * 64
  with pytest.raises(ensemble.EnsembleError, match=r"b/scores\.npz scored other data than .*a/scores\.npz: data "
                                                   r'identity sha256:bbbbbbbbbbbb vs sha256:aaaaaaaaaaaa \(the same'):
    ensemble.align(streams)
  # A score file written before the data was recorded has none; it is compared as before.
  np.savez(tmp_path / 'old.npz', logits=np.log(PROBS_B), labels=LABELS, sample_ids=IDS, split='test', dataset='mine')
  old = ensemble.load_scores(tmp_path / 'old.npz')
  assert old.data_identity == '' and len(ensemble.align([streams[0], old])) == 2


@pytest.mark.parametrize('weights, match', [
    ([1, 1, 1], r'3 weight\(s\) for 2 stream\(s\)'),
    ([1, -1], r'non-negative'),
    ([0, 0], r'all weights are 0'),
])
def test_refuses_bad_weights(weights, match):
  with pytest.raises(ensemble.EnsembleError, match=match):
    ensemble.fuse([_stream(PROBS_A), _stream(PROBS_B)], weights)


def _holdout(correct, right=(0.6, 0.2), wrong=(0.1, 0.8)):
  """Hold-out scores of len(correct) clips (labels 0, 1, 2, 0, ...): a clip gets the probabilities (its label, the
  next class) ``right`` where ``correct``, else ``wrong``; the third class gets the rest."""
  labels = np.arange(len(correct)) % 3
  pairs = np.where(np.asarray(correct)[:, None], right, wrong)
  probs = np.empty((len(labels), 3))
  rows = np.arange(len(labels))
  probs[rows, labels], probs[rows, (labels + 1) % 3] = pairs[:, 0], pairs[:, 1]
  probs[rows, (labels + 2) % 3] = 1 - pairs.sum(axis=1)
  return _stream(probs, ids=np.array([f'h{i}' for i in rows]), labels=labels, split='holdout')


def test_search_weights_breaks_ties_towards_equal_weights():
  first_50, first_40 = np.arange(60) < 50, np.arange(60) < 40
  # A is right on 50 clips, B on 40 of them, and B's mistakes are confident: A alone and every A:B > 1.75 fuse 50
  # right. Of these, 2:1 is the nearest to equal.
  a, b = _holdout(first_50), _holdout(first_40)
  assert ensemble.search_weights([a, b]) == ([1.0, 0.5], 50 / 60, None)
  assert ensemble.search_weights([b, a]) == ([0.5, 1.0], 50 / 60, None)  # whatever the order of the streams
  # B's mistakes are hesitant: equal weights fuse 50 right as well, and win the tie.
  hesitant = _holdout(first_40, wrong=(0.3, 0.4))
  assert ensemble.search_weights([a, hesitant]) == ([1.0, 1.0], 50 / 60, None)
  with pytest.raises(ensemble.EnsembleError, match='never on the test split'):
    ensemble.search_weights([_stream(PROBS_A), _stream(PROBS_B)])


def test_search_weights_on_a_hold_out_too_small_to_tell_the_streams_apart():
  # The case: four streams right on all 12 hold-out clips; every weight vector ties.
  streams = [_holdout(np.ones(12, bool), right=(0.5 + 0.1 * k, 0.15)) for k in range(4)]
  for order in (streams, streams[::-1]):
    weights, top1, warning = ensemble.search_weights(order)
    assert weights == [1.0] * 4 and top1 == 1.0
    assert warning == ('the holdout split cannot tell the streams apart (12 clips, under 50; every stream gets 12 of 12 '
                       'right): equal weights')
  # 60 clips, but the streams are within one clip of each other (41 and 40 right).
  weights, _, warning = ensemble.search_weights([_holdout(np.arange(60) < 41), _holdout(np.arange(60) >= 20)])
  assert weights == [1.0, 1.0]
  assert warning == 'the holdout split cannot tell the streams apart (every stream gets 40-41 of 60 right): equal weights'


def test_score_files_round_trip_and_errors(tmp_path):
  path = ensemble.save_scores(tmp_path / 'w' / 'scores.npz', np.log(PROBS_A), LABELS, [b'c0', 'c1', 'c2'], 'test',
                              'ntu60_xsub')
  loaded = ensemble.load_workdir_scores(tmp_path / 'w')
  assert loaded.sample_ids.tolist() == IDS.tolist() and loaded.split == 'test' and loaded.dataset == 'ntu60_xsub'
  np.testing.assert_allclose(loaded.logits, np.log(PROBS_A), rtol=1e-6)
  assert [p.name for p in path.parent.iterdir()] == ['scores.npz']  # no temporary file left
  with pytest.raises(ensemble.EnsembleError, match=r'no scores_holdout\.npz; the work dir has no saved holdout'):
    ensemble.load_workdir_scores(tmp_path / 'w', 'holdout')
  np.savez(tmp_path / 'bad.npz', logits=np.zeros((2, 3)), labels=np.zeros(2, int))
  with pytest.raises(ensemble.EnsembleError, match=r'bad\.npz: missing sample_ids, split, dataset'):
    ensemble.load_scores(tmp_path / 'bad.npz')
  np.savez(tmp_path / 'dup.npz', logits=np.zeros((2, 3)), labels=np.zeros(2, int), sample_ids=np.array(['a', 'a']),
           split='test', dataset='x')
  with pytest.raises(ensemble.EnsembleError, match=r"sample_ids repeat \(e.g. 'a'\)"):
    ensemble.load_scores(tmp_path / 'dup.npz')


def _workdirs(tmp_path, split='test', holdout=False):
  dirs = []
  for name, probs in (('joint', PROBS_A), ('bone', PROBS_B)):
    workdir = tmp_path / name
    ensemble.save_scores(ensemble.scores_file(workdir), np.log(probs), LABELS, IDS, split, 'ntu60_xsub')
    if holdout:
      ensemble.save_scores(ensemble.scores_file(workdir, 'holdout'), np.log(probs), LABELS, IDS, 'holdout',
                           'ntu60_xsub')
    dirs.append(str(workdir))
  return dirs


def test_cli_run_writes_json_and_markdown(tmp_path):
  dirs = _workdirs(tmp_path, holdout=True)
  markdown = ensemble_cli.run(dirs, ['1', '3'], str(tmp_path / 'out' / 'fused.json'), search=False)
  results = json.loads((tmp_path / 'out' / 'fused.json').read_text())
  assert results['weights'] == [1.0, 3.0] and results['ensemble']['top1'] == pytest.approx(2 / 3)
  assert (tmp_path / 'out' / 'fused.md').read_text() == markdown and '| **ensemble** |' in markdown
  markdown = ensemble_cli.run(dirs, None, str(tmp_path / 'search.json'), search=True)
  results = json.loads((tmp_path / 'search.json').read_text())
  # A hold-out of 3 clips: equal weights, and a warning in the JSON and the printed table.
  warning = 'the holdout split cannot tell the streams apart (3 clips, under 50; every stream gets 2 of 3 right)'
  assert results['weights'] == [1.0, 1.0] and results['weight_search']['split'] == 'holdout'
  assert results['weight_search']['warning'].startswith(warning) and f'Warning: {warning}' in markdown
  assert results['split'] == 'test' and results['ensemble']['top1'] == 1.0


@pytest.mark.parametrize('case, match', [
    ('no_scores', r'empty: no scores\.npz; the work dir has no saved test scores'),
    ('weights_count', r'1 weight\(s\) for 2 stream\(s\)'),
    ('negative', r'non-negative'),
    ('not_a_number', r"--weights: 'x' is not a number"),
    ('different_split', r"scored split 'holdout' but .* scored 'test'"),
    ('search_without_holdout', r'no scores_holdout\.npz'),
])
def test_cli_run_bad_input(tmp_path, case, match):
  dirs = _workdirs(tmp_path)
  weights, search = None, False
  if case == 'no_scores':
    (tmp_path / 'empty').mkdir()
    dirs[1] = str(tmp_path / 'empty')
  elif case == 'weights_count':
    weights = ['1']
  elif case == 'negative':
    weights = ['1', '-2']
  elif case == 'not_a_number':
    weights = ['1', 'x']
  elif case == 'different_split':
    path = ensemble.scores_file(dirs[1])
    ensemble.save_scores(path, np.log(PROBS_B), LABELS, IDS, 'holdout', 'ntu60_xsub')
  else:
    search = True
  with pytest.raises(ValueError, match=match):
    ensemble_cli.run(dirs, weights, str(tmp_path / 'out.json'), search)
  assert not (tmp_path / 'out.json').exists()


def test_cli_end_to_end(tmp_path):
  dirs = _workdirs(tmp_path)
  command = [sys.executable, '-m', 'cascadeformer_jax.ensemble', f'--workdirs={",".join(dirs)}', '--weights=2,1',
             f'--output={tmp_path / "e.json"}']
  done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 0, done.stderr
  assert '| **ensemble** | | **100.00 %** |' in done.stdout
  assert json.loads((tmp_path / 'e.json').read_text())['weights'] == [2.0, 1.0]
  bad = subprocess.run(command[:-2] + ['--weights=1,1,1', f'--output={tmp_path / "f.json"}'], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=120, check=False)
  assert bad.returncode == 1
  assert bad.stderr.strip() == 'error: 3 weight(s) for 2 stream(s); give one weight per work dir'


def test_cli_onto_a_read_only_folder_gives_one_line(tmp_path):
  dirs = _workdirs(tmp_path)
  output = tmp_path / 'ro' / 'e.json'
  done = failure_injection.run_with_read_only_folder(
      [sys.executable, '-m', 'cascadeformer_jax.ensemble', f'--workdirs={",".join(dirs)}', f'--output={output}'],
      tmp_path / 'ro', cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 1
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f'error: cannot write the output folder {output.parent}'), lines
  assert any(reason in lines[0] for reason in failure_injection.READ_ONLY_REASONS)
