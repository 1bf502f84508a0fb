"""Writers of small `.pt`-format zip files for tests (valid, malformed and malicious)."""

import pathlib
import pickle
import zipfile

import numpy as np


def tensor_pickle(tensors: dict[str, tuple[str, tuple[int, ...]]]) -> bytes:
  """Protocol-2 pickle of an OrderedDict name -> _rebuild_tensor_v2(storage key, size), as torch.save writes it.

  ``tensors`` maps a name to (storage key, shape); each storage is float32 and holds exactly that tensor.
  """
  out = bytearray(b'\x80\x02ccollections\nOrderedDict\nq\x00)R(')
  for name, (key, shape) in tensors.items():
    numel = int(np.prod(shape)) if shape else 1
    strides = tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))
    out += _unicode(name)
    out += b'ctorch._utils\n_rebuild_tensor_v2\n('
    out += b'(' + _unicode('storage') + b'ctorch\nFloatStorage\n' + _unicode(key) + _unicode('cpu')
    out += _int(numel) + b'tQ'
    out += _int(0) + _tuple(shape) + _tuple(strides) + b'\x89' + b'ccollections\nOrderedDict\n)R' + b'tR'
  out += b'u.'
  return bytes(out)


def _unicode(text: str) -> bytes:
  data = text.encode()
  return b'X' + len(data).to_bytes(4, 'little') + data


def _int(value: int) -> bytes:
  return b'J' + int(value).to_bytes(4, 'little', signed=True)


def _tuple(values) -> bytes:
  return b'(' + b''.join(_int(v) for v in values) + b't'


def write_pt(path: pathlib.Path, data_pkl: bytes, storages: dict[str, bytes] | None = None,
             top: str | None = None) -> pathlib.Path:
  """Writes a zip in torch.save's layout: <top>/data.pkl, <top>/data/<key>, <top>/byteorder."""
  top = top or path.stem
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
    archive.writestr(f'{top}/data.pkl', data_pkl)
    archive.writestr(f'{top}/byteorder', 'little')
    for key, raw in (storages or {}).items():
      archive.writestr(f'{top}/data/{key}', raw)
    archive.writestr(f'{top}/version', '3\n')
  return path


def write_state_dict(path: pathlib.Path, tensors: dict[str, np.ndarray]) -> pathlib.Path:
  """Writes float32 tensors in the .pt layout (one storage per tensor)."""
  spec, storages = {}, {}
  for i, (name, value) in enumerate(tensors.items()):
    value = np.ascontiguousarray(value, np.float32)
    spec[name] = (str(i), value.shape)
    storages[str(i)] = value.tobytes()
  return write_pt(path, tensor_pickle(spec), storages)


def global_call_pickle(module: str, name: str, argument: str) -> bytes:
  """A pickle that calls ``module.name(argument)`` when loaded by an unrestricted unpickler."""
  return b'\x80\x02c' + f'{module}\n{name}\n'.encode() + b'(' + _unicode(argument) + b'tR.'


def plain_pickle(obj) -> bytes:
  return pickle.dumps(obj, protocol=2)
