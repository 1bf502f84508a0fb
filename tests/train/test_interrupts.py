"""Ctrl-C and SIGTERM mid-epoch save a checkpoint; the resumed run equals an uninterrupted one, metrics included."""

import collections
import os
import shutil
import signal

import jax
import numpy as np
import pytest

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.experiment import runner as experiment
from cascadeformer_jax.run import interrupts
from cascadeformer_jax.train import reporting
from cascadeformer_jax.train import trainer
from tests.train.test_end_to_end import smoke_config

pytestmark = pytest.mark.cost(45)  # seconds on 2 cores, roughly: the suite starts long files first

KINDS = {'pretrain': 'pretrained', 'finetune': 'classifier'}


def _config(data_dir, workdir, mode='train'):
  config = smoke_config('synthetic_actions', '1.0', data_dir, workdir)
  config.mode = mode
  config.pretrain.epochs = 2
  config.finetune.epochs = 2
  config.log_every_steps = 1
  config.checkpoint.every_epochs = 1
  return config


@pytest.fixture(autouse=True)
def default_signal_handlers():
  """SIGINT and SIGTERM as a Python program starts with them, whatever this process inherited (started as a
  background job, it ignores SIGINT); restored afterwards."""
  previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
  signal.signal(signal.SIGINT, signal.default_int_handler)
  signal.signal(signal.SIGTERM, signal.SIG_DFL)
  yield
  for number, handler in previous.items():
    signal.signal(number, handler)


@pytest.fixture(name='reference', scope='module')
def reference_fixture(fixture_data_dir, tmp_path_factory):
  """An uninterrupted run."""
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  workdir = tmp_path_factory.mktemp('reference')
  experiment.run(_config(fixture_data_dir, workdir))
  jax.config.update('jax_disable_most_optimizations', previous)
  return workdir


def _signal_at(monkeypatch, stage: str, step: int, signal_number: int) -> None:
  """Delivers a real signal to this process right after ``step`` of ``stage`` is logged."""
  flush = trainer.StageRunner._flush_metrics  # pylint: disable=protected-access

  def flush_and_signal(self, pending, *args):
    flush(self, pending, *args)
    if self.stage == stage and any(s == step for s, _ in pending):
      os.kill(os.getpid(), signal_number)

  monkeypatch.setattr(trainer.StageRunner, '_flush_metrics', flush_and_signal)


def _assert_same_final_params(expected_workdir, workdir, stages):
  for stage in stages:
    expected = jax.tree_util.tree_leaves_with_path(
        checkpoint_io.load_model_dir(expected_workdir / stage / 'final', KINDS[stage])[1])
    actual = jax.tree_util.tree_leaves_with_path(
        checkpoint_io.load_model_dir(workdir / stage / 'final', KINDS[stage])[1])
    for (path, a), (_, b) in zip(expected, actual, strict=True):
      np.testing.assert_array_equal(a, b, err_msg=f'{stage}{jax.tree_util.keystr(path)}')


def _training_records(workdir, stages=('pretrain', 'finetune')):
  return [(r['stage'], r['step'], r.get('loss')) for r in reporting.read_metrics(workdir) if r['stage'] in stages]


def _interrupt(config, stage, step, signal_number, monkeypatch):
  with monkeypatch.context() as patch:
    _signal_at(patch, stage, step, signal_number)
    with pytest.raises(interrupts.Interrupted) as raised:
      experiment.run(config)
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the loop's handlers are gone
  return raised.value


def test_sigint_during_finetuning_then_resume(reference, fixture_data_dir, tmp_path, fast_compile, monkeypatch,
                                              capsys):
  steps_per_epoch = len(_training_records(reference, ('finetune',))) // 2
  assert steps_per_epoch >= 3
  step = steps_per_epoch + 1  # mid-way through the second epoch, after the epoch-1 checkpoint
  workdir = tmp_path / 'run'
  interrupted = _interrupt(_config(fixture_data_dir, workdir), 'finetune', step, signal.SIGINT, monkeypatch)
  assert interrupted.exit_code == 130
  assert str(interrupted) == (f'SIGINT: stopped at step {step} of {2 * steps_per_epoch} (finetune); checkpoint '
                              f'saved in {workdir / "finetune" / "checkpoints"}. Rerun the same command to resume.')
  assert (workdir / 'finetune' / 'checkpoints' / str(step)).is_dir()
  assert not (workdir / 'finetune' / 'final').exists()
  capsys.readouterr()
  experiment.run(_config(fixture_data_dir, workdir))
  assert f'[finetune] resuming from step {step}' in capsys.readouterr().out
  _assert_same_final_params(reference, workdir, ('pretrain', 'finetune'))
  records = _training_records(workdir)
  assert records == _training_records(reference)  # the same steps, once each, with the same losses


def test_sigterm_during_pretraining_then_a_kill_then_resume(reference, fixture_data_dir, tmp_path, fast_compile,
                                                            monkeypatch):
  steps_per_epoch = len(_training_records(reference, ('pretrain',))) // 2
  step = steps_per_epoch + 2
  workdir = tmp_path / 'run'
  config = _config(fixture_data_dir, workdir, mode='pretrain')
  interrupted = _interrupt(config, 'pretrain', step, signal.SIGTERM, monkeypatch)
  assert interrupted.exit_code == 143 and str(interrupted).startswith(f'SIGTERM: stopped at step {step} of ')
  # As if the run had then been killed before that checkpoint landed: steps after epoch 1 are logged but lost.
  shutil.rmtree(workdir / 'pretrain' / 'checkpoints' / str(step))
  experiment.run(config)
  _assert_same_final_params(reference, workdir, ('pretrain',))
  records = _training_records(workdir)
  assert records == _training_records(reference, ('pretrain',))
  assert not [key for key, count in collections.Counter((s, n) for s, n, _ in records).items() if count > 1]
