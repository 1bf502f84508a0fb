"""A non-finite loss stops the run and keeps the last checkpoint; a checkpoint of another model is not resumed;
damaged checkpoints are set aside and the run resumes from the newest intact one.

Resumption itself is tested where runs are really stopped: SIGKILL of a job of two processes
(tests/train/test_multiprocess_trainer.py) and Ctrl-C / SIGTERM with a lost checkpoint, bit for bit
(tests/train/test_interrupts.py)."""

import os

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


def test_damaged_checkpoints_are_set_aside_and_another_model_is_refused(fixture_data_dir, tmp_path, fast_compile,
                                                                         capsys):
  config = smoke_config('synthetic_actions', '1.0', fixture_data_dir, tmp_path / 'run')
  config.mode = 'pretrain'
  config.pretrain.epochs = 1
  config.checkpoint.update(every_steps=5, keep=3)
  experiment.run(config)
  checkpoints = tmp_path / 'run' / 'pretrain' / 'checkpoints'
  assert sorted(path.name for path in checkpoints.iterdir()) == ['10', '15', '5']
  # Remove the finished export so that the stage would resume from its checkpoints.
  checkpoint_io.remove_model_dir(tmp_path / 'run' / 'pretrain' / 'final')

  # The newest checkpoint lost the end of a data file, the one before the end of its array metadata: both are set
  # aside, and the run resumes from the newest intact one.
  data_file = max((path for path in (checkpoints / '15').rglob('*') if path.parent.name == 'd'),
                  key=lambda path: path.stat().st_size)
  os.truncate(data_file, data_file.stat().st_size // 2)
  metadata = checkpoints / '10' / 'state' / '_METADATA'
  os.truncate(metadata, metadata.stat().st_size // 2)
  capsys.readouterr()
  experiment.run(config)
  printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith('[pretrain]')]
  assert printed[0].startswith(f'[pretrain] checkpoint of step 15 cannot be restored: {data_file}: Requested byte '
                               'range '), printed
  assert printed[0].endswith(f'; kept aside as {checkpoints / "15.corrupt"}')
  assert printed[1].startswith(f'[pretrain] checkpoint of step 10 cannot be restored: {metadata}: invalid JSON, '
                               'truncated or damaged (Unterminated string'), printed
  assert printed[2] == f'[pretrain] resuming from step 5 instead, the newest intact checkpoint ({checkpoints})'
  # Kept aside, not deleted; the steps after 5 were trained again and saved under their own numbers.
  for step, damaged in (('15', data_file), ('10', metadata)):
    assert (checkpoints / f'{step}.corrupt' / damaged.relative_to(checkpoints / step)).is_file()
  assert sorted(path.name for path in checkpoints.iterdir()) == ['10', '10.corrupt', '15', '15.corrupt', '5']
  assert checkpoint_io.is_model_dir(tmp_path / 'run' / 'pretrain' / 'final')

  checkpoint_io.remove_model_dir(tmp_path / 'run' / 'pretrain' / 'final')
  config.model.num_layers = 2
  with pytest.raises(experiment.RecipeMismatchError, match=r'config.model.num_layers: 1 -> 2'):
    experiment.run(config)
  # Without the stored recipe (a work directory of an older version) the checkpoints still refuse the model.
  (tmp_path / 'run' / 'pretrain' / 'recipe.json').unlink()
  (tmp_path / 'run' / 'config.json').unlink()
  with pytest.raises(checkpointing.ResumeError, match=r"different model \(fields \['num_layers'\] differ\)"):
    experiment.run(config)
