"""Reads and checks a skeleton folder (`dataset.json`, `labels.csv`, clips); no TFDS involved.

The contract (also in the builder's MANUAL_DOWNLOAD_INSTRUCTIONS):

  my_dataset/
    dataset.json   {"name": "my_dataset", "layout": "coco17", "coords": 2, "max_persons": 1, ...}
    labels.csv     path,label,split   (split: train | test | validation; or a group column and a split rule)
    clips/...      .npy | .npz (array 'skeleton') | .json (a nested list, or {"skeleton": nested list})
                   shaped (T, J, C) or (T, M, J, C), any T >= 1

dataset.json keys: `name` (letters, digits, '_', '-', '.'; names the built dataset), `layout` (a name of
`cascadeformer_jax.data.layouts` or {"joints": [...], "parents": [...]}), `coords` (2 or 3), `max_persons`
(default 1; clips with fewer persons are zero-padded), `classes` (optional: the class order; otherwise the sorted
labels), `split` (optional rule instead of a split column: {"column": "subject", "test": ["s03", ...]} puts rows
whose column value is listed into test and the others into train; {"column": ..., "test_fraction": 0.25,
"seed": 0} draws that fraction of the column's values for test), `bad_values` ("error" refuses NaN/inf,
"zero" sets them to 0 and counts them), `description` (free text).

`check_folder` reads every row and every clip and returns the rows, or raises one DatasetFormatError listing every
problem (the first 20 and the count), each with its file, line and column.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import pathlib
import posixpath
import re
import tempfile
import time
from typing import Any

from etils import epath
import numpy as np

from cascadeformer_jax.data import layouts
from data_builders import _common

DATASET_FILE = 'dataset.json'
LABELS_FILE = 'labels.csv'
SPLITS = ('train', 'test', 'validation')
REQUIRED_SPLITS = ('train', 'test')
CLIP_SUFFIXES = ('.npy', '.npz', '.json')
MAX_LISTED_PROBLEMS = 20
_NAME_PATTERN = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.\-]*')
_KEYS = ('name', 'layout', 'coords', 'max_persons', 'classes', 'split', 'bad_values', 'description')


@dataclasses.dataclass(frozen=True)
class SplitRule:
  """Split by a group column: `test` values, or a seeded `test_fraction` of the column's distinct values."""
  column: str
  test: tuple[str, ...] = ()
  test_fraction: float = 0.0
  seed: int = 0

  def to_dict(self) -> dict[str, Any]:
    if self.test:
      return {'column': self.column, 'test': list(self.test)}
    return {'column': self.column, 'test_fraction': self.test_fraction, 'seed': self.seed}

  def test_values(self, values: list[str]) -> set[str]:
    """The column values that go to test, given all values of the column."""
    if self.test:
      return set(self.test)
    distinct = sorted(set(values))
    count = min(max(1, int(round(self.test_fraction * len(distinct)))), len(distinct))
    order = np.random.default_rng(self.seed).permutation(len(distinct))
    return {distinct[i] for i in order[:count]}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """The parsed dataset.json."""
  name: str
  layout: layouts.Layout
  layout_spec: Any  # the name or explicit dict as given
  coords: int
  max_persons: int
  classes: tuple[str, ...] | None
  split_rule: SplitRule | None
  bad_values: str
  description: str


@dataclasses.dataclass
class Row:
  """One labels.csv row."""
  line: int
  path: str  # normalised, relative to the folder, '/'-separated
  label: str
  split: str
  group: str
  num_frames: int = 0
  num_persons: int = 0
  nonfinite: int = 0


class Problems:
  """Collects problems and raises them as one DatasetFormatError."""

  def __init__(self, folder: epath.Path):
    self.folder = folder
    self.items: list[tuple[float, str]] = []

  def add(self, message: str, line: float = float('inf')) -> None:
    """Adds a problem; problems are listed by labels.csv line (those of no line last)."""
    self.items.append((line, message))

  def raise_if_any(self, what: str) -> None:
    if not self.items:
      return
    ordered = [message for _, message in sorted(self.items, key=lambda item: item[0])]
    shown = ordered[:MAX_LISTED_PROBLEMS]
    more = len(self.items) - len(shown)
    lines = '\n'.join(f'  {item}' for item in shown)
    tail = f'\n  ... and {more} more' if more else ''
    raise _common.DatasetFormatError(
        f'{self.folder}: {len(self.items)} problem{"s" if len(self.items) != 1 else ""} in {what}; nothing was '
        f'written:\n{lines}{tail}')


