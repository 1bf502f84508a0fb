"""The recipe of every shipped config is what it was when its work directories were written.

tests/configs/shipped_recipes.json holds, for every field of a shipped config, its recipe scope, and for every
shipped config and stage the SHA-256 of its `stage_recipe` as canonical JSON. A work directory stores that recipe
and refuses a rerun whose recipe differs, so a changed entry would make existing work directories unusable unless
the change reads their stored value back (configs/custom.py: `data.generic.person_selection='auto'` takes the rule a
work directory was trained with, tests/config/test_configuration.py).
"""

import hashlib
import json
import pathlib

import pytest

from cascadeformer_jax.run import recipe
from tests.configs import shipped

FROZEN = json.loads((pathlib.Path(__file__).parent / 'shipped_recipes.json').read_text())
CONFIGS = dict(shipped.shipped_configs())


def _digest(stage_recipe: dict) -> str:
  return hashlib.sha256(json.dumps(stage_recipe, sort_keys=True).encode()).hexdigest()


def test_every_shipped_config_is_frozen():
  assert sorted(CONFIGS) == sorted(FROZEN['recipes'])


def test_every_field_keeps_its_scope():
  fields = {field for config in CONFIGS.values() for field in recipe.flatten(config)}
  assert set(FROZEN['scopes']) <= fields
  # A field added since the freeze leaves every stored recipe as it was only if it is free.
  assert {field: recipe.scope(field) for field in fields - set(FROZEN['scopes'])
          if recipe.scope(field) != recipe.FREE} == {}
  changed = {field: (scope, recipe.scope(field)) for field, scope in FROZEN['scopes'].items()
             if recipe.scope(field) != scope}
  assert changed == {}


@pytest.mark.parametrize('name', sorted(FROZEN['recipes']))
def test_stage_recipes_are_unchanged(name):
  for stage in recipe.STAGES:
    assert _digest(recipe.stage_recipe(CONFIGS[name], stage)) == FROZEN['recipes'][name][stage], (name, stage)
