"""Reading arrays from (possibly 10 GB) `.npz` files without loading them whole.

CTR-GCN writes `NTU60_CS.npz` / `NTU60_CV.npz` with `np.savez` (no compression), so every member is a plain `.npy`
stored inside the zip and can be memory-mapped. Compressed members fall back to `np.load` (read into memory).
"""

import struct
import zipfile

import numpy as np

_LOCAL_HEADER = struct.Struct('<4sHHHHHIIIHH')  # zip local file header: 30 bytes


class NpzError(ValueError):
  """The file is not a readable npz or lacks a member (message names both)."""


def load_member(path: str, key: str) -> np.ndarray:
  """Array `key` of the npz at `path`: a read-only memmap when stored uncompressed, else an in-memory array."""
  try:
    with zipfile.ZipFile(path) as archive:
      try:
        info = archive.getinfo(key + '.npy')
      except KeyError:
        members = [name[:-4] for name in archive.namelist() if name.endswith('.npy')]
        raise NpzError(f'{path}: no array {key!r} (found {members})') from None
      if info.compress_type == zipfile.ZIP_STORED:
        with open(path, 'rb') as f:
          f.seek(info.header_offset)
          header = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
          if header[0] != b'PK\x03\x04':
            raise NpzError(f'{path}: corrupt zip entry for {key!r}')
          data_start = info.header_offset + _LOCAL_HEADER.size + header[9] + header[10]
          f.seek(data_start)
          version = np.lib.format.read_magic(f)
          if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
          else:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
          offset = f.tell()
        if dtype.hasobject:
          raise NpzError(f'{path}: array {key!r} holds Python objects; expected numbers')
        expected_end = data_start + info.file_size
        if offset + int(np.prod(shape)) * dtype.itemsize > expected_end or expected_end > _file_size(path):
          raise NpzError(f'{path}: array {key!r} is truncated')
        return np.memmap(path, dtype=dtype, mode='r', offset=offset, shape=shape,
                         order='F' if fortran_order else 'C')
      with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)
  except NpzError:
    raise
  except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
    raise NpzError(f'{path}: cannot read array {key!r} ({type(e).__name__}: {e})') from e


def _file_size(path: str) -> int:
  with open(path, 'rb') as f:
    return f.seek(0, 2)
