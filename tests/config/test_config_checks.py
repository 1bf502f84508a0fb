"""The constraint table: every row rejects values just outside its range, and every shipped config passes."""

import math
import pathlib

import ml_collections
import numpy as np
import pytest

from cascadeformer_jax.config import config_checks
from cascadeformer_jax.config import schema
from cascadeformer_jax.config import configuration

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE_DATASETS = ('synthetic_actions,1.0', 'ntu60_xsub,1.2', 'n_ucla,1.1', 'penn_action,1.0')


def _shipped_configs():
  """The smoke config of every built-in dataset, then the folder-dataset config as it is once its folder is read."""
  for arg in SMOKE_DATASETS:
    yield configuration.load_config_file(REPO_ROOT / 'configs' / 'smoke.py', arg)
  config = configuration.load_config_file(REPO_ROOT / 'configs' / 'custom.py')
  config.data.update(joint_layout='ntu25', num_classes=3, num_joints=25, num_coords=3, max_persons=2)
  yield config


def _base_config(field: str) -> ml_collections.ConfigDict:
  """A shipped config that has ``field``, in a mode where every row applies."""
  for config in _shipped_configs():
    if schema.get_field(config, field) is not schema.ABSENT:
      config.mode = 'probe' if field.startswith('probe.') else 'train'
      return config
  raise AssertionError(f'no shipped config has the field {field}')


def _set(config: ml_collections.ConfigDict, field: str, value) -> None:
  *parents, leaf = field.split('.')
  node = config
  for part in parents:
    node = node[part]
  with node.ignore_type():
    node[leaf] = value


def _outside(constraint) -> list:
  """Values just outside each end of a constraint (bad choices for a set)."""
  if isinstance(constraint, schema.OrNone):
    constraint = constraint.inner
  if isinstance(constraint, (schema.OneOf, schema.CommaList)):
    return ['no_such_choice']
  if isinstance(constraint, schema.Interval):
    inside = [v for v in _inside(constraint.bounds)]
    return [(inside[1], inside[0])] + [(v, v) for v in _outside(constraint.bounds)]
  if isinstance(constraint, schema.Each):
    return ([] if constraint.allow_empty else [()]) + [(v,) for v in _outside(constraint.bounds)]
  if isinstance(constraint, schema.Increasing):
    return ([] if constraint.allow_empty else [()]) + [(0, 64), (64, 32), (64, 64), (1.5,)]
  if isinstance(constraint, schema.Flag):
    return [0, 'yes', None]
  low, high = constraint.low, constraint.high
  step = 1 if constraint.integer else None
  values = []
  if low is None:
    values.append(-math.inf)
  elif constraint.low_open:
    values.append(low)
  else:
    values.append(low - step if step else float(np.nextafter(low, -np.inf)))
  if high is None:
    values.append(math.inf if not constraint.integer else 1.5)
  elif constraint.high_open:
    values.append(high)
  else:
    values.append(high + step if step else float(np.nextafter(high, np.inf)))
  return values


def _inside(constraint: schema.Range) -> list:
  low = constraint.low if constraint.low is not None else -1.0
  high = constraint.high if constraint.high is not None else low + 10
  return [low + (high - low) * 0.25, low + (high - low) * 0.75]


ROWS = [(field, constraint) for field, constraint, _ in config_checks.CONSTRAINTS]


@pytest.mark.parametrize('field,constraint', ROWS, ids=[field for field, _ in ROWS])
def test_every_row_rejects_both_edges(field, constraint):
  for value in _outside(constraint):
    config = _base_config(field)
    _set(config, field, value)
    errors = config_checks.violations(config)
    assert len(errors) == 1 and errors[0].startswith(f'config.{field}='), (value, errors)
    assert ': must be ' in errors[0]


@pytest.mark.parametrize('config_file', sorted(p.name for p in (REPO_ROOT / 'configs').glob('*.py')))
def test_every_shipped_config_passes(config_file):
  args = SMOKE_DATASETS if config_file == 'smoke.py' else (None,)
  for arg in args:
    config = configuration.load_config_file(REPO_ROOT / 'configs' / config_file, arg)
    for mode in ('train', 'probe'):
      config.mode = mode
      assert config_checks.violations(config) == [], (config_file, arg, mode)


def test_every_numeric_and_text_field_is_in_the_table():
  rows = {field for field, _, _ in config_checks.CONSTRAINTS}
  for config in _shipped_configs():
    for field, value in _leaves(config.to_dict()):
      if isinstance(value, bool):
        continue
      assert field in rows or field in config_checks.FREE_TEXT, f'config.{field} has no row in CONSTRAINTS'


def _leaves(tree, prefix=''):
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from _leaves(value, f'{prefix}{key}.')
    else:
      yield f'{prefix}{key}', value


def test_stage_epochs_only_checked_when_the_stage_trains():
  config = configuration.load_config_file(REPO_ROOT / 'configs' / 'demo.py')
  config.pretrain.epochs = 0
  assert config_checks.violations(config) == [
      "config.pretrain.epochs=0: must be an integer >= 1 (the stage trains in mode 'train')"]
  config.mode = 'finetune'
  assert config_checks.violations(config) == []


def test_all_violations_are_reported_at_once():
  config = configuration.load_config_file(REPO_ROOT / 'configs' / 'demo.py')
  config.pretrain.epochs = -1
  config.finetune.epochs = -3
  config.data.holdout_fraction = 1.0
  with pytest.raises(config_checks.ConfigError) as raised:
    config_checks.validate(config)
  assert str(raised.value).splitlines() == [
      'config.data.holdout_fraction=1.0: must be a finite number in [0, 1)',
      "config.pretrain.epochs=-1: must be an integer >= 1 (the stage trains in mode 'train')",
      "config.finetune.epochs=-3: must be an integer >= 1 (the stage trains in mode 'train')"]
