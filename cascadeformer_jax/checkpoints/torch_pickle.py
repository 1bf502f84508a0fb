"""Reads ``torch.save(state_dict)`` files without PyTorch.

A ``.pt`` file (PyTorch >= 1.6 zip format) is a zip archive with one top folder holding ``data.pkl`` (a pickle
of the state dict in which each tensor is a call to ``torch._utils._rebuild_tensor_v2`` on a persistent storage
reference) and ``data/<key>``, the raw storages. Storages are stored uncompressed, so tensors are returned as
read-only NumPy views of a memory map of the file: nothing is copied until a caller asks for it, which keeps
the conversion of the ~88M-parameter NTU modules within one copy of the weights.

The unpickler is restricted: it resolves only ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
and the ``torch.*Storage`` dtype markers. Any other global is refused before anything is called, so a
malicious pickle cannot execute code.
"""

import collections
import dataclasses
import os
import pickle
import struct
import zipfile
import zlib

import ml_dtypes
import numpy as np


class CheckpointError(ValueError):
  """A checkpoint file is missing, corrupt, unsafe, or does not fit the requested model."""


_STORAGE_DTYPES = {
    'FloatStorage': np.float32,
    'DoubleStorage': np.float64,
    'HalfStorage': np.float16,
    'BFloat16Storage': ml_dtypes.bfloat16,
    'LongStorage': np.int64,
    'IntStorage': np.int32,
    'ShortStorage': np.int16,
    'CharStorage': np.int8,
    'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}

_ZIP_LOCAL_HEADER = struct.Struct('<4sHHHHHIIIHH')
_CRC_CHUNK_BYTES = 1 << 24


@dataclasses.dataclass(frozen=True)
class _StorageType:
  name: str
  dtype: np.dtype


@dataclasses.dataclass(frozen=True)
class _StorageRef:
  key: str
  dtype: np.dtype
  numel: int


@dataclasses.dataclass(frozen=True)
class _TensorRef:
  storage: _StorageRef
  offset: int
  shape: tuple[int, ...]
  stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
  del requires_grad, backward_hooks, metadata  # Irrelevant for weights.
  if not isinstance(storage, _StorageRef):
    raise pickle.UnpicklingError(f'tensor storage must be a persistent storage reference, got {storage!r}')
  return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


class _RestrictedUnpickler(pickle.Unpickler):
  """Rebuilds a state dict of tensors; refuses every other global."""

  def find_class(self, module, name):
    if (module, name) == ('collections', 'OrderedDict'):
      return collections.OrderedDict
    if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
      return _rebuild_tensor_v2
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name, np.dtype(_STORAGE_DTYPES[name]))
    raise pickle.UnpicklingError(
        f'refusing to load global {module}.{name}: only tensors in (ordered) dicts are accepted')

  def persistent_load(self, pid):
    if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != 'storage'
        or not isinstance(pid[1], _StorageType)):
      raise pickle.UnpicklingError(f'unsupported persistent id {pid!r}')
    _, storage_type, key, _, numel = pid
    return _StorageRef(str(key), storage_type.dtype, int(numel))


def _data_offset(file, info: zipfile.ZipInfo) -> int:
  """Byte offset of a stored zip member's data (after its local header)."""
  file.seek(info.header_offset)
  header = file.read(_ZIP_LOCAL_HEADER.size)
  if len(header) != _ZIP_LOCAL_HEADER.size or header[:4] != b'PK\x03\x04':
    raise CheckpointError(f'corrupt zip member {info.filename}')
  name_length, extra_length = _ZIP_LOCAL_HEADER.unpack(header)[-2:]
  return info.header_offset + _ZIP_LOCAL_HEADER.size + name_length + extra_length


def _crc32(buffer: np.ndarray) -> int:
  crc = 0
  flat = buffer.reshape(-1).view(np.uint8)
  for start in range(0, flat.size, _CRC_CHUNK_BYTES):
    crc = zlib.crc32(flat[start:start + _CRC_CHUNK_BYTES], crc)
  return crc