# --- dataset.json --------------------------------------------------------------------------------------

def read_dataset_json(folder: epath.PathLike) -> DatasetSpec:
  """Parses `folder/dataset.json` (DatasetFormatError naming the file, line and column or key)."""
  folder = epath.Path(folder)
  path = folder / DATASET_FILE
  if not folder.is_dir():
    raise _common.DatasetFormatError(f'{folder} is not a folder (expected {DATASET_FILE}, {LABELS_FILE} and clips)')
  if not path.exists():
    raise _common.DatasetFormatError(f'{path} not found; a skeleton folder needs {DATASET_FILE}, e.g. '
                                     '{"name": "my_dataset", "layout": "coco17", "coords": 2}')
  try:
    content = json.loads(path.read_text(encoding='utf-8'))
  except UnicodeDecodeError as e:
    raise _common.DatasetFormatError(f'{path}: not UTF-8 text ({e})') from None
  except json.JSONDecodeError as e:
    raise _common.DatasetFormatError(f'{path} line {e.lineno}, column {e.colno}: invalid JSON ({e.msg})') from None
  if not isinstance(content, dict):
    raise _common.DatasetFormatError(f'{path}: expected a JSON object, found {type(content).__name__}')
  problems = []
  unknown = sorted(set(content) - set(_KEYS))
  if unknown:
    problems.append(f'unknown key{"s" if len(unknown) > 1 else ""} {unknown} (known: {list(_KEYS)})')
  for key in ('name', 'layout', 'coords'):
    if key not in content:
      problems.append(f'missing key "{key}"')
  name = content.get('name', '')
  if 'name' in content and (not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name)):
    problems.append(f'"name" must be letters, digits, "_", "-" or "." (a folder name), got {name!r}')
  layout = None
  if 'layout' in content:
    try:
      layout = layouts.get_layout(content['layout'])
    except ValueError as e:
      problems.append(f'"layout": {e}')
  coords = content.get('coords')
  if 'coords' in content and (isinstance(coords, bool) or coords not in (2, 3)):
    problems.append(f'"coords" must be 2 or 3, got {coords!r}')
  max_persons = content.get('max_persons', 1)
  if isinstance(max_persons, bool) or not isinstance(max_persons, int) or max_persons < 1:
    problems.append(f'"max_persons" must be a positive integer, got {max_persons!r}')
  classes = content.get('classes')
  if classes is not None:
    if (not isinstance(classes, list) or not classes or
        not all(isinstance(c, str) and c.strip() == c and c for c in classes)):
      problems.append('"classes" must be a non-empty list of class names (strings without surrounding spaces)')
      classes = None
    elif len(set(classes)) != len(classes):
      problems.append(f'"classes" has duplicates: {sorted({c for c in classes if classes.count(c) > 1})}')
      classes = None
  split_rule = None
  if 'split' in content:
    try:
      split_rule = _parse_split_rule(content['split'])
    except ValueError as e:
      problems.append(f'"split": {e}')
  bad_values = content.get('bad_values', 'error')
  if bad_values not in ('error', 'zero'):
    problems.append(f'"bad_values" must be "error" or "zero", got {bad_values!r}')
  description = content.get('description', '')
  if not isinstance(description, str):
    problems.append('"description" must be a string')
  if problems:
    listed = '\n'.join(f'  {problem}' for problem in problems)
    raise _common.DatasetFormatError(f'{path}: {len(problems)} problem{"s" if len(problems) > 1 else ""}:\n{listed}')
  return DatasetSpec(name=name, layout=layout, layout_spec=content['layout'], coords=coords,
                     max_persons=max_persons, classes=tuple(classes) if classes else None, split_rule=split_rule,
                     bad_values=bad_values, description=description)


