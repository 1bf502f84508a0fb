"""Evaluation and prediction through the command line, on a converted golden case and a dataset made from it.

The golden NTU case's input clips are stored as an NTU RGB+D 60 npz (the CTR-GCN format) and built with the
ntu_rgbd60 builder. With the test crop set to the whole clip, the evaluation preprocessing of these 64-frame
clips is the identity, so the command-line results must agree with the golden logits of the original code.
"""

import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from tests import cli_runs
from tests import golden_cases
from tests.data_builders import fixtures
from tests.data_builders import helpers

pytestmark = pytest.mark.cost(50)  # seconds on 2 cores, roughly: the suite starts long files first

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def golden_dataset(golden_dir, tmp_path_factory):
  case = golden_cases.load_case(golden_dir, 'ntu60_1_0')
  root = tmp_path_factory.mktemp('golden_eval')
  order = fixtures.NTU_NPZ_ORDER['xsub']
  clips = {}
  for split in ('train', 'test'):
    for i, name in enumerate(order[split]):
      skeleton = np.zeros((64, 2, 25, 3), np.float32)
      skeleton[:, 0] = case.arrays['x'][i % len(case.arrays['x'])]
      clips[name] = (skeleton, 1)
  fixtures.write_ntu_npz(root / 'manual', 'xsub', clips)
  fixtures.write_ntu_available_names(root / 'manual')
  helpers.build('ntu_rgbd60', root / 'tfds', root / 'manual', config='xsub', source='npz')
  config_file = root / 'golden_config.py'
  config_file.write_text(
      'import json, pathlib\n'
      'from cascadeformer_jax.config import configuration\n'
      'from tests.golden_cases import model_config_from_meta\n'
      'def get_config():\n'
      f'  meta = json.loads(pathlib.Path({str(case.path / "meta.json")!r}).read_text())\n'
      "  config = configuration.experiment_config('ntu60_xsub', model_config_from_meta(meta))\n"
      f"  config.data.data_dir = {str(root / 'tfds')!r}\n"
      '  config.data.ntu.test_crop_fraction = 1.0\n'
      '  config.eval.batch_size = 2\n'
      '  return config\n')
  test_labels = np.array([int(name[-3:]) - 1 for name in order['test']])
  return case, config_file, test_labels, root


