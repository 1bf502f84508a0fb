"""A work directory knows what produced it: changed recipes are refused, finished runs are not redone, evaluation
settings never block, and only one run holds a work directory."""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import pytest

from cascadeformer_jax.experiment import runner as experiment
from cascadeformer_jax.run import workdir_lock
from tests import failure_injection
from tests.train.test_end_to_end import smoke_config

pytestmark = pytest.mark.cost(25)  # seconds on 2 cores, roughly: the suite starts long files first

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _config(data_dir, workdir, **stage_changes):
  config = smoke_config('synthetic_actions', '1.0', data_dir, workdir)
  config.finetune.select_best = 'last'
  for field, value in stage_changes.items():
    stage, name = field.split('__')
    config[stage][name] = value
  return config


@pytest.fixture(name='finished', scope='module')
def finished_fixture(fixture_data_dir, tmp_path_factory):
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  workdir = tmp_path_factory.mktemp('finished') / 'run'
  summary = experiment.run(_config(fixture_data_dir, workdir))
  jax.config.update('jax_disable_most_optimizations', previous)
  return workdir, summary


def _snapshot(workdir: pathlib.Path) -> dict[str, tuple[int, int]]:
  return {str(p.relative_to(workdir)): (p.stat().st_mtime_ns, p.stat().st_size) for p in workdir.rglob('*')
          if p.is_file()}