def _parse_split_rule(value: Any) -> SplitRule:
  if not isinstance(value, dict) or 'column' not in value:
    raise ValueError('expected {"column": <group column>, "test": [values]} or {"column": ..., "test_fraction": '
                     'f, "seed": n}')
  unknown = sorted(set(value) - {'column', 'test', 'test_fraction', 'seed'})
  if unknown:
    raise ValueError(f'unknown keys {unknown}; expected column, test or test_fraction (and seed)')
  column = value['column']
  if not isinstance(column, str) or not column or column in ('path', 'label', 'split'):
    raise ValueError(f'"column" must name a group column of {LABELS_FILE} other than path/label/split, got {column!r}')
  if ('test' in value) == ('test_fraction' in value):
    raise ValueError('give exactly one of "test" (a list of column values) and "test_fraction"')
  if 'test' in value:
    test = value['test']
    if not isinstance(test, list) or not test or not all(isinstance(v, (str, int)) for v in test):
      raise ValueError('"test" must be a non-empty list of column values')
    return SplitRule(column=column, test=tuple(str(v) for v in test))
  fraction = value['test_fraction']
  if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
    raise ValueError(f'"test_fraction" must be a number in (0, 1), got {fraction!r}')
  seed = value.get('seed', 0)
  if isinstance(seed, bool) or not isinstance(seed, int):
    raise ValueError(f'"seed" must be an integer, got {seed!r}')
  return SplitRule(column=column, test_fraction=float(fraction), seed=seed)


# --- labels.csv ----------------------------------------------------------------------------------------

def read_labels(folder: epath.PathLike, spec: DatasetSpec, problems: Problems) -> list[Row]:
  """Parses `folder/labels.csv` into rows; row-level problems go to `problems`, structural ones raise."""
  folder = epath.Path(folder)
  path = folder / LABELS_FILE
  if not path.exists():
    raise _common.DatasetFormatError(f'{path} not found; expected a CSV file with the header path,label,split')
  try:
    text = path.read_text(encoding='utf-8-sig')
  except UnicodeDecodeError as e:
    raise _common.DatasetFormatError(f'{path}: not UTF-8 text ({e})') from None
  reader = csv.reader(io.StringIO(text, newline=''), strict=True)
  try:
    header = next(reader, None)
  except csv.Error as e:
    raise _common.DatasetFormatError(f'{LABELS_FILE} line 1: malformed CSV ({e})') from None
  if header is None or not any(cell.strip() for cell in header):
    raise _common.DatasetFormatError(f'{path} is empty; expected the header line path,label,split')
  header = [cell.strip() for cell in header]
  needed = ['path', 'label'] + ([spec.split_rule.column] if spec.split_rule else ['split'])
  for column in needed:
    if column not in header:
      raise _common.DatasetFormatError(
          f'{LABELS_FILE} line 1: no column {column!r} (header: {",".join(header)}; needed: {",".join(needed)}'
          + (f'; the split rule in {DATASET_FILE} names column {spec.split_rule.column!r})' if spec.split_rule
             else '; or give a split rule in dataset.json)'))
  duplicated = sorted({c for c in header if header.count(c) > 1 and c})
  if duplicated:
    raise _common.DatasetFormatError(f'{LABELS_FILE} line 1: duplicate columns {duplicated}')
  position = {column: header.index(column) for column in needed}
  rows: list[Row] = []
  seen: dict[str, int] = {}
  while True:
    try:
      cells = next(reader)
    except StopIteration:
      break
    except csv.Error as e:
      problems.add(f'{LABELS_FILE} line {reader.line_num}: malformed CSV ({e})', reader.line_num)
      continue
    line = reader.line_num
    if not cells or not any(cell.strip() for cell in cells):
      continue
    if len(cells) != len(header):
      problems.add(f'{LABELS_FILE} line {line}: {len(cells)} fields, the header has {len(header)} '
                   f'({",".join(header)})', line)
      continue
    values = {column: cells[index].strip() for column, index in position.items()}
    bad = [column for column, value in values.items() if not value]
    if bad:
      problems.add(f'{LABELS_FILE} line {line}, column {bad[0]!r}: empty', line)
      continue
    path_value = values['path']
    normalised = _normalise_path(path_value)
    if normalised is None:
      problems.add(f'{LABELS_FILE} line {line}, column \'path\': {path_value!r} is outside the folder (give a path '
                   'relative to the folder, without "..")', line)
      continue
    if normalised in seen:
      problems.add(f'{LABELS_FILE} line {line}, column \'path\': {path_value!r} duplicates line '
                   f'{seen[normalised]}', line)
      continue
    seen[normalised] = line
    label = values['label']
    if spec.classes is not None and label not in spec.classes:
      problems.add(f'{LABELS_FILE} line {line}, column \'label\': {label!r} is not one of the classes in '
                   f'{DATASET_FILE} {list(spec.classes)}', line)
      continue
    if spec.split_rule:
      split, group = '', values[spec.split_rule.column]
    else:
      split, group = values['split'], ''
      if split not in SPLITS:
        problems.add(f'{LABELS_FILE} line {line}, column \'split\': {split!r} is not one of {list(SPLITS)}', line)
        continue
    rows.append(Row(line=line, path=normalised, label=label, split=split, group=group))
  if spec.split_rule:
    test_values = spec.split_rule.test_values([row.group for row in rows])
    for row in rows:
      row.split = 'test' if row.group in test_values else 'train'
  return rows