def load_state_dict(path: str | os.PathLike, *, verify_crc: bool = True) -> 'collections.OrderedDict[str, np.ndarray]':
  """Reads a ``torch.save(module.state_dict())`` file without PyTorch.

  Args:
    path: the ``.pt`` file.
    verify_crc: check each storage against the CRC-32 recorded in the archive (catches corrupt bytes).

  Returns:
    An ordered dict name -> read-only NumPy array (a view of a memory map of the file), in the saved order.

  Raises:
    CheckpointError: the file is missing, not a PyTorch zip checkpoint, truncated, corrupt, holds anything
      other than tensors in (ordered) dicts, or is not a flat name -> tensor mapping.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise CheckpointError(f'{path}: no such file')
  try:
    archive = zipfile.ZipFile(path)
  except zipfile.BadZipFile as e:
    with open(path, 'rb') as f:
      magic = f.read(2)
    hint = (' (it looks like a legacy pre-1.6 torch.save file; re-save it with a current PyTorch)'
            if magic == b'\x80\x02' else '')
    raise CheckpointError(f'{path}: not a PyTorch zip checkpoint, or truncated ({e}){hint}') from None
  with archive:
    pickles = [name for name in archive.namelist() if name.endswith('/data.pkl') and name.count('/') == 1]
    if len(pickles) != 1:
      raise CheckpointError(f'{path}: expected exactly one <folder>/data.pkl in the archive, found {pickles}')
    top = pickles[0].split('/')[0]
    byteorder = 'little'
    if f'{top}/byteorder' in archive.namelist():
      byteorder = archive.read(f'{top}/byteorder').decode().strip()
    if byteorder not in ('little', 'big'):
      raise CheckpointError(f'{path}: unknown byteorder {byteorder!r}')
    try:
      state = _RestrictedUnpickler(archive.open(pickles[0])).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, IndexError,
            zipfile.BadZipFile, zlib.error) as e:
      raise CheckpointError(f'{path}: cannot read {pickles[0]}: {e}') from None

    if not isinstance(state, dict):
      raise CheckpointError(f'{path}: expected a state dict (name -> tensor), got {type(state).__name__}')
    for name, value in state.items():
      if not isinstance(name, str) or not isinstance(value, _TensorRef):
        raise CheckpointError(f'{path}: entry {name!r} is not a tensor (got {type(value).__name__}); '
                              'expected a flat state dict of tensors')

    with open(path, 'rb') as file:
      file_map = np.memmap(path, dtype=np.uint8, mode='r')
      storages = {}
      result = collections.OrderedDict()
      for name, ref in state.items():
        storage = storages.get(ref.storage.key)
        if storage is None:
          storage = _map_storage(path, archive, file, file_map, top, ref.storage, byteorder, verify_crc)
          storages[ref.storage.key] = storage
        result[name] = _tensor_view(path, name, storage, ref)
  return result


def _map_storage(path, archive, file, file_map, top, ref: _StorageRef, byteorder,
                 verify_crc) -> np.ndarray:
  member = f'{top}/data/{ref.key}'
  try:
    info = archive.getinfo(member)
  except KeyError:
    raise CheckpointError(f'{path}: storage {member} is missing from the archive') from None
  dtype = ref.dtype.newbyteorder('<' if byteorder == 'little' else '>')
  nbytes = ref.numel * dtype.itemsize
  if info.file_size < nbytes:
    raise CheckpointError(f'{path}: storage {member} holds {info.file_size} bytes, expected {nbytes}')
  if info.compress_type == zipfile.ZIP_STORED:
    start = _data_offset(file, info)
    if start + info.file_size > file_map.size:
      raise CheckpointError(f'{path}: storage {member} extends past the end of the file (truncated?)')
    raw = file_map[start:start + info.file_size]
  else:  # Not written by torch.save, but valid zip: decompress into memory.
    try:
      raw = np.frombuffer(archive.read(member), np.uint8)
    except (zipfile.BadZipFile, zlib.error) as e:
      raise CheckpointError(f'{path}: cannot read {member}: {e}') from None
  if verify_crc and _crc32(raw) != info.CRC:
    raise CheckpointError(f'{path}: storage {member} fails its CRC check (corrupt file)')
  values = raw[:nbytes].view(dtype)
  if byteorder == 'big':
    values = values.astype(dtype.newbyteorder('='))
  return values


def _tensor_view(path: str, name: str, storage: np.ndarray, ref: _TensorRef) -> np.ndarray:
  if len(ref.shape) != len(ref.stride) or any(s < 0 for s in ref.shape + ref.stride) or ref.offset < 0:
    raise CheckpointError(f'{path}: key {name!r} has an invalid size/stride {ref.shape}/{ref.stride}')
  if 0 in ref.shape:
    return np.zeros(ref.shape, storage.dtype)
  last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
  if last >= storage.size:
    raise CheckpointError(f'{path}: key {name!r} reads past the end of its storage')
  itemsize = storage.dtype.itemsize
  view = np.lib.stride_tricks.as_strided(
      storage[ref.offset:], shape=ref.shape, strides=tuple(s * itemsize for s in ref.stride), writeable=False)
  return view
