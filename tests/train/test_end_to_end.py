"""The whole run (pretrain -> finetune -> test report) on every dataset built from fixtures, all three variants."""

import json
import pathlib

import jax
import numpy as np
import pytest

from cascadeformer_jax import checkpoint_io
from cascadeformer_jax import configuration
from cascadeformer_jax import experiment

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = REPO_ROOT / 'configs' / 'smoke.py'


def smoke_config(dataset: str, variant: str, data_dir: pathlib.Path, workdir: pathlib.Path):
  config = configuration.load_config_file(SMOKE, f'{dataset},{variant}')
  config.data.data_dir = str(data_dir)
  config.workdir = str(workdir)
  config.progress = False
  config.tensorboard = False
  if dataset == 'synthetic_actions':
    config.data.tfds_config = 'tiny'
  if dataset == 'penn_action':
    # One compiled shape for the fixture clips of 2-4 frames (the default buckets would pad them to 64).
    config.data.penn.update(length_buckets=(), pad_multiple=8)
  return config


# Every variant on one dataset, and every dataset once: the variants' layout-specific forms (1.2 'project_back' on
# Penn/N-UCLA, 'concat' on NTU; Penn 1.0's zero positional init) each appear. Shapes of every variant x layout are
# covered in tests/models, conversions in tests/convert.
@pytest.mark.parametrize('dataset,variant', [
    ('n_ucla', '1.0'), ('n_ucla', '1.1'), ('n_ucla', '1.2'), ('penn_action', '1.0'), ('ntu60_xsub', '1.2'),
    ('synthetic_actions', '1.1')])
def test_train_every_dataset_and_variant(dataset, variant, fixture_data_dir, tmp_path, fast_compile):
  config = smoke_config(dataset, variant, fixture_data_dir, tmp_path / 'run')
  summary = experiment.run(config)
  workdir = tmp_path / 'run'
  for stage, kind in (('pretrain', 'pretrained'), ('finetune', 'classifier')):
    stored, params = checkpoint_io.load_model_dir(workdir / stage / 'final', kind)
    assert stored.variant == variant
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(params))
  results = json.loads((workdir / 'results.json').read_text())
  assert results['count'] == summary['test']['count'] > 0
  assert 0.0 <= results['accuracy'] <= 1.0
  assert len(results['per_class']) == config.data.num_classes
  assert (dataset == 'ntu60_xsub') == ('person_type' in results)
  for name in ('report.md', 'confusion_matrix.png', 'confusion_matrix.csv', 'metrics.jsonl', 'config.json',
               'curves.png'):
    assert (workdir / name).is_file(), name
  records = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert {r['stage'] for r in records} >= {'pretrain', 'finetune', 'test'}
  assert all(np.isfinite(r['loss']) for r in records if r['stage'] in ('pretrain', 'finetune'))


def test_extra_evaluation_protocols_are_reported_side_by_side(fixture_data_dir, tmp_path, fast_compile):
  config = smoke_config('n_ucla', '1.0', fixture_data_dir, tmp_path / 'run')
  config.model.update(d_model=40, num_heads=8, cross_attn_heads=8)
  config.eval.protocols = 'cross_attn_4_heads,per_clip,padding_aware'
  results = experiment.run(config)['test']
  assert set(results['protocols']) == {'cross_attn_4_heads', 'per_clip', 'padding_aware'}
  # N-UCLA clips all have the same length: no padding, so neither the batch nor a padding mask changes a thing.
  assert results['protocols']['per_clip']['accuracy'] == results['accuracy']
  np.testing.assert_allclose(results['protocols']['padding_aware']['loss'], results['loss'], rtol=1e-5)
  assert (tmp_path / 'run' / 'report.md').read_text().count('protocol |') == 3


def test_unknown_protocol_is_rejected_before_training(fixture_data_dir, tmp_path):
  config = smoke_config('n_ucla', '1.0', fixture_data_dir, tmp_path / 'run')
  config.eval.protocols = 'ten_crop'
  with pytest.raises(ValueError, match=r"config.eval.protocols='ten_crop': must be a comma-separated list of"):
    experiment.run(config)
  assert not (tmp_path / 'run' / 'pretrain').exists()


def test_multi_clip_protocol(fixture_data_dir, tmp_path, fast_compile):
  config = smoke_config('ntu60_xsub', '1.0', fixture_data_dir, tmp_path / 'run')
  config.eval.protocols = 'multi_clip,per_clip'
  results = experiment.run(config)['test']
  assert results['protocols']['multi_clip']['count'] == results['count']
  assert results['protocols']['per_clip']['accuracy'] == results['accuracy']
  config = smoke_config('n_ucla', '1.0', fixture_data_dir, tmp_path / 'nucla')
  config.eval.protocols = 'multi_clip'
  with pytest.raises(ValueError, match='multi_clip protocol needs an NTU-style dataset'):
    experiment.run(config)
