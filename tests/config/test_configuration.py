"""A folder dataset's person selection against its work directory: runs trained before 'observed_motion' became the
default keep their rule and rerun without a refusal; new runs get 'observed_motion'."""

import json

import pytest

from cascadeformer_jax.config import configuration
from cascadeformer_jax.experiment import runner
from cascadeformer_jax.run import recipe as recipe_lib
from cascadeformer_jax.run import workdir as workdir_lib
from tests.conftest import REPO_ROOT

FIELD = 'data.generic.person_selection'


def _custom(workdir, **generic):
  config = configuration.load_config_file(REPO_ROOT / 'configs' / 'custom.py')
  config.workdir = str(workdir)
  config.data.generic.update(generic)
  return config


def _trained_workdir(path, rule):
  """A work directory whose stages were trained with ``rule`` (None: recipes without the field), as recorded by the
  code before 'auto'."""
  trained = _custom(path, person_selection=rule or 'abs_sum')
  workdir = workdir_lib.Workdir(path)
  for stage in workdir_lib.STAGES:
    recipe = recipe_lib.stage_recipe(trained, stage)
    if rule is None:
      del recipe[FIELD]
    workdir.recipe_file(stage).parent.mkdir(parents=True)
    workdir.recipe_file(stage).write_text(json.dumps(recipe, indent=1, sort_keys=True) + '\n')
  return workdir


def _resolved(config):
  configuration.resolve_person_selection(config)
  return config.data.generic.person_selection


def test_a_work_directory_trained_with_the_former_default_keeps_it(tmp_path):
  workdir = _trained_workdir(tmp_path / 'old', 'abs_sum')
  config = _custom(workdir.path)
  assert config.data.generic.person_selection == 'auto'
  assert _resolved(config) == 'abs_sum'
  runner.check_recipes(config, workdir)  # the same recipe: resumes, or reports "complete"
  # A rule the config sets is kept: another rule than the trained one is a changed recipe.
  explicit = _custom(workdir.path, person_selection='observed_motion')
  assert _resolved(explicit) == 'observed_motion'
  with pytest.raises(runner.RecipeMismatchError, match=f'config.{FIELD}: "abs_sum" -> "observed_motion"'):
    runner.check_recipes(explicit, workdir)
  restarted = _custom(workdir.path)
  restarted.restart = True  # the old results are moved aside: a new run
  assert _resolved(restarted) == 'observed_motion'
  assert _resolved(_custom(tmp_path / 'new')) == 'observed_motion'


@pytest.mark.parametrize('stored', ['motion_variance', None])
def test_the_trained_rule_wins_over_auto(tmp_path, stored):
  workdir = _trained_workdir(tmp_path / 'old', stored)
  assert _resolved(_custom(workdir.path)) == (stored or 'abs_sum')
  # Without recipe files (eval-only or older work directories), the stored config.
  workdir.recipe_file(workdir_lib.PRETRAIN).unlink()
  workdir.recipe_file(workdir_lib.FINETUNE).unlink()
  workdir.config_file.write_text(_custom(workdir.path, person_selection='first').to_json())
  assert _resolved(_custom(workdir.path)) == 'first'
