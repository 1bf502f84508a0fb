"""The torch-free .pt reader: exact agreement with torch.load, and refusal of everything unsafe or broken."""

import pathlib
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from cascadeformer_jax.checkpoints.torch_pickle import CheckpointError
from cascadeformer_jax.checkpoints.torch_pickle import load_state_dict
from tests.checkpoints import pt_files
from tests import golden_cases


def _golden_files(golden_dir):
  return sorted(p for case in golden_cases.CASES for p in (golden_dir / case).glob('*.pt'))


def test_reader_equals_torch_load_on_every_golden_file(golden_dir):
  torch = pytest.importorskip('torch', reason='PyTorch is not installed (optional extra [torch])')
  files = _golden_files(golden_dir)
  assert len(files) == 45
  for path in files:
    ours = load_state_dict(path)
    reference = torch.load(path, map_location='cpu', weights_only=True)
    assert list(ours) == list(reference), path
    for key, tensor in reference.items():
      assert ours[key].dtype == np.float32
      np.testing.assert_array_equal(ours[key], tensor.numpy(), err_msg=f'{path}:{key}')


def test_reader_handles_noncontiguous_and_shared_storages(tmp_path):
  torch = pytest.importorskip('torch', reason='PyTorch is not installed (optional extra [torch])')
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
  state = {'transposed': base.t(), 'slice': base[1:3, 2:5], 'same': base, 'double': base.double(),
           'half': base.half(), 'scalar': torch.tensor(3.5)}
  path = tmp_path / 'views.pt'
  torch.save(state, path)
  ours = load_state_dict(path)
  for key, tensor in state.items():
    assert ours[key].dtype == tensor.numpy().dtype
    np.testing.assert_array_equal(ours[key], tensor.numpy(), err_msg=key)


def test_arrays_are_read_only_views(golden_dir):
  state = load_state_dict(golden_dir / 'n_ucla_1_0' / 'NUCLA_finetuned_head.pt')
  with pytest.raises(ValueError):
    state['fc.weight'][0, 0] = 1.0


def test_written_state_dict_round_trips(tmp_path):
  tensors = {'a.weight': np.arange(6, dtype=np.float32).reshape(2, 3), 'a.bias': np.array([1.5, -2.0])}
  state = load_state_dict(pt_files.write_state_dict(tmp_path / 'x.pt', tensors))
  assert list(state) == ['a.weight', 'a.bias']
  np.testing.assert_array_equal(state['a.weight'], tensors['a.weight'])
  np.testing.assert_array_equal(state['a.bias'], tensors['a.bias'].astype(np.float32))


def test_conversion_never_imports_torch(golden_dir, tmp_path):
  script = f"""
import pathlib, sys
sys.modules['torch'] = None  # Any `import torch` now fails.
from cascadeformer_jax.checkpoints.convert import convert_folder
from tests.golden_cases import load_case
case = load_case(pathlib.Path({str(golden_dir)!r}), 'n_ucla_1_2')
convert_folder(case.path, {str(tmp_path / 'out')!r}, case.config)
assert sys.modules['torch'] is None
print('converted without torch')
"""
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          cwd=pathlib.Path(__file__).resolve().parents[2], timeout=300)
  assert result.returncode == 0, result.stderr
  assert 'converted without torch' in result.stdout


@pytest.mark.parametrize('module,name', [('os', 'system'), ('builtins', 'eval'), ('subprocess', 'call'),
                                         ('torch.nn', 'Module'), ('torch._utils', '_rebuild_parameter')])
def test_other_globals_are_refused_and_never_called(tmp_path, module, name):
  marker = tmp_path / 'executed'
  payload = pt_files.global_call_pickle(module, name, f'touch {marker}')
  path = pt_files.write_pt(tmp_path / 'evil.pt', payload)
  with pytest.raises(CheckpointError, match=rf'evil\.pt.*refusing to load global {module}\.{name}'):
    load_state_dict(path)
  assert not marker.exists()


def test_missing_file(tmp_path):
  with pytest.raises(CheckpointError, match=r'nothere\.pt: no such file'):
    load_state_dict(tmp_path / 'nothere.pt')


def test_not_a_zip(tmp_path):
  path = tmp_path / 'text.pt'
  path.write_text('hello')
  with pytest.raises(CheckpointError, match=r'text\.pt: not a PyTorch zip checkpoint'):
    load_state_dict(path)


def test_legacy_format_gets_a_hint(tmp_path):
  path = tmp_path / 'legacy.pt'
  path.write_bytes(pt_files.plain_pickle({'a': 1}))
  with pytest.raises(CheckpointError, match='legacy pre-1.6'):
    load_state_dict(path)


def test_truncated_file(golden_dir, tmp_path):
  data = (golden_dir / 'n_ucla_1_0' / 'NUCLA_finetuned_T2.pt').read_bytes()
  path = tmp_path / 'NUCLA_finetuned_T2.pt'
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(CheckpointError, match=r'NUCLA_finetuned_T2\.pt: not a PyTorch zip checkpoint, or truncated'):
    load_state_dict(path)


def test_corrupt_storage_fails_its_crc(golden_dir, tmp_path):
  source = golden_dir / 'n_ucla_1_0' / 'NUCLA_finetuned_head.pt'
  path = tmp_path / 'head.pt'
  shutil.copy(source, path)
  with zipfile.ZipFile(path) as archive:
    info = archive.getinfo('NUCLA_finetuned_head/data/0')
  data = bytearray(path.read_bytes())
  name_length, extra_length = struct.unpack('<HH', data[info.header_offset + 26:info.header_offset + 30])
  offset = info.header_offset + 30 + name_length + extra_length + 8  # A byte inside the storage.
  data[offset] ^= 0xFF
  path.write_bytes(bytes(data))
  with pytest.raises(CheckpointError, match=r'head\.pt: storage NUCLA_finetuned_head/data/0 fails its CRC'):
    load_state_dict(path)


def test_missing_storage(tmp_path):
  payload = pt_files.tensor_pickle({'w': ('0', (2, 2))})
  path = pt_files.write_pt(tmp_path / 'nostorage.pt', payload, storages={})
  with pytest.raises(CheckpointError, match=r'nostorage\.pt: storage nostorage/data/0 is missing'):
    load_state_dict(path)


def test_short_storage(tmp_path):
  payload = pt_files.tensor_pickle({'w': ('0', (2, 2))})
  path = pt_files.write_pt(tmp_path / 'short.pt', payload, storages={'0': b'\0' * 8})
  with pytest.raises(CheckpointError, match=r'short\.pt: storage short/data/0 holds 8 bytes, expected 16'):
    load_state_dict(path)


def test_non_tensor_entries_are_refused(tmp_path):
  path = pt_files.write_pt(tmp_path / 'ints.pt', pt_files.plain_pickle({'epoch': 3}))
  with pytest.raises(CheckpointError, match=r"ints\.pt: entry 'epoch' is not a tensor"):
    load_state_dict(path)


def test_non_dict_is_refused(tmp_path):
  path = pt_files.write_pt(tmp_path / 'list.pt', pt_files.plain_pickle([1, 2]))
  with pytest.raises(CheckpointError, match=r'list\.pt: expected a state dict'):
    load_state_dict(path)


def test_archive_without_data_pkl(tmp_path):
  path = tmp_path / 'empty.pt'
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr('empty/version', '3')
  with pytest.raises(CheckpointError, match=r'empty\.pt: expected exactly one <folder>/data.pkl'):
    load_state_dict(path)
