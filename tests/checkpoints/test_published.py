"""Published-folder conversion: module detection, config checks, clear errors, and model directories."""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import cascadeformer_jax as cfx
from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.checkpoints.torch_pickle import CheckpointError
from cascadeformer_jax.checkpoints.convert import convert_folder
from cascadeformer_jax.checkpoints.torch_pickle import load_state_dict
from cascadeformer_jax.checkpoints.convert import read_published_folder
from cascadeformer_jax.checkpoints import published
from cascadeformer_jax.checkpoints import torch_layout
from cascadeformer_jax.models import presets
from tests import cli_runs
from tests import failure_injection
from tests import golden_cases
from tests.checkpoints import original_layout
from tests.checkpoints import pt_files

pytestmark = pytest.mark.cost(30)  # seconds on 2 cores, roughly: the suite starts long files first

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
EXPECTED_MODULE = {'pretrained': 't1', 'finetuned_T1': 't1', 'finetuned_T2': 't2',
                   'finetuned_cross_attn': 'cross_attention', 'finetuned_head': 'head'}


def _copy_case(golden_dir, name, tmp_path) -> golden_cases.GoldenCase:
  case = golden_cases.load_case(golden_dir, name)
  target = tmp_path / name
  shutil.copytree(case.path, target)
  case.path = target
  return case


@pytest.mark.parametrize('name', golden_cases.CASES)
def test_every_golden_file_is_classified_from_its_keys(golden_dir, name):
  case = golden_cases.load_case(golden_dir, name)
  folder = published.scan_folder(case.path)
  assert set(folder.files) == set(golden_cases.ROLES)
  for role in golden_cases.ROLES:
    assert folder.files[role] == case.file(role)
    info = torch_layout.describe(load_state_dict(case.file(role)), case.file(role))
    assert info.module == EXPECTED_MODULE[role]
    assert info.d_model == case.config.d_model
    if info.module == 't1':
      assert info.form == case.config.variant
      assert info.num_layers == case.config.num_layers
      assert info.pos_len == case.config.pos_len
      assert info.joint_features == case.config.num_joints * case.config.coords
      assert info.penn_naming == (name == 'penn_action_1_0')
      if case.config.variant == '1.2':
        assert info.spatial_form == case.config.spatial_form
    if info.module == 'cross_attention':
      assert info.form == case.config.cross_attention
    if info.module == 'head':
      assert (info.form, info.num_classes) == (case.config.head, case.config.num_classes)


@pytest.mark.parametrize('name', golden_cases.CASES)
def test_independent_layout_description_matches_golden_files(golden_dir, name):
  case = golden_cases.load_case(golden_dir, name)
  expected = original_layout.shapes(case.config)
  for role in golden_cases.ROLES:
    state = load_state_dict(case.file(role))
    assert {k: v.shape for k, v in state.items()} == expected[role], role


def test_golden_sizes_need_an_explicit_config(golden_dir):
  with pytest.raises(CheckpointError, match='match no published model.*pass a config'):
    read_published_folder(golden_dir / 'n_ucla_1_0')


def test_missing_file(golden_dir, tmp_path):
  case = _copy_case(golden_dir, 'n_ucla_1_1', tmp_path)
  case.file('finetuned_T2').unlink()
  with pytest.raises(CheckpointError, match=r'n_ucla_1_1: missing <Prefix>_finetuned_T2\.pt'):
    published.classifier_params(published.scan_folder(case.path), case.config)
  # The pretrained model does not need the fine-tuned files.
  config, params, _ = read_published_folder(case.path, case.config, kinds=('pretrained',))
  assert set(params) == {'pretrained'}


def test_empty_and_absent_folders(tmp_path):
  with pytest.raises(CheckpointError, match='no such checkpoint folder'):
    published.scan_folder(tmp_path / 'absent')
  with pytest.raises(CheckpointError, match=r'no \.pt files'):
    published.scan_folder(tmp_path)


