"""Shared test fixtures.

Golden files (outputs of the original PyTorch code) live outside the repository. They are found at
``$CASCADEFORMER_GOLDEN_DIR`` or at ``../shared/golden`` next to the clone. Without them golden tests skip
with a visible reason, unless ``CASCADEFORMER_REQUIRE_GOLDEN=1`` (set by ``.ci/run``), in which case they fail.
"""

import os
import pathlib

import jax
import pytest

from tests.data_builders import fixtures
from tests.data_builders import helpers

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def find_golden_dir() -> pathlib.Path | None:
  candidates = []
  if os.environ.get('CASCADEFORMER_GOLDEN_DIR'):
    candidates.append(pathlib.Path(os.environ['CASCADEFORMER_GOLDEN_DIR']))
  candidates.append(REPO_ROOT.parent / 'shared' / 'golden')
  for candidate in candidates:
    if candidate.is_dir():
      return candidate
  return None


def golden_required() -> bool:
  return os.environ.get('CASCADEFORMER_REQUIRE_GOLDEN', '') not in ('', '0')


@pytest.fixture(scope='session')
def golden_dir() -> pathlib.Path:
  """The golden directory; skips (or fails when goldens are required) if it is absent."""
  path = find_golden_dir()
  if path is None:
    message = ('golden files not found: set CASCADEFORMER_GOLDEN_DIR or place them at '
               f'{REPO_ROOT.parent / "shared" / "golden"}')
    if golden_required():
      pytest.fail(message + ' (CASCADEFORMER_REQUIRE_GOLDEN is set)')
    pytest.skip(message)
  return path


@pytest.fixture(scope='session')
def shared_data_dir(golden_dir) -> pathlib.Path:
  """``shared/data`` (dataset metadata such as the NTU missing-sample list), beside the golden dir."""
  return golden_dir.parent / 'data'


def pytest_collection_modifyitems(items):
  """Files marked with a `cost` run first, longest first.

  The suite runs on parallel workers that take one file at a time (pytest-xdist, `--dist loadfile`): the long files
  (whole trainings, several processes) then spread over the workers and the many short files fill in behind them,
  instead of a long file starting last while the other workers have nothing left to do.
  """
  def cost(item: pytest.Item) -> float:
    marker = item.get_closest_marker('cost')
    return marker.args[0] if marker else 0.0

  items.sort(key=cost, reverse=True)  # stable: the order within a file and among unmarked files is kept


@pytest.fixture
def fast_compile():
  """Tiny models: XLA's optimisation passes cost more compile time than they save (as in the Flax examples)."""
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  yield
  jax.config.update('jax_disable_most_optimizations', previous)


@pytest.fixture(scope='session')
def fixture_data_dir(tmp_path_factory) -> pathlib.Path:
  """A TFDS data dir with every dataset built from fixtures (synthetic_actions in its 'tiny' config)."""
  root = tmp_path_factory.mktemp('datasets')
  manual = root / 'manual'
  data_dir = root / 'tfds'
  fixtures.write_penn_action(manual)
  fixtures.write_n_ucla(manual)
  fixtures.write_ntu_skeletons(manual)
  helpers.build('penn_action', data_dir, manual)
  helpers.build('n_ucla', data_dir, manual)
  helpers.build('ntu_rgbd60', data_dir, manual, config='xsub')
  helpers.build('synthetic_actions', data_dir, config='tiny')
  return data_dir
