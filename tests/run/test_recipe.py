"""The recipe of a run: which settings change a trained result, and how a change is reported."""

import fnmatch
import pathlib

import pytest

from cascadeformer_jax.config import configuration
from cascadeformer_jax.run import recipe

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _demo():
  return configuration.load_config_file(REPO_ROOT / 'configs' / 'demo.py')


@pytest.mark.parametrize('arg', ['synthetic_actions,1.0', 'n_ucla,1.1', 'penn_action,1.0', 'ntu60_xview,1.2'])
def test_every_field_is_classified_explicitly(arg):
  config = configuration.load_config_file(REPO_ROOT / 'configs' / 'smoke.py', arg)
  for field in recipe.flatten(config):
    assert any(fnmatch.fnmatchcase(field, pattern) for pattern, _ in recipe.FIELDS), field


def test_free_settings_never_change_the_recipe():
  config = _demo()
  before = {stage: recipe.stage_recipe(config, stage) for stage in recipe.STAGES}
  config.mode = 'eval'
  config.workdir = '/elsewhere'
  config.progress = False
  config.tensorboard = False
  config.log_every_steps = 1
  config.checkpoint.every_epochs = 3
  config.eval.protocols = 'per_clip'
  config.eval.batch_size = 7
  config.probe.epochs = 5
  config.data.num_workers = 2
  config.data.data_dir = '/data'
  config.distributed.num_processes = 2
  for stage in recipe.STAGES:
    assert recipe.changes(before[stage], recipe.stage_recipe(config, stage)) == []


def test_changes_name_each_field_with_old_and_new_value():
  config = _demo()
  stored = recipe.stage_recipe(config, 'finetune')
  config.finetune.lr = 0.5
  config.finetune.epochs = 2
  config.pretrain.mask_ratio = 0.25
  found = recipe.changes(stored, recipe.stage_recipe(config, 'finetune'))
  assert [change.describe() for change in found] == [
      'config.finetune.epochs: 15 -> 2', 'config.finetune.lr: 0.001 -> 0.5', 'config.pretrain.mask_ratio: 0.5 -> 0.25']
  message = recipe.mismatch_message('workdirs/demo/finetune', found)
  assert 'config.finetune.lr: 0.001 -> 0.5' in message and '--config.restart=True' in message
  assert '--config.workdir' in message


def test_stage_recipes_hold_what_the_stage_depends_on():
  config = _demo()
  pretrain = recipe.stage_recipe(config, 'pretrain')
  assert 'pretrain.lr' in pretrain and 'finetune.lr' not in pretrain and 'model.d_model' in pretrain
  assert 'pretrain.lr' in recipe.stage_recipe(config, 'finetune')  # starts from this run's pretrained T1
  config.finetune.t1_init = 'scratch'
  assert 'pretrain.lr' not in recipe.stage_recipe(config, 'finetune')
  config.finetune.t1_init = 'pretrained'
  config.init_from = 'converted/model'
  assert recipe.stage_recipe(config, 'finetune')['init_from'] == 'converted/model'
  assert 'pretrain.lr' not in recipe.stage_recipe(config, 'finetune')


def test_unclassified_fields_count_as_recipe_and_absent_fields_are_shown():
  assert recipe.scope('some_new_setting') == recipe.SHARED
  found = recipe.changes({'a': 1}, {'b': [1, 2]})
  assert [change.describe() for change in found] == ['config.a: 1 -> (absent)', 'config.b: (absent) -> [1, 2]']


def test_the_data_identity_counts_when_both_recipes_record_it_and_makes_its_location_irrelevant():
  stored = {'data.folder': '/a/clips', 'data.tfds_config': 'clips', 'seed': 1}
  moved = {'data.folder': '/b/clips', 'data.tfds_config': 'clips-0123456789abcdef', 'seed': 1}
  # A recipe from before the data was recorded: its absence is no change, the folder still is (a folder build's
  # content key is data.identity's to compare).
  assert recipe.changes(stored, dict(stored, **{'data.identity': 'sha256:x'})) == []
  assert [c.field for c in recipe.changes(stored, dict(moved, **{'data.identity': 'sha256:x'}))] == ['data.folder']
  assert [c.field for c in recipe.changes(stored, dict(stored, **{'data.tfds_config': 'other'}))] == [
      'data.tfds_config']
  # The same data, found elsewhere (a copied folder, another build of it): no change.
  same = {'data.identity': 'sha256:x'}
  assert recipe.changes(dict(stored, **same), dict(moved, **same)) == []
  found = recipe.changes(dict(stored, **same), dict(stored, **{'data.identity': 'sha256:y'}))
  assert [change.describe() for change in found] == ['config.data.identity: "sha256:x" -> "sha256:y"']
  explained = recipe.Change('data.identity', 'sha256:x', 'sha256:y', explanation="dataset 'clips' changed")
  assert explained.describe() == "config.data.identity: dataset 'clips' changed"
