"""The recipe of a run: the part of its config that changes what a training stage produces.

Every config field declares its scope in the config schema (config/schema.py): part of the recipe of both stages
(`SHARED`: dataset, model, data preprocessing, seed), of one stage (`PRETRAIN`, `FINETUNE`), or a setting that
never changes a trained result (`FREE`: mode, paths, display, checkpoint cadence, evaluation-only settings, ...).
A field the schema does not declare counts as `SHARED`, so a new setting blocks a rerun until it is declared.

A stage stores `stage_recipe(config, stage)` with its checkpoints and model directories; a later run compares its
own with `changes(stored, current)` before any work and refuses to mix results of two recipes.
"""

import dataclasses
import json
from typing import Any

import ml_collections

from cascadeformer_jax.config import schema

SHARED = schema.SHARED
PRETRAIN = schema.PRETRAIN
FINETUNE = schema.FINETUNE
FREE = schema.FREE
STAGES = (PRETRAIN, FINETUNE)

# (dotted field, scope) of every declared field.
FIELDS: tuple[tuple[str, str], ...] = tuple((field.path, field.scope) for field in schema.FIELDS)


@dataclasses.dataclass(frozen=True)
class Change:
  """One recipe field whose stored and current values differ (`ABSENT` where a side lacks it)."""

  field: str
  old: Any
  new: Any

  def describe(self) -> str:
    return f'config.{self.field}: {_show(self.old)} -> {_show(self.new)}'


ABSENT = '(absent)'


def scope(field: str) -> str:
  """The scope of a dotted field: SHARED, PRETRAIN, FINETUNE or FREE."""
  return schema.scope(field)


def flatten(config: ml_collections.ConfigDict | dict[str, Any], prefix: str = '') -> dict[str, Any]:
  """{dotted field: JSON value} of every leaf (tuples become lists, as after a round trip through JSON)."""
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  flat = {}
  for key, value in config.items():
    field = f'{prefix}{key}'
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      flat.update(flatten(value, field + '.'))
    else:
      flat[field] = json.loads(json.dumps(value, default=str))
  return flat


def stage_recipe(config: ml_collections.ConfigDict, stage: str) -> dict[str, Any]:
  """{dotted field: value} of everything that determines what ``stage`` trains.

  Fine-tuning from this run's pretrained T1 also depends on the pretraining recipe.
  """
  if stage not in STAGES:
    raise ValueError(f'unknown stage {stage!r}; expected one of {STAGES}')
  scopes = {SHARED, stage}
  finetune = config.get('finetune', {})
  if stage == FINETUNE and finetune.get('t1_init', 'pretrained') == 'pretrained' and not config.get('init_from'):
    scopes.add(PRETRAIN)
  return {field: value for field, value in sorted(flatten(config).items()) if scope(field) in scopes}


def changes(stored: dict[str, Any], current: dict[str, Any]) -> list[Change]:
  """The fields whose values differ between two recipes, in field order."""
  fields = sorted(set(stored) | set(current))
  return [Change(field, stored.get(field, ABSENT), current.get(field, ABSENT)) for field in fields
          if stored.get(field, ABSENT) != current.get(field, ABSENT)]


def mismatch_message(where: str, found: list[Change]) -> str:
  """The refusal of a rerun whose recipe differs from what ``where`` was trained with."""
  lines = [f'{where} was trained with a different recipe; {len(found)} field(s) changed (stored -> now):']
  lines += [f'  {change.describe()}' for change in found]
  lines.append('Rerun with the stored values, choose a new --config.workdir, or pass --config.restart=True to '
               'move the old results aside and start over.')
  return '\n'.join(lines)


def _show(value: Any) -> str:
  if value is ABSENT:
    return ABSENT
  return json.dumps(value)
