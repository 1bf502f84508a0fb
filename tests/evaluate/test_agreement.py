"""Evaluation, predict on a split, predict on raw clips and the API compute the same classifier outputs.

Penn Action clips have different lengths (the fixture's training split: 3 and 4 frames), so batches are zero-padded: a padding-aware model (masked-mean pooling,
attention padding masks) must give every clip the outputs it has alone, whichever way the clip reaches it.
"""

import json
import pathlib

import jax
import numpy as np
import pytest

import cascadeformer_jax as cfx
from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.config import configuration
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.run import recipe
from cascadeformer_jax.data import preprocessing
from cascadeformer_jax.data import sources
from cascadeformer_jax.evaluate import evaluators
from cascadeformer_jax.evaluate import inference
from cascadeformer_jax.models import CascadeClassifier

SMOKE = pathlib.Path(__file__).resolve().parents[2] / 'configs' / 'smoke.py'


@pytest.fixture(scope='module')
def penn_model(fixture_data_dir, tmp_path_factory):
  config = configuration.load_config_file(SMOKE, 'penn_action,1.0')
  config.data.data_dir = str(fixture_data_dir)
  config.model.pooling = 'masked_mean'
  config.model.attention_padding_mask = True
  model_config = configuration.model_config(config)
  x = np.zeros((1, 8, model_config.num_joints, model_config.coords), np.float32)
  params = CascadeClassifier(model_config).init(jax.random.key(3), x)['params']
  # Non-zero positional embeddings, so that a frame's position matters.
  params['t1']['pos_embedding'] = jax.random.normal(jax.random.key(4), params['t1']['pos_embedding'].shape)
  directory = tmp_path_factory.mktemp('penn_model') / 'model'
  stored = preprocessing.describe(config.data, sources.class_names(config.data))
  checkpoint_io.save_model_dir(directory, model_config, {checkpoint_io.CLASSIFIER: params}, preprocessing=stored)
  return config, model_config, params, directory


def test_evaluation_and_predict_agree_on_a_padding_aware_penn_model(penn_model):
  config, model_config, params, directory = penn_model
  mesh = partitioning.make_mesh()
  evaluated = evaluators.ClassifierEvaluator(model_config, config.data, 'train', 4, mesh).predict(
      partitioning.replicate(params, mesh))
  # The model brings its own preprocessing: no config (data_dir is the one free setting a split needs).
  predictor = inference.Predictor.load(str(directory))
  predictor.data_config.data_dir = config.data.data_dir
  assert predictor.class_names == sources.class_names(config.data)
  split = predictor.predict_split('train', batch_size=4)
  np.testing.assert_allclose(split['logits'], evaluated['logits'], rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(split['labels'], evaluated['label'])

  source = sources.open_split(config.data, 'train')
  # A user's clip has its occluded joints at 0 already (the stored examples keep them with a visibility flag).
  stored = [source[int(i)] for i in evaluated['index']]
  clips = [np.where(np.asarray(e['visibility'])[..., None], np.asarray(e['skeleton']), 0) for e in stored]
  lengths = {len(clip) for clip in clips}
  assert len(lengths) > 1, 'the fixture clips must differ in length for this test to mean anything'
  raw = predictor.predict_raw(clips, [f'clip{i}' for i in range(len(clips))])
  np.testing.assert_allclose(raw['logits'], evaluated['logits'], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(raw['features'], evaluated['pooled'], rtol=1e-4, atol=1e-4)

  # The API on one unpadded clip gives the same logits as well, and on the raw clips with the stored preprocessing.
  model = cfx.load_classifier(directory)
  longest = int(np.argmax([len(clip) for clip in clips]))
  np.testing.assert_allclose(model(clips[longest])[0], evaluated['logits'][longest], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(model.predict_raw(clips), evaluated['logits'], rtol=1e-4, atol=1e-4)
  assert model.class_names == predictor.class_names


def test_a_config_that_contradicts_the_model_is_refused_in_one_line(penn_model):
  config, _, _, directory = penn_model
  given = config.copy_and_resolve_references()
  given.data.representation = 'bone'
  with pytest.raises(preprocessing.PreprocessingMismatchError) as refused:
    inference.Predictor.load(str(directory), given)
  assert "data.representation: 'joint' → 'bone'" in str(refused.value) and '\n' not in str(refused.value)
  given = config.copy_and_resolve_references()
  given.eval.batch_size = 2  # free: no contradiction
  assert inference.Predictor.load(str(directory), given).batch_size == 2


def test_a_model_without_stored_preprocessing_asks_for_a_config(penn_model, tmp_path):
  config, model_config, params, _ = penn_model
  checkpoint_io.save_model_dir(tmp_path / 'old', model_config, {checkpoint_io.CLASSIFIER: params})
  with pytest.raises(checkpoint_io.ModelDirError, match='pass --config'):
    inference.Predictor.load(str(tmp_path / 'old'))
  predictor = inference.Predictor.load(str(tmp_path / 'old'), config)
  assert predictor.preprocessing['stored_layout']['name'] == 'penn13'


def test_the_padding_mask_matters_for_that_model(penn_model):
  """Without the mask the padded batch gives other logits, so the agreement above is not trivial."""
  config, model_config, params, _ = penn_model
  mesh = partitioning.make_mesh()
  unaware = model_config.replace(pooling='mean', attention_padding_mask=False)
  aware = evaluators.ClassifierEvaluator(model_config, config.data, 'train', 4, mesh).predict(params)
  plain = evaluators.ClassifierEvaluator(unaware, config.data, 'train', 4, mesh).predict(params)
  assert not np.allclose(aware['logits'], plain['logits'], atol=1e-3)


def test_a_model_trained_before_the_preprocessing_was_stored_rebuilds_it_from_its_recipe(penn_model, tmp_path):
  config, model_config, params, directory = penn_model
  old = tmp_path / 'old'
  checkpoint_io.save_model_dir(old, model_config, {checkpoint_io.CLASSIFIER: params},
                               {'recipe': recipe.stage_recipe(config, recipe.FINETUNE)})
  metadata = json.loads((old / checkpoint_io.METADATA_FILE).read_text())
  del metadata['preprocessing']
  metadata['format'] = 'cascadeformer_jax.model_dir/1'
  (old / checkpoint_io.METADATA_FILE).write_text(json.dumps(metadata))
  rebuilt, stored = inference.Predictor.load(str(old)), inference.Predictor.load(str(directory))
  assert rebuilt.preprocessing == stored.preprocessing
  assert rebuilt.class_names == stored.class_names