def _normalise_path(value: str) -> str | None:
  """'clips/./a.npy' -> 'clips/a.npy'; None for absolute paths and paths leaving the folder."""
  value = value.replace('\\', '/')
  if value.startswith('/') or re.match(r'[A-Za-z]:', value):
    return None
  normalised = posixpath.normpath(value)
  if normalised == '..' or normalised.startswith('../') or normalised == '.':
    return None
  return normalised


# --- Clips ---------------------------------------------------------------------------------------------

def load_clip(path: epath.Path) -> np.ndarray:
  """The raw array of a clip file (ValueError with the reason for a file that cannot be read)."""
  suffix = path.suffix.lower()
  if suffix not in CLIP_SUFFIXES:
    raise ValueError(f'unsupported file type {suffix or "(none)"!r}; use {", ".join(CLIP_SUFFIXES)}')
  if not path.is_file():
    raise ValueError('file not found')
  if suffix == '.json':
    try:
      content = json.loads(path.read_text(encoding='utf-8'))
    except json.JSONDecodeError as e:
      raise ValueError(f'invalid JSON at line {e.lineno}, column {e.colno} ({e.msg})') from None
    except UnicodeDecodeError as e:
      raise ValueError(f'not UTF-8 text ({e})') from None
    if isinstance(content, dict):
      if 'skeleton' not in content:
        raise ValueError(f'JSON object without key "skeleton" (keys: {sorted(content)})')
      content = content['skeleton']
    try:
      array = np.asarray(content, dtype=np.float64)
    except (TypeError, ValueError) as e:
      raise ValueError(f'"skeleton" is not a rectangular array of numbers ({e})') from None
  else:
    try:
      loaded = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
      raise ValueError(f'cannot read the {suffix} file ({e})') from None
    if suffix == '.npz' or isinstance(loaded, np.lib.npyio.NpzFile):
      if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError('not an .npz archive')
      if 'skeleton' not in loaded.files:
        raise ValueError(f'no array "skeleton" in the .npz (arrays: {loaded.files})')
      try:
        array = loaded['skeleton']
      except (ValueError, OSError, EOFError) as e:
        raise ValueError(f'cannot read array "skeleton" ({e})') from None
    else:
      array = loaded
  if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
    raise ValueError(f'not a real-valued numeric array (dtype {array.dtype})')
  return array