def test_file_of_the_wrong_module(golden_dir, tmp_path):
  case = _copy_case(golden_dir, 'ntu60_1_0', tmp_path)
  shutil.copy(case.file('finetuned_head'), case.file('finetuned_T2'))
  with pytest.raises(CheckpointError, match=r'NTU_finetuned_T2\.pt: the name says finetuned_T2 .* but the keys '
                     'hold a head module'):
    published.scan_folder(case.path)


@pytest.mark.parametrize('change,file_name,key', [
    (dict(d_model=64), 'NUCLA_finetuned_T1.pt', 'pos_embedding'),
    (dict(num_layers=3), 'NUCLA_finetuned_T1.pt', 'transformer_encoder.layers.*'),
    (dict(num_joints=25), 'NUCLA_finetuned_T1.pt', 'reconstruction_head.weight'),
    (dict(num_classes=12), 'NUCLA_finetuned_head.pt', 'fc.weight'),
    (dict(variant='1.0'), 'NUCLA_finetuned_T1.pt', 'joint_conv.0.weight'),
    (dict(cross_attention='ffn'), 'NUCLA_finetuned_cross_attn.pt', 'norm.weight'),
    (dict(head='mlp'), 'NUCLA_finetuned_head.pt', 'fc.weight'),
    (dict(pos_len=64), 'NUCLA_finetuned_T1.pt', 'pos_embedding'),
])
def test_config_disagreeing_with_the_weights(golden_dir, change, file_name, key):
  case = golden_cases.load_case(golden_dir, 'n_ucla_1_1')
  config = case.config.replace(**change)
  pattern = re.escape(f'{file_name}: the weights have ') + '.*' + re.escape(f"(key '{key}') but the config says")
  with pytest.raises(CheckpointError, match=pattern):
    read_published_folder(case.path, config, kinds=('classifier',))


def test_unpublished_ablation_is_rejected(tmp_path):
  state = {'pos_embedding': np.zeros((1, 8, 4)), 'reconstruction_head.fc1.weight': np.zeros((4, 4))}
  path = pt_files.write_state_dict(tmp_path / 'Penn_pretrained.pt', state)
  with pytest.raises(CheckpointError, match=r'Penn_pretrained\.pt: key .reconstruction_head\.fc1\.weight. belongs to '
                     'a residual-MLP reconstruction decoder, an unpublished ablation'):
    published.scan_folder(tmp_path)


def test_unexpected_key_is_reported(golden_dir, tmp_path):
  case = _copy_case(golden_dir, 'n_ucla_1_0', tmp_path)
  state = dict(load_state_dict(case.file('finetuned_head')))
  state['fc.extra'] = np.zeros(3, np.float32)
  pt_files.write_state_dict(case.file('finetuned_head'), state)
  with pytest.raises(CheckpointError, match=r"NUCLA_finetuned_head\.pt: unexpected keys \['fc\.extra'\]"):
    read_published_folder(case.path, case.config)


def test_published_sizes_are_recognised_without_a_config(tmp_path):
  expected = presets.published_model_config('penn_action', '1.0')
  for role, tensors in original_layout.random_state_dicts(expected).items():
    pt_files.write_state_dict(tmp_path / f'Penn_{role}.pt', tensors)
  classifier = cfx.load_classifier(tmp_path)
  assert classifier.config == expected
  clips = np.random.default_rng(0).uniform(0, 400, (2, 30, 13, 2)).astype(np.float32)
  logits = classifier(clips)
  assert logits.shape == (2, 15) and np.all(np.isfinite(logits))
  reconstruction = cfx.load_pretrained(tmp_path).reconstruct(clips)
  assert reconstruction.shape == clips.shape