def test_changed_recipe_is_refused_before_any_work(finished, fixture_data_dir, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(finished[0], workdir)
  before = _snapshot(workdir)
  config = _config(fixture_data_dir, workdir, finetune__lr=0.5, finetune__epochs=2)
  with pytest.raises(experiment.RecipeMismatchError) as raised:
    experiment.run(config)
  message = str(raised.value)
  assert f'{workdir / "finetune"} was trained with a different recipe; 2 field(s) changed' in message
  assert 'config.finetune.epochs: 1 -> 2' in message and 'config.finetune.lr: 0.001 -> 0.5' in message
  assert '--config.workdir' in message and '--config.restart=True' in message
  assert 'config.pretrain' not in message  # pretraining is unchanged
  assert _snapshot(workdir) == before  # config.json and results untouched


def test_rerun_of_a_finished_run_reports_the_stored_result(finished, fixture_data_dir, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(finished[0], workdir)
  before = _snapshot(workdir)
  config = _config(fixture_data_dir, workdir)
  config.progress = True  # display settings never matter
  config.checkpoint.every_steps = 3
  summary = experiment.run(config)
  assert summary['complete'] and summary['test'] == json.loads((workdir / 'results.json').read_text())
  assert summary['test']['accuracy'] == finished[1]['test']['accuracy']
  assert _snapshot(workdir) == before


def test_the_data_is_part_of_the_recipe_and_older_recipes_without_it_still_complete(finished, fixture_data_dir,
                                                                                    tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(finished[0], workdir)
  recipe_files = [workdir / stage / 'recipe.json' for stage in ('pretrain', 'finetune')]
  recipes = [json.loads(path.read_text()) for path in recipe_files]
  identity = recipes[1]['data.identity']
  sizes = re.fullmatch(r'synthetic_actions/tiny/\d+\.\d+\.\d+: test (\d+), train (\d+)', identity)
  assert sizes and recipes[0]['data.identity'] == identity
  # Trained on another build of the dataset (other split sizes): refused, naming the dataset.
  other = identity.replace(f'train {sizes[2]}', 'train 99')
  recipe_files[1].write_text(json.dumps(dict(recipes[1], **{'data.identity': other})))
  with pytest.raises(experiment.RecipeMismatchError) as raised:
    experiment.run(_config(fixture_data_dir, workdir))
  assert (f"config.data.identity: dataset 'synthetic_actions' changed since it was trained: {other!r} -> "
          f'{identity!r}') in str(raised.value)
  # Recipes from before the data was recorded: an absent field is no change.
  for path, recipe in zip(recipe_files, recipes):
    path.write_text(json.dumps({k: v for k, v in recipe.items() if k != 'data.identity'}))
  assert experiment.run(_config(fixture_data_dir, workdir))['complete']


def test_evaluation_settings_never_block_and_keep_config_json(finished, fixture_data_dir, tmp_path, fast_compile):
  workdir = tmp_path / 'run'
  shutil.copytree(finished[0], workdir)
  stored_config = (workdir / 'config.json').read_text()
  config = _config(fixture_data_dir, workdir, finetune__lr=0.5)  # not used: eval trains nothing
  config.mode = 'eval'
  config.eval.batch_size = 1
  config.eval.protocols = 'per_clip'
  summary = experiment.run(config)
  assert summary['test']['accuracy'] == finished[1]['test']['accuracy']
  assert 'per_clip' in summary['test']['protocols']
  assert (workdir / 'config.json').read_text() == stored_config


def test_restart_moves_the_old_results_aside(finished, fixture_data_dir, tmp_path, fast_compile):
  workdir = tmp_path / 'run'
  shutil.copytree(finished[0], workdir)
  config = _config(fixture_data_dir, workdir, pretrain__lr=1e-3)
  config.mode = 'pretrain'
  config.restart = True
  summary = experiment.run(config)
  assert not summary.get('complete')
  aside = [p for p in tmp_path.iterdir() if p.name.startswith('run.before-restart-')]
  assert len(aside) == 1 and (aside[0] / 'results.json').is_file() and (aside[0] / 'finetune' / 'final').is_dir()
  assert (workdir / 'pretrain' / 'final').is_dir() and not (workdir / 'finetune').exists()
  assert json.loads((workdir / 'pretrain' / 'recipe.json').read_text())['pretrain.lr'] == 1e-3


def test_a_second_run_into_a_work_dir_in_use_is_refused_at_once(fixture_data_dir, tmp_path):
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time\nfrom cascadeformer_jax.run import workdir_lock\n'
       'with workdir_lock.WorkdirLock(sys.argv[1]):\n  print("locked", flush=True)\n  time.sleep(60)',
       str(tmp_path / 'run')], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
      env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
  try:
    assert holder.stdout.readline().strip() == 'locked'
    started = time.monotonic()
    with pytest.raises(workdir_lock.WorkdirLockedError, match=f'in use by process {holder.pid} on host '):
      experiment.run(_config(fixture_data_dir, tmp_path / 'run'))
    assert time.monotonic() - started < 30
    assert not (tmp_path / 'run' / 'config.json').exists() and not (tmp_path / 'run' / 'metrics.jsonl').exists()
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()


def test_training_into_a_read_only_folder_is_one_line(fixture_data_dir, tmp_path):
  command = [sys.executable, '-m', 'cascadeformer_jax.main', '--config=configs/smoke.py',
             f'--config.data.data_dir={fixture_data_dir}', '--config.data.tfds_config=tiny',
             f'--config.workdir={tmp_path / "ro" / "run"}']
  env = {k: v for k, v in os.environ.items() if k != 'CASCADEFORMER_DEBUG'}
  result = failure_injection.run_with_read_only_folder(command, tmp_path / 'ro', capture_output=True, text=True,
                                                       cwd=REPO_ROOT, env=dict(env, JAX_PLATFORMS='cpu'),
                                                       timeout=300)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f'error: cannot write the work directory {tmp_path / "ro" / "run"}')
  assert any(reason in lines[0] for reason in failure_injection.READ_ONLY_REASONS)


def test_the_api_loads_a_training_work_directory(finished):
  import cascadeformer_jax as cfx  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.checkpoints import checkpoint_io  # pylint: disable=g-import-not-at-top

  workdir = finished[0]
  classifier = cfx.load_classifier(workdir)
  clips = np.random.default_rng(0).normal(size=(2, 16, 25, 3)).astype(np.float32)
  _, final = checkpoint_io.load_model_dir(workdir / 'finetune' / 'final', 'classifier')
  expected = cfx.load_classifier(workdir / 'finetune' / 'final')(clips)
  np.testing.assert_array_equal(classifier(clips), expected)
  assert final is not None
  pretrained = cfx.load_pretrained(workdir)
  assert pretrained.reconstruct(clips).shape == clips.shape
