"""Tests of the PyTorch reference implementation against the parity goldens."""

import json
import os
import shutil

import numpy as np
import pytest

torch = pytest.importorskip(
    'torch', reason='PyTorch is optional (pip install torch==2.13.0) and only needed for the benchmark baseline')

from benchmarks import torch_reference as tr  # pylint: disable=g-import-not-at-top

CASES = ('penn_action_1_0', 'penn_action_1_1', 'penn_action_1_2', 'n_ucla_1_0', 'n_ucla_1_1', 'n_ucla_1_2',
         'ntu60_1_0', 'ntu60_1_1', 'ntu60_1_2')
FOUR_HEAD_CASES = tuple(case for case in CASES if not case.startswith('ntu'))
CLASSIFIER_KEYS = ('t1_features', 't2_features', 'fused', 'pooled', 'logits')


def _golden(golden_dir, case):
  with np.load(golden_dir / case / 'golden.npz') as arrays:
    return dict(arrays)


@pytest.mark.parametrize('case', CASES)
def test_reproduces_golden_outputs(golden_dir, case):
  golden = _golden(golden_dir, case)
  loaded = tr.load_golden_case(golden_dir / case)
  with torch.no_grad():
    outputs = loaded.classifier.intermediates(torch.from_numpy(golden['x']))
    recon = loaded.pretrainer(torch.from_numpy(golden['x_masked']))
    loss = loaded.pretrainer.loss(torch.from_numpy(golden['x']), torch.from_numpy(golden['mask']))
  for key in CLASSIFIER_KEYS:
    np.testing.assert_allclose(outputs[key].numpy(), golden[key], rtol=1e-4, atol=1e-4, err_msg=key)
  np.testing.assert_allclose(recon.numpy(), golden['recon'], rtol=1e-4, atol=1e-4, err_msg='recon')
  np.testing.assert_allclose(loss.numpy(), golden['masked_mse'], rtol=1e-5, err_msg='masked_mse')


@pytest.mark.parametrize('case', FOUR_HEAD_CASES)
def test_four_head_cross_attention_reproduces_original_evaluation(golden_dir, case):
  golden = _golden(golden_dir, case)
  loaded = tr.load_golden_case(golden_dir / case, cross_attn_heads=4)
  assert loaded.classifier.cross_attn.cross_attention.num_heads == 4
  with torch.no_grad():
    logits = loaded.classifier(torch.from_numpy(golden['x'])).numpy()
  np.testing.assert_allclose(logits, golden['logits_cross_attn_4_heads'], rtol=1e-4, atol=1e-4)
  # The head count must matter at this tolerance, or the comparison above proves nothing.
  assert np.abs(logits - golden['logits']).max() > 1e-3


def test_random_mask_has_exact_count_and_zeroes_all_coordinates():
  generator = torch.Generator().manual_seed(0)
  for batch, frames, joints in ((3, 12, 13), (2, 64, 25), (4, 1, 3)):
    mask = tr.random_mask(batch, frames, joints, generator=generator)
    assert mask.dtype == torch.bool and mask.shape == (batch, frames, joints)
    expected = max(1, int(0.3 * frames * joints))
    assert mask.reshape(batch, -1).sum(dim=1).tolist() == [expected] * batch
  x = torch.randn(3, 12, 13, 2) + 5.0  # no exact zeros before masking
  mask = tr.random_mask(3, 12, 13, generator=generator)
  masked = tr.apply_mask(x, mask)
  assert torch.all(masked[mask] == 0.0)
  assert torch.equal(masked[~mask], x[~mask])


def test_random_mask_is_uniform_and_differs_per_clip():
  generator = torch.Generator().manual_seed(1)
  mask = tr.random_mask(4000, 5, 4, generator=generator)  # 6 of 20 slots per clip
  frequency = mask.float().mean(dim=0)
  assert torch.all((frequency - 0.3).abs() < 0.04), frequency  # std of each frequency is 0.007
  assert len({tuple(clip.reshape(-1).tolist()) for clip in mask[:10]}) == 10


