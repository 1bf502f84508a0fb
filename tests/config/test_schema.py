"""The config schema declares every field of every shipped config once, and agrees with the code that acts on it."""

import collections

import pytest

from cascadeformer_jax import data as data_lib
from cascadeformer_jax.config import config_checks
from cascadeformer_jax.config import configuration
from cascadeformer_jax.config import schema
from cascadeformer_jax.data import transforms
from cascadeformer_jax.evaluate import evaluators
from cascadeformer_jax.evaluate import few_shot
from cascadeformer_jax.evaluate import protocols
from cascadeformer_jax.models import config as model_config_lib
from cascadeformer_jax.models import presets
from cascadeformer_jax.models import pretraining
from cascadeformer_jax.objectives import masking
from cascadeformer_jax.run import recipe
from cascadeformer_jax.run import runtime
from cascadeformer_jax.train import optim
from cascadeformer_jax.train import trainer
from tests.configs import shipped


def test_every_field_is_declared_once():
  counts = collections.Counter(field.path for field in schema.FIELDS)
  assert [path for path, count in counts.items() if count > 1] == []
  for name, config in shipped.shipped_configs():
    undeclared = sorted(set(recipe.flatten(config)) - set(schema.BY_PATH))
    assert undeclared == [], name


def test_every_declaration_is_complete():
  for field in schema.FIELDS:
    assert field.scope in schema.SCOPES, field.path
    assert field.doc and '\n' not in field.doc, field.path
    if field.has_default:
      assert field.allowed.allows(field.default), field.path


@pytest.mark.parametrize('dataset', schema.DATASETS + (schema.FOLDER,))
def test_built_configs_take_the_declared_defaults(dataset):
  model = presets.published_model_config('n_ucla', '1.0')
  flat = recipe.flatten(configuration.experiment_config(dataset, model))
  for field in schema.FIELDS:
    if field.has_default and field.path in flat:
      assert flat[field.path] == recipe.flatten({'value': field.default})['value'], field.path
  assert configuration.stage_config().to_dict() == {
      name: value for name, value in schema.defaults('pretrain').items() if name in configuration.stage_config()}


@pytest.mark.parametrize('declared,used', [
    (schema.MODEL_VARIANTS, model_config_lib.VARIANTS),
    (schema.MODEL_LAYOUTS, model_config_lib.LAYOUTS),
    (schema.SPATIAL_FORMS, model_config_lib.SPATIAL_FORMS),
    (schema.CROSS_ATTENTIONS, model_config_lib.CROSS_ATTENTIONS),
    (schema.HEADS, model_config_lib.HEADS),
    (schema.DECODERS, model_config_lib.DECODERS),
    (schema.POS_INITS, model_config_lib.POS_INITS),
    (schema.POOLINGS, model_config_lib.POOLINGS),
    (schema.REPRESENTATIONS, transforms.REPRESENTATIONS),
    (schema.OPTIMIZERS, optim.OPTIMIZERS),
    (schema.SCHEDULES, optim.SCHEDULES),
    (schema.FREEZE, optim.FREEZE),
    (schema.SELECTIONS, trainer.SELECTIONS),
    (schema.MASK_MODES, masking.MASK_MODES),
    (schema.OBJECTIVES, pretraining.OBJECTIVES),
    (schema.PROTOCOLS, tuple(protocols.PROTOCOLS)),
    (schema.FEW_SHOT_PROCEDURES, few_shot.PROCEDURES),
    (schema.EMBEDDINGS, evaluators.EMBEDDINGS),
    (schema.MATMUL_PRECISIONS, runtime.MATMUL_PRECISIONS),
    (schema.PRNG_IMPLS, runtime.PRNG_IMPLS),
])
def test_choice_lists_agree_with_the_code(declared, used):
  assert tuple(declared) == tuple(used)


def test_derived_tables_cover_every_field_once():
  checked = {path for path, _, _ in config_checks.CONSTRAINTS}
  assert not checked & config_checks.FREE_TEXT
  assert checked | config_checks.FREE_TEXT == set(schema.BY_PATH)
  assert dict(recipe.FIELDS) == {field.path: field.scope for field in schema.FIELDS}


@pytest.mark.parametrize('drop_prob,allowed', [(0.0, True), (1.0, True), (-0.1, False), (1.1, False)])
def test_drop_prob_is_a_probability_everywhere(drop_prob, allowed):
  config = dict(shipped.shipped_configs())['nucla_v1_2.py']
  config.data.nucla.drop_prob = drop_prob
  errors = config_checks.violations(config)
  assert errors == ([] if allowed else [f'config.data.nucla.drop_prob={drop_prob}: must be a finite number in [0, 1]'])
  if allowed:
    data_lib.validate_data_config(config.data)
  else:
    with pytest.raises(ValueError, match=r'config.data.nucla.drop_prob=.*: must be a finite number in \[0, 1\]'):
      data_lib.validate_data_config(config.data)
