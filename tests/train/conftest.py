"""Datasets built from the miniature raw fixtures, shared by the training tests."""

import pathlib

import pytest

from tests.data_builders import fixtures
from tests.data_builders import helpers


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
