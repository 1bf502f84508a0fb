"""The stage loop's schedule (when it logs, evaluates, checkpoints), its profiling window and the mode table."""

import pathlib

import jax
import pytest

from cascadeformer_jax.config import configuration
from cascadeformer_jax.experiment import runner
from cascadeformer_jax.config import schema
from cascadeformer_jax.run import runtime
from cascadeformer_jax.train import trainer

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _demo():
  return configuration.load_config_file(REPO_ROOT / 'configs' / 'demo.py')


def _cadence(**changes) -> trainer.Cadence:
  fields = dict(steps_per_epoch=3, total_steps=9, log_every_steps=2, eval_every_epochs=2, checkpoint_every_steps=4,
                checkpoint_every_epochs=0)
  fields.update(changes)
  return trainer.Cadence(**fields)


def test_cadence_from_config():
  config = _demo()
  config.log_every_steps, config.eval.every_epochs = 0, 3
  config.checkpoint.every_steps, config.checkpoint.every_epochs = 7, 2
  assert trainer.Cadence.from_config(config, epochs=4, steps_per_epoch=5) == trainer.Cadence(
      steps_per_epoch=5, total_steps=20, log_every_steps=1, eval_every_epochs=3, checkpoint_every_steps=7,
      checkpoint_every_epochs=2)


def test_evaluations_at_every_nth_epoch_end_and_at_the_last_step():
  assert [s for s in range(1, 10) if _cadence().time_to_evaluate(s)] == [6, 9]
  assert [s for s in range(1, 10) if _cadence(eval_every_epochs=1).time_to_evaluate(s)] == [3, 6, 9]
  assert not any(_cadence(eval_every_epochs=0).time_to_evaluate(s) for s in range(1, 10))


def test_checkpoints_every_n_steps_every_nth_epoch_and_at_the_last_step():
  assert [s for s in range(1, 10) if _cadence().time_to_checkpoint(s)] == [4, 8, 9]
  assert [s for s in range(1, 10) if _cadence(checkpoint_every_steps=0, checkpoint_every_epochs=2)
          .time_to_checkpoint(s)] == [6, 9]
  assert [s for s in range(1, 10) if _cadence(checkpoint_every_steps=0).time_to_checkpoint(s)] == [9]


def test_metrics_are_flushed_when_enough_are_waiting_at_epoch_ends_last_step_and_stop_requests():
  cadence = _cadence(log_every_steps=5)
  assert not cadence.time_to_log(1, 1, stopping=False)
  assert cadence.time_to_log(1, 1, stopping=True)
  assert cadence.time_to_log(2, 5, stopping=False)
  assert cadence.time_to_log(3, 1, stopping=False) and cadence.time_to_log(9, 1, stopping=False)


def test_profiler_traces_the_range_and_stops_a_trace_left_running(monkeypatch, tmp_path):
  calls, reports = [], []
  monkeypatch.setattr(jax.profiler, 'start_trace', lambda directory: calls.append(('start', directory)))
  monkeypatch.setattr(jax.profiler, 'stop_trace', lambda: calls.append(('stop',)))

  def run_steps(profile, first, last):
    with trainer.profiled_steps(profile, tmp_path, reports.append, 'pretrain') as hooks:
      for step in range(first, last):
        hooks.before_step(step, None)
        calls.append(('step', step))
        hooks.after_step(step + 1, None)

  run_steps(runtime.ProfileRange(2, 4), 0, 6)
  assert calls == [('step', 0), ('step', 1), ('start', str(tmp_path)), ('step', 2), ('step', 3), ('stop',),
                   ('step', 4), ('step', 5)]
  assert reports == [f'[pretrain] profile of steps 2:4 written to {tmp_path}']
  calls.clear()
  with pytest.raises(KeyboardInterrupt):
    with trainer.profiled_steps(runtime.ProfileRange(0, 4), tmp_path, reports.append, 'pretrain') as hooks:
      hooks.before_step(0, None)
      raise KeyboardInterrupt
  assert calls == [('start', str(tmp_path)), ('stop',)]
  calls.clear()
  run_steps(None, 0, 3)
  assert calls == [('step', 0), ('step', 1), ('step', 2)]


def test_mode_table_drives_modes_stages_and_the_profiled_stage():
  assert configuration.MODES == schema.MODES == ('train', 'pretrain', 'finetune', 'eval', 'probe', 'few_shot')
  assert schema.TRAINING_MODES == ('train', 'pretrain', 'finetune')
  config = _demo()
  config.finetune.t1_init = 'pretrained'
  used = {}
  for mode in schema.MODES:
    config.mode = mode
    used[mode] = runner.stages_used(config)
  assert used == {'train': ('pretrain', 'finetune'), 'pretrain': ('pretrain',), 'finetune': ('pretrain', 'finetune'),
                  'eval': (), 'probe': (), 'few_shot': ()}
  config.mode, config.finetune.t1_init = 'finetune', 'scratch'
  assert runner.stages_used(config) == ('finetune',)
  assert trainer.profiled_stage(config) == 'finetune'
  config.mode = 'train'
  assert trainer.profiled_stage(config) == 'pretrain'
  config.profile_steps = 'finetune:0:2'
  assert trainer.profiled_stage(config) == 'finetune'