def check_clip(array: np.ndarray, spec: DatasetSpec) -> tuple[np.ndarray, int]:
  """Checks a raw clip against the layout and returns ((T, max_persons, J, C) float32, NaN/inf entries zeroed).

  Raises:
    ValueError: the reason the clip does not fit the dataset.
  """
  joints, coords = spec.layout.num_joints, spec.coords
  shape = array.shape
  if array.ndim == 3:
    array = array[:, None]
  elif array.ndim != 4:
    raise ValueError(f'shape {shape}: expected (T, J, C) or (T, M, J, C)')
  frames, persons, clip_joints, clip_coords = array.shape
  if clip_joints != joints:
    raise ValueError(f'shape {shape}: {clip_joints} joints, layout {spec.layout.name!r} has {joints}')
  if clip_coords != coords:
    hint = ' (drop the confidence channel)' if clip_coords == coords + 1 else ''
    raise ValueError(f'shape {shape}: {clip_coords} coordinates per joint, {DATASET_FILE} says coords '
                     f'{coords}{hint}')
  if frames == 0:
    raise ValueError(f'shape {shape}: 0 frames')
  if persons > spec.max_persons:
    raise ValueError(f'shape {shape}: {persons} persons, {DATASET_FILE} says max_persons {spec.max_persons}')
  if persons == 0:
    raise ValueError(f'shape {shape}: 0 persons')
  array = array.astype(np.float64, copy=False)
  bad = ~np.isfinite(array)
  count = int(bad.sum())
  if count:
    if spec.bad_values != 'zero':
      raise ValueError(f'{count} NaN/inf values (set "bad_values": "zero" in {DATASET_FILE} to replace them by 0 and '
                       'count them)')
    array = np.where(bad, 0.0, array)
  if np.abs(array).max(initial=0.0) > np.finfo(np.float32).max:
    raise ValueError('values too large for float32')
  out = np.zeros((frames, spec.max_persons, joints, coords), np.float32)
  out[:, :persons] = array
  return out, count


def check_folder(folder: epath.PathLike) -> tuple[DatasetSpec, list[Row], tuple[str, ...]]:
  """Reads dataset.json and labels.csv and checks every row and clip.

  Returns:
    (spec, rows with num_frames / num_persons / nonfinite filled in, class names in label order).

  Raises:
    DatasetFormatError: dataset.json or labels.csv unusable, or one error listing every offending row (the first
      20 and the total count) with its reason, plus empty splits and classes without a training clip.
  """
  folder = epath.Path(folder)
  spec = read_dataset_json(folder)
  problems = Problems(folder)
  rows = read_labels(folder, spec, problems)
  good_rows = []
  for row in _common.progress(rows, f'skeleton_folder/{spec.name}: checking clips'):
    try:
      array, count = check_clip(load_clip(folder / row.path), spec)
    except ValueError as e:
      problems.add(f'{LABELS_FILE} line {row.line} ({row.path}): {e}', row.line)
      continue
    row.num_frames, row.num_persons, row.nonfinite = array.shape[0], _num_persons(array), count
    good_rows.append(row)
  class_names = spec.classes or tuple(sorted({row.label for row in rows}))
  for split in REQUIRED_SPLITS:
    if not any(row.split == split for row in rows):
      rule = f'split rule {spec.split_rule.to_dict()}' if spec.split_rule else f"column 'split' of {LABELS_FILE}"
      problems.add(f'split {split!r} has no clips ({rule})')
  training = {row.label for row in rows if row.split == 'train'}
  for name in class_names:
    if name not in training:
      problems.add(f'class {name!r} has no training clip')
  problems.raise_if_any(f'{DATASET_FILE} / {LABELS_FILE} / clips')
  return spec, good_rows, class_names


def _num_persons(array: np.ndarray) -> int:
  """Persons with any non-zero coordinate (at least 1)."""
  return max(1, int(np.any(array != 0, axis=(0, 2, 3)).sum()))


def class_names_from_labels(folder: epath.PathLike, spec: DatasetSpec) -> tuple[str, ...]:
  """The class names a build will use, without reading the clips (`classes`, else the sorted labels)."""
  if spec.classes:
    return spec.classes
  rows = read_labels(folder, spec, Problems(epath.Path(folder)))
  return tuple(sorted({row.label for row in rows}))


