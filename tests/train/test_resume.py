"""Interrupted runs resume to the same result; a non-finite loss stops the run and keeps the last checkpoint."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.config import configuration
from cascadeformer_jax.experiment import runner as experiment
from cascadeformer_jax.models import MaskedPretrainer
from cascadeformer_jax.train import checkpointing
from cascadeformer_jax.train import optim
from cascadeformer_jax.train import steps
from tests.train.test_end_to_end import smoke_config

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _command(data_dir, workdir):
  # Fine-tuning runs 60 steps (4 epochs of 15): the kill lands after the checkpoint of step 10 with seconds to spare.
  return [sys.executable, '-m', 'cascadeformer_jax.main', '--config=configs/smoke.py:synthetic_actions,1.1',
          f'--config.data.data_dir={data_dir}', '--config.data.tfds_config=tiny', f'--config.workdir={workdir}',
          '--config.pretrain.epochs=2', '--config.finetune.epochs=4', '--config.checkpoint.every_steps=5',
          '--config.tensorboard=False']


def _env():
  return dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS='1', JAX_PLATFORMS='cpu')


def _params(directory, kind):
  return jax.tree_util.tree_leaves_with_path(checkpoint_io.load_model_dir(directory, kind)[1])


def _latest_checkpoint(directory: pathlib.Path) -> int:
  steps = [int(p.name) for p in directory.glob('[0-9]*') if p.name.isdigit()] if directory.exists() else []
  return max(steps, default=0)


def test_kill_and_rerun_resumes_to_the_uninterrupted_result(fixture_data_dir, tmp_path):
  # The uninterrupted reference runs alongside the run to be killed.
  reference = subprocess.Popen(_command(fixture_data_dir, tmp_path / 'reference'), cwd=REPO_ROOT, env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  workdir = tmp_path / 'interrupted'
  process = subprocess.Popen(_command(fixture_data_dir, workdir), cwd=REPO_ROOT, env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  checkpoints = workdir / 'finetune' / 'checkpoints'
  deadline = time.time() + 300
  while _latest_checkpoint(checkpoints) < 10 and process.poll() is None and time.time() < deadline:
    time.sleep(0.02)
  process.send_signal(signal.SIGKILL)
  process.communicate()
  try:
    _, reference_stderr = reference.communicate(timeout=600)
  finally:
    reference.kill()
  assert reference.returncode == 0, reference_stderr[-3000:]
  assert process.returncode == -signal.SIGKILL, 'the run ended before it could be interrupted'
  assert not (workdir / 'finetune' / 'final').exists()
  killed_at = _latest_checkpoint(checkpoints)

  resumed = subprocess.run(_command(fixture_data_dir, workdir), cwd=REPO_ROOT, env=_env(), capture_output=True,
                           text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert '[finetune] resuming from step' in resumed.stdout
  assert killed_at >= 10
  for stage, kind in (('pretrain', 'pretrained'), ('finetune', 'classifier')):
    expected = _params(tmp_path / 'reference' / stage / 'final', kind)
    actual = _params(workdir / stage / 'final', kind)
    assert [path for path, _ in expected] == [path for path, _ in actual]
    for (path, a), (_, b) in zip(expected, actual):
      np.testing.assert_array_equal(a, b, err_msg=f'{stage}{jax.tree_util.keystr(path)}')


def test_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint(fixture_data_dir, tmp_path, fast_compile):
  config = smoke_config('synthetic_actions', '1.0', fixture_data_dir, tmp_path / 'run')
  config.mode = 'pretrain'
  config.pretrain.lr = 1e30  # The first update is finite but blows the parameters up; the second loss is not.
  config.checkpoint.every_steps = 1
  with pytest.raises(experiment.TrainingError,
                     match=r'non-finite at step 2 .*The checkpoint of step 1 in .* is intact and a rerun resumes'):
    experiment.run(config)
  checkpointer = checkpointing.StageCheckpointer(tmp_path / 'run' / 'pretrain' / 'checkpoints')
  assert checkpointer.latest_step() == 1
  model_config = configuration.model_config(config)
  x = np.zeros((1, 8, model_config.num_joints, model_config.coords), np.float32)
  params = jax.eval_shape(MaskedPretrainer(model_config).init, jax.random.key(0), x)['params']
  optimizer, _ = optim.make_optimizer(config.pretrain, 15, params)
  abstract = jax.eval_shape(lambda p: steps.init_state(p, optimizer), params)
  state, data_state, meta = checkpointer.restore(abstract, model_config, 'pretrain')
  checkpointer.close()
  assert int(state['step']) == 1 and data_state['step'] == 1 and meta['step'] == 1
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state['params']))
  assert not (tmp_path / 'run' / 'pretrain' / 'final').exists()


def test_resuming_with_another_model_is_refused(fixture_data_dir, tmp_path, fast_compile):
  config = smoke_config('synthetic_actions', '1.0', fixture_data_dir, tmp_path / 'run')
  config.mode = 'pretrain'
  config.pretrain.epochs = 1
  experiment.run(config)
  # Remove the finished export so that the stage would resume from its checkpoints.
  checkpoint_io.remove_model_dir(tmp_path / 'run' / 'pretrain' / 'final')
  config.model.num_layers = 2
  with pytest.raises(experiment.RecipeMismatchError, match=r'config.model.num_layers: 1 -> 2'):
    experiment.run(config)
  # Without the stored recipe (a work directory of an older version) the checkpoints still refuse the model.
  (tmp_path / 'run' / 'pretrain' / 'recipe.json').unlink()
  (tmp_path / 'run' / 'config.json').unlink()
  with pytest.raises(checkpointing.ResumeError, match=r"different model \(fields \['num_layers'\] differ\)"):
    experiment.run(config)
