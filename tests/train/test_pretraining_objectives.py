"""Pretraining objectives through the whole run, the probe mode, semi-supervised fine-tuning and the comparison."""

import json

import jax
import numpy as np
import pytest

import cascadeformer_jax as cfx
from benchmarks import pretraining_objectives
from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.experiment import runner as experiment
from tests.train.test_end_to_end import smoke_config

pytestmark = pytest.mark.cost(60)  # seconds on 2 cores, roughly: the suite starts long files first


def _config(objective, data_dir, workdir):
  config = smoke_config('synthetic_actions', '1.0', data_dir, workdir)
  config.pretrain.objective = objective
  config.model.target_width = 8
  return config


def test_feature_prediction_pretraining_probe_and_label_fraction(fixture_data_dir, tmp_path, fast_compile):
  workdir = tmp_path / 'run'
  config = _config('feature_prediction', fixture_data_dir, workdir)
  config.mode = 'pretrain'
  experiment.run(config)
  stored, _ = checkpoint_io.load_model_dir(workdir / 'pretrain' / 'final', 'pretrained')
  assert stored.decoder == 'features'
  records = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  pretrain_records = [r for r in records if r['stage'] == 'pretrain']
  assert pretrain_records and all(np.isfinite(r['loss']) for r in pretrain_records)
  assert all({'feature_mse', 'variance_term', 'covariance_term'} <= set(r) for r in pretrain_records)
  # The pretrained model's API encodes but has nothing to reconstruct with.
  pretrained = cfx.load_pretrained(workdir / 'pretrain' / 'final')
  clips = np.zeros((1, 16, 25, 3), np.float32)
  assert pretrained.encode(clips).shape == (1, 16, config.model.d_model)
  with pytest.raises(ValueError, match='no reconstruction decoder'):
    pretrained.reconstruct(clips)

  config.mode = 'probe'
  probe = experiment.run(config)['probe']
  assert probe['num_test'] == 10 and probe['num_train'] == 30
  assert 0.0 <= probe['linear_probe_accuracy'] <= 1.0 and 0.0 <= probe['knn_accuracy'] <= 1.0
  assert json.loads((workdir / 'probe.json').read_text())['knn_accuracy'] == probe['knn_accuracy']

  # Semi-supervised: a run with the default objective fine-tunes on a third of the labels from that T1.
  semi = _config('masked_joints', fixture_data_dir, tmp_path / 'semi')
  semi.update_from_flattened_dict({'mode': 'finetune', 'init_from': str(workdir), 'data.label_fraction': 1 / 3})
  assert experiment.run(semi)['test']['count'] == 10
  steps = [json.loads(line)['step'] for line in (tmp_path / 'semi' / 'metrics.jsonl').read_text().splitlines()
           if json.loads(line)['stage'] == 'finetune']
  assert max(steps) == 5  # 10 of the 30 training clips, batch 2
  classifier = cfx.load_classifier(tmp_path / 'semi' / 'finetune' / 'final', semi.model.to_dict())
  assert classifier.config.decoder == 'linear'


def test_probe_without_pretraining_says_what_to_do(fixture_data_dir, tmp_path):
  config = _config('masked_joints', fixture_data_dir, tmp_path / 'run')
  config.mode = 'probe'
  with pytest.raises(experiment.TrainingError, match='the probe needs a pretrained T1'):
    experiment.run(config)


def test_feature_prediction_cannot_select_on_its_moving_target(fixture_data_dir, tmp_path):
  config = _config('feature_prediction', fixture_data_dir, tmp_path / 'run')
  config.update_from_flattened_dict({'data.holdout_fraction': 0.2, 'pretrain.select_best': 'holdout'})
  with pytest.raises(ValueError, match="select_best must be 'last' with the feature_prediction objective"):
    experiment.run(config)
  assert not (tmp_path / 'run' / 'pretrain').exists()


def test_label_fraction_too_small_for_a_batch(fixture_data_dir, tmp_path):
  config = _config('masked_joints', fixture_data_dir, tmp_path / 'run')
  config.update_from_flattened_dict({'mode': 'finetune', 'finetune.t1_init': 'scratch',
                                     'data.label_fraction': 0.01, 'finetune.batch_size': 16})
  with pytest.raises(ValueError, match=r'10 examples do not fill one global batch of 16 \(drop_remainder=True, '
                                      r'data.label_fraction=0.01\)'):
    experiment.run(config)


def test_comparison_table(fixture_data_dir, tmp_path, capsys, fast_compile):
  output = tmp_path / 'objectives.json'
  payload = pretraining_objectives.main([
      '--config=configs/smoke.py', '--objectives=query_decoder', '--label_fractions=0.5',
      f'--workdir={tmp_path / "work"}', f'--output={output}', '--blocks=1', '--steps_per_block=1',
      f'--override=data.data_dir={fixture_data_dir}', '--override=data.tfds_config=tiny'])
  table = capsys.readouterr().out
  assert '| objective | pretrain clips/s | pretrain s | linear probe % | kNN (k=1) % | 50% labels fine-tune % |' in table
  rows = {row['objective']: row for row in json.loads(output.read_text())['results']}
  assert list(rows) == [pretraining_objectives.BASELINE, 'query_decoder']
  assert rows == {row['objective']: row for row in payload['results']}
  assert rows['query_decoder']['clips_per_s'] > 0 and rows['query_decoder']['pretrain_s'] > 0
  assert (tmp_path / 'work' / 'query_decoder' / 'pretrain' / 'final' / 'model.json').is_file()
  # Tiny: 3 training clips per class, round(1.5) = 2 of each labelled: 20 clips, 10 steps per epoch at the smoke
  # batch of 2; the full fine-tune has 15 steps (1 epoch of 30 clips).
  finetune_steps = [json.loads(line)['step'] for line in
                    (tmp_path / 'work' / 'query_decoder_labels_0.5' / 'metrics.jsonl').read_text().splitlines()
                    if json.loads(line)['stage'] == 'finetune']
  assert max(finetune_steps) == 20  # ceil(15 / 10) = 2 epochs
  for row in rows.values():
    assert 0 <= row['linear_probe'] <= 100 and 0 <= row['knn'] <= 100 and 0 <= row['labels_0.5'] <= 100
    assert f'| {row["objective"]} |' in table
