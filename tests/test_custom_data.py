"""Your own data end to end through the command line: a generated folder in two layouts (COCO-17 2D, NTU-25 3D) is
built on first use, trained well above chance, reported with its class names, evaluated and used for predictions
(also of clips in another layout)."""

import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from data_builders.skeleton_folder import example

pytestmark = pytest.mark.cost(40)  # seconds on 2 cores, roughly: the suite starts long files first

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# A tiny model and few epochs: the point is the whole path, at clearly above chance (5 classes: 20 %).
TINY = ('--config.model.d_model=32', '--config.model.num_layers=1', '--config.model.ffn_dim=32',
        '--config.data.num_frames=16', '--config.data.holdout_fraction=0', '--config.finetune.select_best=last',
        '--config.pretrain.epochs=1', '--config.finetune.epochs=10', '--config.pretrain.batch_size=8',
        '--config.finetune.batch_size=8', '--config.finetune.lr=3e-3', '--config.eval.every_epochs=0',
        '--config.checkpoint.every_epochs=100', '--config.progress=False', '--config.tensorboard=False')
MODEL = TINY[:3]


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-m', module, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def _train(folder: pathlib.Path, tmp_path: pathlib.Path, config: str) -> tuple[dict, pathlib.Path]:
  workdir = tmp_path / 'run'
  result = _run('cascadeformer_jax.main', f'--config={config}', f'--config.data.folder={folder}',
                f'--config.data.data_dir={tmp_path / "tfds"}', f'--config.workdir={workdir}', *TINY)
  assert f'building skeleton_folder/{folder.name}' in result.stdout
  results = json.loads((workdir / 'results.json').read_text())
  return results, workdir


def _check_report(workdir: pathlib.Path, results: dict) -> None:
  assert results['accuracy'] >= 0.6, results['accuracy']  # chance: 0.2
  report = (workdir / 'report.md').read_text()
  for name in example.CLASS_NAMES:
    assert f'| {name} |' in report
  with open(workdir / 'confusion_matrix.csv') as f:
    header = next(csv.reader(f))
  assert header[1:] == sorted(example.CLASS_NAMES)


def test_coco17_2d_folder_trains_and_predicts_clips_of_another_layout(tmp_path):
  folder = example.write_example(tmp_path / 'coco_clips', layout='coco17', clips_per_class=8)
  results, workdir = _train(folder, tmp_path, 'configs/custom.py')
  _check_report(workdir, results)
  assert results['count'] == 10
  # OpenPose BODY_25 clips (one per class, new seeds) mapped to the folder's COCO layout by predict.
  clips = {name: example.to_layout(example.generate_clip(np.random.default_rng([7, label]), label), 'openpose25', 2)
           for label, name in enumerate(example.CLASS_NAMES)}
  np.savez(tmp_path / 'openpose.npz', **clips)
  # The model brings its preprocessing, layout and class names: no config (the README's command).
  result = _run('cascadeformer_jax.predict', f'--init_from={workdir}', f'--input={tmp_path / "openpose.npz"}',
                '--layout=openpose25', f'--output={tmp_path / "out.json"}')
  records = json.loads((tmp_path / 'out.json').read_text())['clips']
  assert [r['name'] for r in records] == [f'openpose.npz:{name}' for name in example.CLASS_NAMES]
  assert sorted(records[0]['probabilities']) == sorted(example.CLASS_NAMES)
  correct = sum(r['top_k'][0]['class'] == r['name'].split(':')[1] for r in records)
  assert correct >= 3, result.stdout


def test_ntu25_3d_folder_with_group_split_trains_and_evaluates(tmp_path):
  folder = example.write_example(tmp_path / 'ntu_clips', layout='ntu25', clips_per_class=8, file_format='json',
                                 group_split=True)
  results, workdir = _train(folder, tmp_path, 'configs/custom.py:1.1')
  _check_report(workdir, results)
  evaluated = _run('cascadeformer_jax.main', '--config=configs/custom.py:1.1', f'--config.data.folder={folder}',
                   f'--config.data.data_dir={tmp_path / "tfds"}', f'--config.workdir={workdir}', *TINY,
                   '--config.mode=eval')
  assert f'test accuracy {results["accuracy"]:.4f}' in evaluated.stdout
  assert 'building' not in evaluated.stdout  # built once, reused while the folder is unchanged
  # The run's own results stay; the evaluation went beside them, with the same numbers.
  assert json.loads((workdir / 'results.json').read_text()) == results
  (written,) = (workdir / 'eval').iterdir()
  assert str(written) in evaluated.stdout
  assert json.loads((written / 'results.json').read_text())['accuracy'] == results['accuracy']
  # A setting that changes the model's input is refused in one line, before anything is written.
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  refused = subprocess.run([sys.executable, '-m', 'cascadeformer_jax.main', '--config=configs/custom.py:1.1',
                            f'--config.data.folder={folder}', f'--config.data.data_dir={tmp_path / "tfds"}',
                            f'--config.workdir={workdir}', *TINY, '--config.mode=eval',
                            '--config.data.representation=bone'],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert refused.returncode != 0
  assert refused.stderr.strip().splitlines() == [refused.stderr.strip().splitlines()[-1]], refused.stderr
  assert "data.representation: 'joint' → 'bone'" in refused.stderr
  assert len(list((workdir / 'eval').iterdir())) == 1