def test_masked_mse_matches_a_direct_formula():
  generator = torch.Generator().manual_seed(2)
  recon, target = torch.randn(2, 4, 3, 2, generator=generator), torch.randn(2, 4, 3, 2, generator=generator)
  mask = torch.zeros(2, 4, 3, dtype=torch.bool)
  mask[0, 1, 2] = mask[1, 3, 0] = True
  expected = (((recon[0, 1, 2] - target[0, 1, 2]) ** 2).sum() + ((recon[1, 3, 0] - target[1, 3, 0]) ** 2).sum()) / 4
  torch.testing.assert_close(tr.masked_mse(recon, target, mask), expected)


def _small_config(layout, variant):
  if layout == 'ntu':
    # d % J == 0 for the concat embedding: spatial width 50 / 25 = 2 with 2 heads.
    return tr.Config.for_layout(variant=variant, layout='ntu', num_joints=25, coords=3, d_model=50,
                                num_heads=2, num_layers=1, pos_len=64, num_classes=60)
  joints, coords, classes = (13, 2, 15) if layout == 'penn' else (20, 3, 10)
  return tr.Config.for_layout(variant=variant, layout=layout, num_joints=joints, coords=coords, d_model=16,
                              num_heads=4, num_layers=1, pos_len=32, num_classes=classes)


def _flat_parameters(module):
  return torch.cat([parameter.detach().reshape(-1) for parameter in module.parameters()]).clone()


@pytest.mark.parametrize('layout', tr.LAYOUTS)
@pytest.mark.parametrize('variant', tr.VARIANTS)
def test_training_steps_update_parameters_without_nan(layout, variant):
  config = _small_config(layout, variant)
  generator = torch.Generator().manual_seed(3)
  x = torch.randn(2, 8, config.num_joints, config.coords, generator=generator)
  if layout == 'penn':
    x = 50.0 * x + 200.0  # pixel-scale, as Penn's inputs
  labels = torch.tensor([0, config.num_classes - 1])

  finetune = tr.build_finetune_step(config, seed=0)
  before = _flat_parameters(finetune.model)
  loss = finetune.step(x, labels)
  after = _flat_parameters(finetune.model)
  assert finetune.model.training
  assert torch.isfinite(loss) and torch.all(torch.isfinite(after))
  assert not torch.equal(before, after)

  pretrain = tr.build_pretrain_step(config, seed=0)
  before = _flat_parameters(pretrain.model)
  loss = pretrain.step(x)
  after = _flat_parameters(pretrain.model)
  assert torch.isfinite(loss) and loss > 0 and torch.all(torch.isfinite(after))
  assert not torch.equal(before, after)


def test_ntu_pretraining_follows_the_per_step_warmup_cosine_schedule():
  config = _small_config('ntu', '1.0')
  pretrain = tr.build_pretrain_step(config, total_steps=100)
  assert pretrain.optimizer.param_groups[0]['lr'] == 0.0  # HF warmup starts at 0
  pretrain.step(torch.randn(2, 8, 25, 3))
  assert pretrain.optimizer.param_groups[0]['lr'] == pytest.approx(1e-4 / 5)  # warmup int(0.05 * 100) = 5
  assert tr.warmup_cosine_factor(5, 5, 100) == pytest.approx(1.0)
  assert tr.warmup_cosine_factor(100, 5, 100) == pytest.approx(0.0)


def test_training_step_builders_use_all_cores():
  tr.build_finetune_step(_small_config('nucla', '1.0'))
  assert torch.get_num_threads() == os.cpu_count()


@pytest.mark.parametrize('dataset, variant, millions', [
    ('penn_action', '1.0', (5.53, 5.26, 0.264)),
    ('ntu60_xsub', '1.0', (88.39, 88.22, 3.55, 0.64)),
    ('ntu60_xview', '1.0', (37.94, 37.83)),
    ('ntu60_xsub', '1.2', (93.79,)),
    ('ntu60_xview', '1.2', (47.05,)),
])
def test_published_configs_have_the_published_parameter_counts(dataset, variant, millions):
  with torch.device('meta'):  # shapes only, no memory
    model = tr.Classifier(tr.published_config(dataset, variant))
  modules = (model.t1, model.t2, model.cross_attn, model.head)
  for module, expected in zip(modules, millions):
    count = sum(parameter.numel() for parameter in module.parameters())
    assert count / 1e6 == pytest.approx(expected, abs=0.006)