def legacy_fingerprint(folder: epath.PathLike) -> str:
  """The fingerprint that builds made before content fingerprints stored (metadata 'fingerprint'): SHA-256 over
  dataset.json, labels.csv and the (path, size, mtime) of every clip it lists. Only recognises such a build as the
  folder's own; it depends on modification times, so it never identifies data."""
  folder = epath.Path(folder)
  digest = hashlib.sha256()
  for name in (DATASET_FILE, LABELS_FILE):
    path = folder / name
    digest.update(name.encode() + b'\0' + (path.read_bytes() if path.exists() else b'') + b'\0')
  try:
    spec = read_dataset_json(folder)
    rows = read_labels(folder, spec, Problems(folder))
  except _common.DatasetFormatError:
    return digest.hexdigest()
  for row in sorted(rows, key=lambda r: r.path):
    try:
      stat = os.stat(os.fspath(folder / row.path))
      entry = f'{row.path}\0{stat.st_size}\0{stat.st_mtime_ns}\0'
    except OSError:
      entry = f'{row.path}\0missing\0'
    digest.update(entry.encode())
  return digest.hexdigest()


# --- Content fingerprint -------------------------------------------------------------------------------

MISSING = 'missing'
# A clip modified this recently may change again within the same mtime tick: its hash is not cached.
_RECENT_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class Content:
  """What a folder holds, independent of where it is and of modification times.

  `fingerprint`: SHA-256 over the bytes of dataset.json and labels.csv and the SHA-256 of every clip labels.csv lists
  (in path order). `files_digest`: SHA-256 over dataset.json and labels.csv alone. `rows`: (path, label, split,
  clip SHA-256 or 'missing') per labels.csv row that parses, in file order; `dataset_json`: its text.
  """
  fingerprint: str
  files_digest: str
  rows: tuple[tuple[str, str, str, str], ...]
  dataset_json: str

  def manifest(self) -> dict[str, Any]:
    return {'fingerprint': self.fingerprint, 'dataset_json': self.dataset_json, 'rows': [list(r) for r in self.rows]}


def clip_sha256(path: epath.PathLike) -> str:
  """SHA-256 of a file's bytes."""
  digest = hashlib.sha256()
  with open(os.fspath(path), 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def files_digest(folder: epath.Path) -> tuple[str, bytes, bytes]:
  """(SHA-256 over dataset.json and labels.csv, their bytes)."""
  contents = []
  digest = hashlib.sha256()
  for name in (DATASET_FILE, LABELS_FILE):
    path = folder / name
    data = path.read_bytes() if path.exists() else b''
    contents.append(data)
    digest.update(name.encode() + b'\0' + str(len(data)).encode() + b'\0' + data)
  return digest.hexdigest(), contents[0], contents[1]


class ClipHashCache:
  """SHA-256 of a folder's clips, keyed by (path, size, mtime), in one JSON file per folder under `directory`; no
  file when `directory` is None. Unreadable or unwritable cache files only cost the hashing."""

  def __init__(self, directory: epath.PathLike | None, folder: epath.Path):
    self.path = None
    self.folder = os.path.realpath(os.fspath(folder))
    self.entries: dict[str, list[Any]] = {}
    self.changed = False
    if directory is None:
      return
    absolute = self.folder
    self.path = epath.Path(directory) / f'clips-{hashlib.sha256(absolute.encode()).hexdigest()[:16]}.json'
    try:
      stored = json.loads(self.path.read_text())
      if stored.get('folder') == absolute and isinstance(stored.get('clips'), dict):
        self.entries = stored['clips']
    except (OSError, ValueError):
      pass

  def sha256(self, folder: str, relative: str) -> str:
    path = os.path.join(folder, relative)
    try:
      stat = os.stat(path)
    except OSError:
      return MISSING
    key = [stat.st_size, stat.st_mtime_ns]
    cached = self.entries.get(relative)
    if cached is not None and cached[:2] == key:
      return cached[2]
    try:
      value = clip_sha256(path)
    except OSError:
      return MISSING
    if time.time() - stat.st_mtime > _RECENT_SECONDS:
      self.entries[relative] = key + [value]
      self.changed = True
    return value

  def save(self) -> None:
    if self.path is None or not self.changed:
      return
    _write_atomically(self.path, json.dumps({'folder': self.folder, 'clips': self.entries}))


def _write_atomically(path: epath.Path, text: str) -> None:
  """Writes `path` through a temporary file in its folder; an OSError leaves nothing behind and is ignored (the
  fingerprint caches only save work)."""
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=os.fspath(path.parent), prefix=path.name, suffix='.tmp')
    try:
      with os.fdopen(handle, 'w') as f:
        f.write(text)
      os.replace(temporary, os.fspath(path))
    except BaseException:
      pathlib.Path(temporary).unlink(missing_ok=True)
      raise
  except OSError:
    pass


