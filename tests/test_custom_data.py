"""Your own data end to end through the command line: a generated folder in two layouts (COCO-17 2D, NTU-25 3D) is
built on first use, trained well above chance, reported with its class names, evaluated and used for predictions
(also of clips in another layout). The data is identified by its content: a folder of the same name with other
clips gets its own build and accuracy, a copied or touched folder is the same data, an edited one is refused."""

import ast
import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from cascadeformer_jax.config import configuration
from cascadeformer_jax.evaluate import ensemble
from cascadeformer_jax.experiment import runner
from data_builders.skeleton_folder import example
from data_builders.skeleton_folder import folder as folder_lib

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


def _config(config: str, folder: pathlib.Path, tmp_path: pathlib.Path, workdir: pathlib.Path
            ) -> ml_collections.ConfigDict:
  """The config `_train` runs, for calling the runner in this process (no JAX compilation when nothing trains)."""
  path, _, arg = config.partition(':')
  loaded = configuration.load_config_file(REPO_ROOT / path, arg or None)
  overrides = {'data.folder': str(folder), 'data.data_dir': str(tmp_path / 'tfds'), 'workdir': str(workdir)}
  for flag in TINY:
    key, value = flag[len('--config.'):].split('=', 1)
    try:
      overrides[key] = ast.literal_eval(value)
    except ValueError:
      overrides[key] = value
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    node = loaded
    for parent in parents:
      node = node[parent]
    node[leaf] = value
  return loaded


def _same_paths_other_clips(folder: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
  """A copy of `folder` (same dataset name and labels.csv) whose clip files hold the next class's motions, with
  each file's size and modification time kept: all that a path/size/mtime fingerprint sees is the same."""
  shutil.copytree(folder, target)
  for clip in sorted((folder / 'clips').glob('*.npy')):
    class_name, repetition = clip.stem.rsplit('_', 1)
    other = example.CLASS_NAMES[(example.CLASS_NAMES.index(class_name) + 1) % len(example.CLASS_NAMES)]
    motion = np.load(folder / 'clips' / f'{other}_{repetition}.npy')
    frames = np.load(clip).shape[0]
    np.save(target / 'clips' / clip.name, motion[np.linspace(0, len(motion) - 1, frames).round().astype(int)])
    assert (target / 'clips' / clip.name).stat().st_size == clip.stat().st_size
    os.utime(target / 'clips' / clip.name, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns))
  return target


def _as_built_before_content_fingerprints(folder: pathlib.Path, tmp_path: pathlib.Path, workdir: pathlib.Path,
                                          name: str) -> None:
  """Turns the folder's build and the work dir into what earlier versions wrote: the build named after the dataset
  with a path/size/mtime fingerprint, recipes without data.identity."""
  root = tmp_path / 'tfds' / 'skeleton_folder'
  build = root / f'{name}-{folder_lib.content(folder).fingerprint[:16]}'
  build.rename(root / name)
  metadata_file = root / name / '1.0.0' / 'metadata.json'
  metadata = json.loads(metadata_file.read_text())
  del metadata['content_fingerprint']
  metadata['fingerprint'] = folder_lib.legacy_fingerprint(folder)
  metadata_file.write_text(json.dumps(metadata))
  for recipe_file in workdir.glob('*/recipe.json'):
    recipe = json.loads(recipe_file.read_text())
    del recipe['data.identity']
    recipe['data.tfds_config'] = name
    recipe_file.write_text(json.dumps(recipe))
  config = json.loads((workdir / 'config.json').read_text())
  del config['data']['identity']
  config['data']['tfds_config'] = name
  (workdir / 'config.json').write_text(json.dumps(config))


def _check_report(workdir: pathlib.Path, results: dict) -> None:
  assert results['accuracy'] >= 0.6, results['accuracy']  # chance: 0.2
  report = (workdir / 'report.md').read_text()
  for name in example.CLASS_NAMES:
    assert f'| {name} |' in report
  with open(workdir / 'confusion_matrix.csv') as f:
    header = next(csv.reader(f))
  assert header[1:] == sorted(example.CLASS_NAMES)


def _check_identified_by_content(folder: pathlib.Path, tmp_path: pathlib.Path, workdir: pathlib.Path, results: dict,
                                 capsys: pytest.CaptureFixture) -> None:
  """The trained folder's data is its content: another folder of the same name, a copy, an edit, an old work dir."""
  # A folder of the same name, labels.csv, clip sizes and mtimes but other clips: its own build and accuracy.
  other = _same_paths_other_clips(folder, tmp_path / 'other' / 'coco_clips')
  evaluated = _run('cascadeformer_jax.main', '--config=configs/custom.py', f'--config.data.folder={other}',
                   f'--config.data.data_dir={tmp_path / "tfds"}', f'--config.workdir={tmp_path / "other_run"}',
                   f'--config.init_from={workdir}', '--config.mode=eval', *TINY)
  assert 'building skeleton_folder/coco_clips-' in evaluated.stdout
  # The same model on its own clips, where every clip moves like the next class (a shared build gives A's scores).
  scores = [ensemble.load_workdir_scores(workdir), ensemble.load_workdir_scores(tmp_path / 'other_run')]
  assert not np.allclose(scores[0].logits, scores[1].logits)
  other_results = json.loads((tmp_path / 'other_run' / 'results.json').read_text())
  assert other_results['accuracy'] < results['accuracy'], (other_results['accuracy'], results['accuracy'])
  with pytest.raises(ensemble.EnsembleError, match='scored other data'):
    ensemble.align(scores)
  builds = sorted(p.name for p in (tmp_path / 'tfds' / 'skeleton_folder').iterdir() if not p.name.startswith('.'))
  assert len(builds) == 2 and f'coco_clips-{folder_lib.content(folder).fingerprint[:16]}' in builds  # not replaced
  # Copied elsewhere with new modification times: the same data; the run is complete, nothing is rebuilt.
  copy = shutil.copytree(folder, tmp_path / 'copied' / 'coco_clips', copy_function=shutil.copy)
  capsys.readouterr()
  summary = runner.run(_config('configs/custom.py', copy, tmp_path, workdir))
  assert summary['complete'] and summary['test']['accuracy'] == results['accuracy']
  assert 'building' not in capsys.readouterr().out
  # labels.csv edited after training: refused, naming the dataset and the rows that changed.
  labels = (folder / 'labels.csv').read_bytes()
  (folder / 'labels.csv').write_bytes(labels.replace(b'clips/wave_000.npy,wave,', b'clips/wave_000.npy,clap,'))
  with pytest.raises(runner.RecipeMismatchError) as refused:
    runner.run(_config('configs/custom.py', folder, tmp_path, workdir))
  message = str(refused.value)
  assert (f"config.data.identity: dataset 'coco_clips' (data.folder {folder}) changed since it was trained: 1 row "
          'relabelled (clips/wave_000.npy: wave -> clap)') in message
  assert '--config.restart=True' in message
  # A work dir and build from before content fingerprints: complete as they are.
  (folder / 'labels.csv').write_bytes(labels)
  _as_built_before_content_fingerprints(folder, tmp_path, workdir, 'coco_clips')
  capsys.readouterr()
  summary = runner.run(_config('configs/custom.py', folder, tmp_path, workdir))
  assert summary['complete'] and 'building' not in capsys.readouterr().out


def test_coco17_2d_folder_trains_predicts_clips_of_another_layout_and_is_identified_by_content(tmp_path, capsys):
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
  _check_identified_by_content(folder, tmp_path, workdir, results, capsys)


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