def test_model_dir_round_trip_in_a_fresh_process(golden_dir, tmp_path):
  case = golden_cases.load_case(golden_dir, 'ntu60_1_2')
  out = convert_folder(case.path, tmp_path / 'converted', case.config)
  np.save(tmp_path / 'x.npy', case.arrays['x'])
  # The fresh process reads the model directory first, then (for the comparison) the published folder.
  script = f"""
import pathlib
import numpy as np, cascadeformer_jax as cfx
from tests import golden_cases

x = np.load({str(tmp_path / 'x.npy')!r})
np.save({str(tmp_path / 'logits.npy')!r}, cfx.load_classifier({str(out)!r})(x))
np.save({str(tmp_path / 'recon.npy')!r}, cfx.load_pretrained({str(out)!r}).reconstruct(x))
case = golden_cases.load_case(pathlib.Path({str(golden_dir)!r}), {case.name!r})
np.save({str(tmp_path / 'direct_logits.npy')!r}, cfx.load_classifier(case.path, case.config)(x))
np.save({str(tmp_path / 'direct_recon.npy')!r}, cfx.load_pretrained(case.path, case.config).reconstruct(x))
"""
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=300)
  assert result.returncode == 0, result.stderr
  restored = np.load(tmp_path / 'logits.npy')
  np.testing.assert_array_equal(restored, np.load(tmp_path / 'direct_logits.npy'))
  np.testing.assert_allclose(restored, case.arrays['logits'], rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(np.load(tmp_path / 'recon.npy'), np.load(tmp_path / 'direct_recon.npy'))


def test_model_dir_checks(golden_dir, tmp_path):
  case = golden_cases.load_case(golden_dir, 'penn_action_1_2')
  out = convert_folder(case.path, tmp_path / 'converted', case.config)
  with pytest.raises(checkpoint_io.ModelDirError, match='different architecture.*num_layers: stored 2, '
                     'requested 3'):
    cfx.load_classifier(out, case.config.replace(num_layers=3))
  with pytest.raises(ValueError, match='change the parameter shapes'):
    cfx.load_classifier(out, d_model=64)
  four_heads = cfx.load_classifier(out, cross_attn_heads=4)
  np.testing.assert_allclose(four_heads(case.arrays['x']), case.arrays['logits_cross_attn_4_heads'],
                             rtol=1e-4, atol=1e-4)
  with pytest.raises(checkpoint_io.ModelDirError, match='already exists'):
    convert_folder(case.path, out, case.config)
  (out / 'model.json').unlink()
  with pytest.raises(CheckpointError, match='no .pt files'):
    cfx.load_classifier(out)


def test_model_dir_with_a_damaged_or_missing_part(golden_dir, tmp_path):
  case = golden_cases.load_case(golden_dir, 'n_ucla_1_0')
  out = convert_folder(case.path, tmp_path / 'converted', case.config)
  # A truncated file is named in one line, whichever it is.
  data_file = max((path for path in (out / 'classifier').rglob('*') if path.parent.name == 'd'),
                  key=lambda path: path.stat().st_size)
  os.truncate(data_file, data_file.stat().st_size // 2)
  with pytest.raises(checkpoint_io.ModelDirError, match=rf'^{re.escape(str(data_file))}: Requested byte range .* '
                     rf'\(the classifier model of {re.escape(str(out))} is damaged; write or copy it again\)$'):
    cfx.load_classifier(out)
  metadata = out / 'pretrained' / '_METADATA'
  os.truncate(metadata, metadata.stat().st_size // 2)
  with pytest.raises(checkpoint_io.ModelDirError, match=rf'^{re.escape(str(metadata))}: invalid JSON, truncated or '
                     'damaged'):
    cfx.load_pretrained(out)
  model_json = out / 'model.json'
  intact = model_json.read_bytes()
  model_json.write_bytes(intact[:len(intact) // 2])
  with pytest.raises(checkpoint_io.ModelDirError, match=rf'^{re.escape(str(model_json))}: invalid JSON'):
    cfx.load_pretrained(out)
  model_json.write_bytes(intact)
  shutil.rmtree(out / 'pretrained')
  with pytest.raises(checkpoint_io.ModelDirError, match=r'converted/pretrained: unreadable checkpoint'):
    cfx.load_pretrained(out)


def test_convert_cli(golden_dir, tmp_path):
  case = golden_cases.load_case(golden_dir, 'penn_action_1_1')
  config_file = tmp_path / 'case_config.py'
  config_file.write_text(
      'from tests.golden_cases import model_config_from_meta\n'
      'import json, ml_collections, pathlib\n'
      'def get_config():\n'
      f'  meta = json.loads(pathlib.Path({str(case.path / "meta.json")!r}).read_text())\n'
      '  return ml_collections.ConfigDict({"model": model_config_from_meta(meta).to_dict()})\n')
  # Both command lines in one process; without a config, the golden sizes match no published model.
  (converted, refused), process_stderr = cli_runs.run_in_one_process('cascadeformer_jax.convert', [
      [f'--checkpoint_dir={case.path}', f'--config={config_file}', f'--output_dir={tmp_path / "out"}'],
      [f'--checkpoint_dir={case.path}', f'--output_dir={tmp_path / "out2"}']], timeout=300)
  assert converted.returncode == 0, converted.stderr
  assert f'wrote {tmp_path / "out"}' in converted.stdout
  assert 'INFO' not in converted.stderr + process_stderr  # Quiet by default.
  logits = cfx.load_classifier(tmp_path / 'out')(case.arrays['x'])
  np.testing.assert_allclose(logits, case.arrays['logits'], rtol=1e-4, atol=1e-4)
  # One clear line, exit code 1.
  assert refused.returncode == 1
  assert 'error:' in refused.stderr and 'match no published model' in refused.stderr
  assert not (tmp_path / 'out2').exists()


@pytest.fixture(scope='module')
def full_disk_runs(golden_dir, tmp_path_factory):
  """Conversions onto a disk that fills up and onto one already full, in one process (both need a tmpfs)."""
  case = golden_cases.load_case(golden_dir, 'penn_action_1_1')  # its model directory takes 3.7 MB
  folder = tmp_path_factory.mktemp('full_disk')
  config_file = folder / 'case_config.py'  # Penn Action's experiment config with the golden case's model
  config_file.write_text(
      'import json, pathlib\n'
      'from cascadeformer_jax.config import configuration\n'
      'from tests.golden_cases import model_config_from_meta\n'
      'def get_config():\n'
      '  config = configuration.load_config_file("configs/penn_v1_1.py")\n'
      f'  meta = json.loads(pathlib.Path({str(case.path / "meta.json")!r}).read_text())\n'
      '  config.model = model_config_from_meta(meta).to_dict()\n'
      '  return config\n')
  disks = {'fills_up': folder / 'fills_up', 'already_full': folder / 'already_full'}
  tested = [name for name in disks if name == 'fills_up' or failure_injection.CAN_MOUNT]
  command_lines = [[f'--checkpoint_dir={case.path}', f'--config={config_file}',
                    f'--output_dir={disks[name] / "converted"}'] for name in tested]
  env = {key: value for key, value in os.environ.items() if key != 'CASCADEFORMER_DEBUG'}

  def run(command, **kwargs):
    return failure_injection.run_with_full_disks(command, disks['fills_up'], disks['already_full'], 1 << 20, **kwargs)

  results, process_stderr = cli_runs.run_in_one_process('cascadeformer_jax.convert', command_lines, timeout=300,
                                                        run=run, env=env)
  return dict(zip(tested, results)), disks, process_stderr


@pytest.mark.parametrize('disk', ['fills_up', 'already_full'])
def test_convert_onto_a_full_disk_prints_one_line(full_disk_runs, disk):
  results, disks, process_stderr = full_disk_runs
  if disk not in results:
    pytest.skip('a folder on a full disk needs a tmpfs (root with mount rights)')
  result, out = results[disk], disks[disk] / 'converted'
  assert result.returncode == 1, result.stderr[-3000:]
  # No traceback: not Orbax's, nor TensorStore's 'Event loop is closed' from the threads of the failed writes.
  assert not process_stderr.strip(), process_stderr[-3000:]
  lines = (result.stdout + result.stderr).splitlines()
  assert len(lines) == 1 and lines[0].startswith(f'error: could not write the model directory {out}: '), lines[-40:]
  assert any(reason in lines[0] for reason in failure_injection.FULL_DISK_REASONS), lines