def content(folder: epath.PathLike, cache_dir: epath.PathLike | None = None) -> Content:
  """The folder's `Content`; with `cache_dir`, clip hashes are cached there by (path, size, mtime), so that only new
  or modified clips are read again, and the manifest of the content is kept there (`manifest_path`) to say later
  what changed."""
  folder = epath.Path(folder)
  files, dataset_json, _ = files_digest(folder)
  try:
    spec = read_dataset_json(folder)
    rows = read_labels(folder, spec, Problems(folder))
  except _common.DatasetFormatError:
    rows = []
  cache = ClipHashCache(cache_dir, folder)
  root = os.fspath(folder)
  entries = tuple((row.path, row.label, row.split, cache.sha256(root, row.path)) for row in rows)
  cache.save()
  digest = hashlib.sha256(files.encode())
  for path, _, _, sha in sorted(entries):
    digest.update(f'{path}\0{sha}\0'.encode())
  result = Content(fingerprint=digest.hexdigest(), files_digest=files, rows=entries,
                   dataset_json=dataset_json.decode('utf-8', errors='replace'))
  if cache_dir is not None:
    manifest = manifest_path(cache_dir, result.fingerprint)
    if not manifest.exists():
      _write_atomically(manifest, json.dumps(result.manifest()))
  return result


def manifest_path(cache_dir: epath.PathLike, fingerprint_value: str) -> epath.Path:
  """Where `content` keeps the rows of a fingerprint."""
  return epath.Path(cache_dir) / f'content-{fingerprint_value}.json'


def read_manifest(cache_dir: epath.PathLike, fingerprint_value: str) -> dict[str, Any] | None:
  """The manifest `content` kept for a fingerprint, or None."""
  try:
    manifest = json.loads(manifest_path(cache_dir, fingerprint_value).read_text())
  except (OSError, ValueError):
    return None
  return manifest if manifest.get('fingerprint') == fingerprint_value else None


def describe_changes(old: dict[str, Any], new: dict[str, Any], examples: int = 3) -> str:
  """What changed between two manifests, e.g. '1 row relabelled (clips/a.npy: wave -> clap); 2 rows added (...)'."""

  def listed(items: list[str]) -> str:
    shown = ', '.join(items[:examples])
    return shown + (f', ... {len(items) - examples} more' if len(items) > examples else '')

  def counted(items: list[str], what: str) -> str:
    return f'{len(items)} row{"s" if len(items) != 1 else ""} {what} ({listed(items)})'

  before = {row[0]: row for row in old['rows']}
  after = {row[0]: row for row in new['rows']}
  parts = []
  if old.get('dataset_json') != new.get('dataset_json'):
    parts.append(f'{DATASET_FILE} edited')
  added = [path for path in after if path not in before]
  removed = [path for path in before if path not in after]
  common = [path for path in after if path in before]
  relabelled = [f'{p}: {before[p][1]} -> {after[p][1]}' for p in common if before[p][1] != after[p][1]]
  moved = [f'{p}: {before[p][2]} -> {after[p][2]}' for p in common if before[p][2] != after[p][2]]
  clips = [p for p in common if before[p][3] != after[p][3]]
  for items, what in ((added, 'added'), (removed, 'removed'), (relabelled, 'relabelled'),
                      (moved, 'moved to another split'), (clips, 'with a changed clip file')):
    if items:
      parts.append(counted(items, what))
  if not parts:
    order = [row[0] for row in old['rows']] != [row[0] for row in new['rows']]
    parts.append(f'{LABELS_FILE} {"reordered" if order else "edited"} (every row the same)')
  return '; '.join(parts)
