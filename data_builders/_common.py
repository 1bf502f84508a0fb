"""Helpers shared by the dataset builders: errors, progress logging, locating raw files, layout metadata."""

from collections.abc import Iterator, Sequence, Sized
import logging
import time
from typing import TypeVar

from etils import epath

from cascadeformer_jax.data import layouts

logger = logging.getLogger('data_builders')

_T = TypeVar('_T')


class DatasetFormatError(ValueError):
  """A raw input file or folder is missing, malformed or inconsistent; the message names it."""


class DatasetNotBuiltError(FileNotFoundError):
  """The requested dataset has not been built in the given data_dir; the message gives the build command."""


def layout_metadata(layout_name: str) -> dict:
  """The metadata entries that describe a dataset's joints, from the layout table `cascadeformer_jax.data.layouts`:
  joint names, their count and the skeleton edges (JSON-serialisable)."""
  layout = layouts.get_layout(layout_name)
  return {
      'joint_names': list(layout.joints),
      'num_joints': layout.num_joints,
      'edges': [list(edge) for edge in layout.edges],
      'edges_note': 'pairs (child, parent) of 0-based joint indices',
  }


def progress(items: Sequence[_T], description: str, every_seconds: float = 10.0) -> Iterator[_T]:
  """Yields `items` and logs `description: done/total (pct), elapsed, ETA` at most every `every_seconds`.

  A first line is logged at the start and a last one at the end, so even fast builds report what they did.
  """
  total = len(items)
  start = time.monotonic()
  last_report = start
  logger.info('%s: 0/%d', description, total)
  for done, item in enumerate(items, start=1):
    yield item
    now = time.monotonic()
    if now - last_report >= every_seconds and done < total:
      last_report = now
      elapsed = now - start
      eta = elapsed / done * (total - done)
      logger.info('%s: %d/%d (%.1f%%), %.0f s elapsed, ~%.0f s left', description, done, total,
                  100.0 * done / total, elapsed, eta)
  logger.info('%s: %d/%d done in %.1f s', description, total, total, time.monotonic() - start)


def find_files(manual_dir: epath.PathLike, subdirs: Sequence[str], pattern: str, what: str,
               expected_layout: str) -> tuple[epath.Path, list[epath.Path]]:
  """Finds the folder holding the raw files of a dataset.

  Looks in `manual_dir/<subdir>` for each of `subdirs` (in order; '' is `manual_dir` itself) and returns the first
  folder containing files that match `pattern`, with those files sorted by name.

  Raises:
    DatasetFormatError: naming the folders searched and what was found there (missing folder, empty folder, or a
      folder holding other files).
  """
  manual_dir = epath.Path(manual_dir)
  if not manual_dir.is_dir():
    raise DatasetFormatError(f'{what}: manual_dir {manual_dir} does not exist or is not a folder. '
                             f'Expected layout: {expected_layout}')
  searched = []
  for subdir in subdirs:
    folder = manual_dir / subdir if subdir else manual_dir
    if not folder.is_dir():
      continue
    files = sorted((path for path in folder.glob(pattern) if path.is_file()), key=lambda path: path.name)
    if files:
      return folder, files
    searched.append(folder)
  if not searched:
    candidates = ', '.join(str(manual_dir / subdir) for subdir in subdirs)
    raise DatasetFormatError(f'{what}: none of the folders {candidates} exists. Expected layout: {expected_layout}')
  details = []
  for folder in searched:
    entries = sorted(path.name for path in folder.iterdir())
    if not entries:
      details.append(f'{folder} is empty')
    else:
      shown = ', '.join(entries[:5]) + (', ...' if len(entries) > 5 else '')
      details.append(f'{folder} holds {len(entries)} entries but no {pattern} file ({shown})')
  raise DatasetFormatError(f'{what}: no {pattern} files found: {"; ".join(details)}. '
                           f'Expected layout: {expected_layout}')


def check_splits_not_empty(splits: dict[str, Sized], dataset: str, source: str, rule: str) -> None:
  """TFDS cannot write an empty split: say which split got nothing from which files, and why."""
  empty = [split for split, items in splits.items() if not len(items)]
  if empty:
    sizes = ', '.join(f'{split} {len(items)}' for split, items in splits.items())
    raise DatasetFormatError(f'{dataset}: no {"/".join(empty)} samples in {source} ({sizes}; split rule: {rule}). '
                             'Every split needs at least one sample; is the folder complete?')