def test_config_rejects_bad_values():
  fields = dict(variant='1.0', layout='nucla', num_joints=20, coords=3, d_model=32, num_heads=8, num_layers=2,
                pos_len=64, num_classes=10)
  tr.Config(**fields)
  with pytest.raises(ValueError, match='variant'):
    tr.Config(**{**fields, 'variant': '1.3'})
  with pytest.raises(ValueError, match='layout'):
    tr.Config(**{**fields, 'layout': 'kinetics'})
  with pytest.raises(ValueError, match='num_heads'):
    tr.Config(**{**fields, 'num_heads': 5})
  with pytest.raises(ValueError, match='cross_attn_heads'):
    tr.Config(**{**fields, 'cross_attn_heads': 3})
  with pytest.raises(ValueError, match='num_layers'):
    tr.Config(**{**fields, 'num_layers': 0})
  with pytest.raises(ValueError, match='d_model'):
    tr.Config(**{**fields, 'layout': 'ntu', 'variant': '1.2', 'num_joints': 25, 'd_model': 60, 'num_heads': 4})
  with pytest.raises(ValueError, match='dataset'):
    tr.published_config('kinetics')


def test_model_rejects_bad_inputs():
  config = _small_config('nucla', '1.0')
  t1 = tr.T1(config)
  with pytest.raises(ValueError, match=r'x: expected shape \(B, T, 20, 3\)'):
    t1.encode(torch.zeros(2, 8, 20, 2))
  with pytest.raises(ValueError, match='exceed the positional table length 32'):
    t1.encode(torch.zeros(1, 33, 20, 3))
  with pytest.raises(ValueError, match='mask'):
    tr.masked_mse(torch.zeros(1, 4, 20, 3), torch.zeros(1, 4, 20, 3), torch.zeros(1, 4, 19, dtype=torch.bool))
  with pytest.raises(ValueError, match='mask'):
    tr.apply_mask(torch.zeros(1, 4, 20, 3), torch.zeros(1, 4, 20))
  with pytest.raises(ValueError, match='recon'):
    tr.masked_mse(torch.zeros(1, 4, 20, 3), torch.zeros(1, 5, 20, 3), torch.zeros(1, 5, 20, dtype=torch.bool))


@pytest.fixture
def case_copy(golden_dir, tmp_path):
  destination = tmp_path / 'penn_action_1_0'
  shutil.copytree(golden_dir / 'penn_action_1_0', destination)
  return destination


def _edit_meta(case_dir, edit):
  meta_path = case_dir / 'meta.json'
  meta = json.loads(meta_path.read_text())
  edit(meta)
  meta_path.write_text(json.dumps(meta))


def test_load_golden_case_reports_bad_files(case_copy, tmp_path):
  with pytest.raises(FileNotFoundError, match='meta.json not found'):
    tr.load_golden_case(tmp_path / 'absent')

  _edit_meta(case_copy, lambda meta: meta.pop('d_model'))
  with pytest.raises(KeyError, match=r"meta.json: missing key\(s\) \['d_model'\]"):
    tr.load_golden_case(case_copy)
  _edit_meta(case_copy, lambda meta: meta.update(d_model=32, variant='2.0'))
  with pytest.raises(ValueError, match='meta.json: variant'):
    tr.load_golden_case(case_copy)
  _edit_meta(case_copy, lambda meta: meta.update(variant='1.0', num_layers=3))
  with pytest.raises(ValueError, match=r'(?s)Penn_pretrained.pt: does not match T1.*transformer_encoder.layers.2'):
    tr.load_golden_case(case_copy)
  _edit_meta(case_copy, lambda meta: meta.update(num_layers=2))
  (case_copy / 'Penn_finetuned_head.pt').unlink()
  with pytest.raises(FileNotFoundError, match='Penn_finetuned_head.pt: checkpoint file not found'):
    tr.load_golden_case(case_copy)
  _edit_meta(case_copy, lambda meta: meta['files'].pop('finetuned_head'))
  with pytest.raises(KeyError, match=r"files is missing role\(s\) \['finetuned_head'\]"):
    tr.load_golden_case(case_copy)
  (case_copy / 'meta.json').write_text('{not json')
  with pytest.raises(ValueError, match='meta.json: not valid JSON'):
    tr.load_golden_case(case_copy)
