"""The whole run (pretrain -> finetune -> test report) on every dataset built from fixtures, all three variants."""

import json
import pathlib

import jax
import numpy as np
import pytest

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.config import configuration
from cascadeformer_jax.experiment import runner as experiment

pytestmark = pytest.mark.cost(60)  # seconds on 2 cores, roughly: the suite starts long files first

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


# Two of the runs below also evaluate extra protocols, reported side by side with the standard evaluation.
PROTOCOLS = {('n_ucla', '1.0'): 'cross_attn_4_heads,per_clip,padding_aware',
             ('ntu60_xsub', '1.2'): 'multi_clip,per_clip'}


def _check_protocols(dataset: str, results: dict, workdir: pathlib.Path) -> None:
  if dataset == 'n_ucla':
    assert set(results['protocols']) == {'cross_attn_4_heads', 'per_clip', 'padding_aware'}
    # N-UCLA clips all have the same length: no padding, so neither the batch nor a padding mask changes a thing.
    assert results['protocols']['per_clip']['accuracy'] == results['accuracy']
    np.testing.assert_allclose(results['protocols']['padding_aware']['loss'], results['loss'], rtol=1e-5)
    assert (workdir / 'report.md').read_text().count('protocol |') == 3
  else:
    assert results['protocols']['multi_clip']['count'] == results['count']
    assert results['protocols']['per_clip']['accuracy'] == results['accuracy']


# Every dataset once and every variant at least once (1.2 in its NTU 'concat' form; Penn 1.0 with its zero
# positional init). The whole run is the same code for every variant: the shapes of every variant x layout are
# covered in tests/models, the numbers of each published form (1.2 'project_back' included) in tests/checkpoints.
@pytest.mark.parametrize('dataset,variant', [
    ('n_ucla', '1.0'), ('penn_action', '1.0'), ('ntu60_xsub', '1.2'), ('synthetic_actions', '1.1')])
def test_train_every_dataset_and_variant(dataset, variant, fixture_data_dir, tmp_path, fast_compile):
  config = smoke_config(dataset, variant, fixture_data_dir, tmp_path / 'run')
  config.eval.protocols = PROTOCOLS.get((dataset, variant), '')
  if 'cross_attn_4_heads' in config.eval.protocols:  # trained with 8 heads, evaluated with 4
    config.model.update(d_model=40, num_heads=8, cross_attn_heads=8)
  summary = experiment.run(config)
  workdir = tmp_path / 'run'
  if config.eval.protocols:
    _check_protocols(dataset, summary['test'], workdir)
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


def test_unknown_protocol_is_rejected_before_training(fixture_data_dir, tmp_path):
  config = smoke_config('n_ucla', '1.0', fixture_data_dir, tmp_path / 'run')
  config.eval.protocols = 'ten_crop'
  with pytest.raises(ValueError, match=r"config.eval.protocols='ten_crop': must be a comma-separated list of"):
    experiment.run(config)
  assert not (tmp_path / 'run' / 'pretrain').exists()


def test_multi_clip_protocol_needs_an_ntu_style_dataset(fixture_data_dir, tmp_path):
  # The protocol itself runs in test_train_every_dataset_and_variant[ntu60_xsub-1.2].
  config = smoke_config('n_ucla', '1.0', fixture_data_dir, tmp_path / 'nucla')
  config.eval.protocols = 'multi_clip'
  with pytest.raises(ValueError, match='multi_clip protocol needs an NTU-style dataset'):
    experiment.run(config)
  assert not (tmp_path / 'nucla' / 'pretrain').exists()