def _run(module, *args):
  result = subprocess.run([sys.executable, '-m', module, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)
  return result


def test_eval_of_published_folder_matches_golden_logits(golden_dataset, tmp_path):
  case, config_file, labels, _ = golden_dataset
  result = _run('cascadeformer_jax.main', f'--config={config_file}', '--config.mode=eval',
                f'--config.init_from=hf:{case.path}', f'--config.workdir={tmp_path / "eval"}')
  assert result.returncode == 0, result.stderr[-3000:]
  results = json.loads((tmp_path / 'eval' / 'results.json').read_text())
  golden_predictions = case.arrays['logits'].argmax(-1)
  assert results['count'] == 3
  assert results['accuracy'] == pytest.approx(float(np.mean(golden_predictions == labels)))
  matrix = np.asarray(results['confusion_matrix'])
  for label, prediction in zip(labels, golden_predictions):
    assert matrix[label, prediction] >= 1
  assert 'person_type' in results
  assert (tmp_path / 'eval' / 'report.md').is_file() and (tmp_path / 'eval' / 'confusion_matrix.png').is_file()


BAD_INPUTS = {
    'wrong_joints': (np.zeros((10, 24, 3)), r'clip of shape \(10, 24, 3\), expected'),
    'wrong_coordinates': (np.zeros((10, 25, 2)), r'clip of shape \(10, 25, 2\), expected'),
    'empty': (np.zeros((0, 25, 3)), 'empty clip'),
    'no_clips_list': ('{"frames": []}', '"clips" must be a list of clips'),
    'not_numeric': ('[[["a", "b", "c"]]]', 'not a numeric array'),
}


@pytest.fixture(scope='module')
def predict_runs(golden_dataset, tmp_path_factory):
  """Every successful and bad-input prediction of this file, in one process that starts JAX once."""
  case, config_file, _, _ = golden_dataset
  folder = tmp_path_factory.mktemp('predict')
  common = [f'--config={config_file}', f'--init_from=hf:{case.path}']
  clip = np.zeros((64, 25, 3), np.float32)
  clip[:] = case.arrays['x'][1]
  np.save(folder / 'clip.npy', clip)
  (folder / 'clips.json').write_text(json.dumps({'clips': [clip.tolist(), clip.tolist()]}))
  command_lines = {'split': [*common, '--split=test', f'--output={folder / "split.json"}',
                             f'--features_output={folder / "bank.npz"}']}
  for name in ('clip.npy', 'clips.json'):  # after the split: they read its bank
    command_lines[name] = [*common, f'--input={folder / name}', '--top_k=3',
                           f'--output={folder / (name + ".out.json")}', f'--bank={folder / "bank.npz"}']
  for name, (content, _) in BAD_INPUTS.items():
    path = folder / (f'{name}.json' if isinstance(content, str) else f'{name}.npy')
    if isinstance(content, str):
      path.write_text(content)
    else:
      np.save(path, content)
    command_lines[name] = [*common, f'--input={path}']
  results, _ = cli_runs.run_in_one_process('cascadeformer_jax.predict', list(command_lines.values()))
  return dict(zip(command_lines, results)), folder


def test_predict_over_a_split_and_on_user_files(golden_dataset, predict_runs):
  case, _, labels, _ = golden_dataset
  results, folder = predict_runs
  assert results['split'].returncode == 0, results['split'].stderr[-3000:]
  records = json.loads((folder / 'split.json').read_text())['clips']
  np.testing.assert_allclose([r['logits'] for r in records], case.arrays['logits'], rtol=1e-4, atol=1e-4)
  with np.load(folder / 'bank.npz') as bank:
    np.testing.assert_allclose(bank['features'], case.arrays['pooled'], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(bank['labels'], labels)

  outputs = {}
  for name in ('clip.npy', 'clips.json'):
    result = results[name]
    assert result.returncode == 0, result.stderr[-3000:]
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith(name) and first_line.count(',') == 2  # Three classes with probabilities.
    outputs[name] = json.loads((folder / (name + '.out.json')).read_text())['clips']
  single = outputs['clip.npy'][0]
  assert len(single['top_k']) == 3 and len(single['logits']) == 60
  assert sum(single['probabilities'].values()) == pytest.approx(1.0, abs=1e-6)
  assert set(single['anomaly_scores']) == {'softmax_entropy', 'one_minus_confidence', 'knn_distance', 'mahalanobis'}
  assert len(outputs['clips.json']) == 2
  np.testing.assert_allclose(outputs['clips.json'][1]['logits'], single['logits'], rtol=1e-5, atol=1e-5)
  # The user clip is preprocessed like the test split (default 95 % centre crop here), so it differs slightly.
  assert single['top_k'][0]['probability'] > 0


@pytest.mark.parametrize('name', BAD_INPUTS)
def test_predict_bad_inputs(predict_runs, name):
  results, _ = predict_runs
  result, message = results[name], BAD_INPUTS[name][1]
  assert result.returncode == 1
  assert 'error:' in result.stderr
  assert re.search(message, result.stderr), result.stderr[-2000:]
  suffix = '.json' if isinstance(BAD_INPUTS[name][0], str) else '.npy'
  assert f'{name}{suffix}:' in result.stderr, result.stderr[-2000:]  # names the case's own file


def test_predict_refuses_a_knn_below_one_before_any_work(golden_dataset, tmp_path):
  case, config_file, _, _ = golden_dataset
  result = _run('cascadeformer_jax.predict', f'--config={config_file}', f'--init_from=hf:{case.path}',
                f'--input={tmp_path / "absent.npy"}', '--knn=0')
  assert result.returncode == 2 and result.stderr.strip() == 'error: --knn=0: must be at least 1', result.stderr
