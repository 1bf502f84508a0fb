"""The recipe of a run: the part of its config that changes what a training stage produces.

Every config field declares its scope in the config schema (config/schema.py): part of the recipe of both stages
(`SHARED`: dataset, model, data preprocessing, seed), of one stage (`PRETRAIN`, `FINETUNE`), or a setting that
never changes a trained result (`FREE`: mode, paths, display, checkpoint cadence, evaluation-only settings, ...).
A field the schema does not declare counts as `SHARED`, so a new setting blocks a rerun until it is declared.

A stage stores `stage_recipe(config, stage)` with its checkpoints and model directories; a later run compares its
own with `changes(stored, current)` before any work and refuses to mix results of two recipes.

The data a stage was trained on is part of its recipe: `data.identity`, recorded when the run reads its dataset (a
folder's content fingerprint, a built dataset's builder version and split sizes). Recipes written before it was
recorded are compared without it, and where the data was found (`data.folder`, `data.tfds_config`) does not count
when both recipes record the same data.
"""

import dataclasses
import json
import re
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


# Fields recorded when a run reads its dataset: an absent value (a recipe from before they were recorded) is no change.
RECORDED = ('data.identity',)
# Where the data was found: no change while both recipes record the same data (a copied or moved folder).
LOCATIONS = ('data.folder', 'data.tfds_config')
# A folder dataset's build is named `<dataset name>-<16 hex digits of its content fingerprint>` (recipes from before
# content fingerprints name the dataset alone): its content is data.identity's to compare, so the key is left out.
_BUILD_KEY = re.compile(r'-[0-9a-f]{16}$')


@dataclasses.dataclass(frozen=True)
class Change:
  """One recipe field whose stored and current values differ (`ABSENT` where a side lacks it); `explanation`
  replaces the two values in the description when set."""

  field: str
  old: Any
  new: Any
  explanation: str = ''

  def describe(self) -> str:
    if self.explanation:
      return f'config.{self.field}: {self.explanation}'
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
  """The fields whose values differ between two recipes, in field order (see the module docstring for the data)."""
  unrecorded = {field for field in RECORDED if field not in stored or field not in current}
  same_data = all(field in stored and stored[field] == current.get(field, ABSENT) for field in RECORDED)
  skipped = unrecorded | (set(LOCATIONS) if same_data else set())
  fields = sorted((set(stored) | set(current)) - skipped)
  return [Change(field, stored.get(field, ABSENT), current.get(field, ABSENT)) for field in fields
          if _compared(field, stored.get(field, ABSENT)) != _compared(field, current.get(field, ABSENT))]


def _compared(field: str, value: Any) -> Any:
  return _BUILD_KEY.sub('', value) if field == 'data.tfds_config' and isinstance(value, str) else value


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
