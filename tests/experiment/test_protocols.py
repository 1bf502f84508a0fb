"""Benchmark protocols end to end at smoke size: saved per-clip scores, few-shot mode, ensembles of real work dirs,
and NTU RGB+D 120 through training, evaluation and the probe."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from cascadeformer_jax.config import configuration
from cascadeformer_jax import data as data_lib
from cascadeformer_jax import ensemble as ensemble_cli
from cascadeformer_jax.experiment import runner as experiment
from cascadeformer_jax.data import layouts
from cascadeformer_jax.evaluate import ensemble
from cascadeformer_jax.evaluate import few_shot_evaluation
from cascadeformer_jax.models import presets
from data_builders import ntu_rgbd120
from tests.data_builders import fixtures
from tests.data_builders import helpers

pytestmark = pytest.mark.cost(70)  # seconds on 2 cores, roughly: the suite starts long files first

SMOKE = pathlib.Path(__file__).resolve().parents[2] / 'configs' / 'smoke.py'


@pytest.fixture(scope='module')
def compile_fast():
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  yield
  jax.config.update('jax_disable_most_optimizations', previous)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('protocol_data')
  helpers.build('synthetic_actions', root / 'tfds', config='tiny')
  fixtures.write_n_ucla(root / 'manual')
  helpers.build('n_ucla', root / 'tfds', root / 'manual')
  fixtures.write_ntu120_skeletons(root / 'manual')
  helpers.build('ntu_rgbd120', root / 'tfds', root / 'manual', config='xsub')
  return root / 'tfds'


def smoke(dataset: str, data_dir: pathlib.Path, workdir: pathlib.Path, **data):
  config = configuration.load_config_file(SMOKE, f'{dataset},1.0')
  config.update(workdir=str(workdir), progress=False, tensorboard=False)
  config.data.data_dir = str(data_dir)
  if dataset == 'synthetic_actions':
    config.data.tfds_config = 'tiny'
  config.data.update(data)
  if 'representation' in data:
    config.model.coords = 3  # joint, bone, motion and bone_motion all keep 3 channels
  return config


@pytest.fixture(scope='module')
def streams(data_dir, tmp_path_factory, compile_fast):
  """Two trained synthetic_actions streams (joint, bone_motion) with a one-clip-per-class hold-out."""
  root = tmp_path_factory.mktemp('streams')
  dirs = {}
  for representation in ('joint', 'bone_motion'):
    config = smoke('synthetic_actions', data_dir, root / representation, holdout_fraction=0.34,
                   representation=representation)
    config.mode = 'finetune'  # from scratch: the scores and embeddings need a classifier, not pretraining
    config.finetune.t1_init = 'scratch'
    experiment.run(config)
    dirs[representation] = root / representation
  return dirs


def test_evaluation_saves_scores_of_test_and_holdout(streams):
  test = ensemble.load_workdir_scores(streams['joint'])
  holdout = ensemble.load_workdir_scores(streams['joint'], 'holdout')
  results = json.loads((streams['joint'] / 'results.json').read_text())
  assert (test.split, test.dataset, len(test.labels)) == ('test', 'synthetic_actions', results['count'])
  assert test.logits.shape == (10, 10) and holdout.split == 'holdout' and len(holdout.labels) == 10
  assert np.mean(test.logits.argmax(1) == test.labels) == pytest.approx(results['accuracy'])
  assert len(set(test.sample_ids) | set(holdout.sample_ids)) == 20 and all(test.sample_ids)


def test_ensemble_of_real_workdirs(streams, tmp_path):
  dirs = [str(streams['joint']), str(streams['bone_motion'])]
  ensemble_cli.run(dirs, None, str(tmp_path / 'fused.json'), search=True)
  results = json.loads((tmp_path / 'fused.json').read_text())
  assert results['split'] == 'test' and results['weight_search']['split'] == 'holdout'
  own = [ensemble.load_workdir_scores(d) for d in dirs]
  expected = ensemble.accuracy_metrics(sum(w * ensemble.softmax(s.logits) for w, s in zip(results['weights'], own)),
                                       own[0].labels)
  assert results['ensemble']['top1'] == expected['top1']
  assert [row['top1'] for row in results['streams']] == [float(np.mean(s.logits.argmax(1) == s.labels)) for s in own]


def test_few_shot_mode(streams, data_dir, tmp_path, compile_fast):
  config = smoke('synthetic_actions', data_dir, streams['joint'], holdout_fraction=0.34)
  config.mode = 'few_shot'
  config.few_shot.update(shots='1,2', runs=3)
  summary = experiment.run(config)['few_shot']
  written = json.loads((streams['joint'] / 'few_shot.json').read_text())
  assert written['shots'].keys() == {'1', '2'} and written['num_queries'] == 10 and written['num_support'] == 20
  assert written['model'].endswith('finetune/final') and written['model_kind'] == 'classifier'
  for entry in written['shots'].values():
    assert entry['runs'] == 3 and 0 <= entry['mean'] <= 1 and entry['std'] >= 0
  assert summary['shots']['1']['mean'] == written['shots']['1']['mean']
  report = (streams['joint'] / 'report.md').read_text()
  assert report.count('## Few-shot') == 1 and '| 2 |' in report and '## ' in report.split('## Few-shot')[0]
  # Another work dir, the model of the first (init_from), an intermediate as embedding; 3 shots exceed the 2
  # training clips per class left after the hold-out.
  other = smoke('synthetic_actions', data_dir, tmp_path / 'other', holdout_fraction=0.34)
  other.update(mode='few_shot', init_from=str(streams['joint']))
  other.few_shot.update(shots='3', runs=2, embedding='t2_features')
  with pytest.raises(ValueError, match=r'3-shot: 10 class\(es\) have fewer training clips than 3 shots \(class 0: 2, '
                                       r'class 1: 2, .*, \.\.\.\)'):
    experiment.run(other)
  other.few_shot.replace = True
  result = experiment.run(other)['few_shot']
  assert result['embedding'] == 't2_features' and result['shots']['3']['runs'] == 2


def test_few_shot_command_line_across_joint_layouts(data_dir, tmp_path, compile_fast):
  """A model trained on N-UCLA (20 joints) embeds synthetic_actions clips (25 Kinect v2 joints), mapped; run through
  the command line with the original procedure."""
  nucla = smoke('n_ucla', data_dir, tmp_path / 'nucla')
  nucla.update(mode='finetune')
  nucla.finetune.t1_init = 'scratch'
  experiment.run(nucla)
  command = [sys.executable, '-m', 'cascadeformer_jax.main', '--config=configs/smoke.py:synthetic_actions,1.0',
             '--config.mode=few_shot', f'--config.init_from={tmp_path / "nucla"}', '--config.data.tfds_config=tiny',
             f'--config.data.data_dir={data_dir}', f'--config.workdir={tmp_path / "cli"}', '--config.few_shot.shots=1',
             '--config.few_shot.runs=2', '--config.few_shot.procedure=original_transfer_ucla',
             '--config.progress=False']
  done = subprocess.run(command, cwd=SMOKE.parents[1], env=dict(os.environ, JAX_PLATFORMS='cpu'),
                        capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert '1-shot accuracy' in done.stdout and 'on 10 clips' in done.stdout
  written = json.loads((tmp_path / 'cli' / 'few_shot.json').read_text())
  assert written['procedure'] == 'original_transfer_ucla' and written['seed'] == 42
  assert written['joint_mapping'] == 'anatomical' and written['model'].endswith('finetune/final')
  config = smoke('synthetic_actions', data_dir, tmp_path / 'bad')
  config.mode = 'few_shot'
  config.few_shot.shots = '1,x'
  with pytest.raises(ValueError, match=r"few_shot.shots='1,x': expected comma-separated positive integers"):
    experiment.run(config)


def test_clip_map_between_joint_layouts():
  ntu_model = presets.published_model_config('ntu60_xsub', '1.0')
  nucla_data = data_lib.default_data_config('n_ucla')
  partition = np.asarray(layouts.NUCLA_PARTITION_ORDER)
  clips = np.random.default_rng(0).standard_normal((2, 4, 20, 3)).astype(np.float32)  # pipeline output order
  native = clips[..., np.argsort(partition), :]
  clip_map = few_shot_evaluation.clip_map
  mapped = clip_map(nucla_data, ntu_model)(clips)
  np.testing.assert_allclose(mapped, layouts.convert(native, 'nucla20', 'ntu25'), rtol=1e-6)
  np.testing.assert_array_equal(mapped[..., 3, :], native[..., 3, :])  # head <- head
  # The original's map indexes the partition-ordered clip as if it were native: NTU joint k <- clip joint k.
  original = clip_map(nucla_data, ntu_model, 'original_partition_order')(clips)
  np.testing.assert_array_equal(original, clips[..., list(range(20)) + [2, 7, 7, 11, 11], :])
  # NTU clips into an N-UCLA model: anatomical map, then the model's partition order.
  nucla_model = presets.published_model_config('n_ucla', '1.0')
  ntu_clips = np.random.default_rng(1).standard_normal((1, 3, 25, 3)).astype(np.float32)
  into_nucla = clip_map(data_lib.default_data_config('ntu60_xsub'), nucla_model)(ntu_clips)
  np.testing.assert_allclose(into_nucla, layouts.convert(ntu_clips, 'ntu25', 'nucla20')[..., partition, :],
                             rtol=1e-6)
  assert clip_map(nucla_data, nucla_model) is None
  with pytest.raises(few_shot_evaluation.FewShotSetupError,
                     match=r"config.few_shot.mapping: mapping 'original_partition_order'"):
    clip_map(data_lib.default_data_config('ntu60_xsub'), nucla_model, 'original_partition_order')
  with pytest.raises(few_shot_evaluation.FewShotSetupError,
                     match='only joint coordinates with the same number of channels'):
    clip_map(data_lib.default_data_config('penn_action'), ntu_model)


def test_few_shot_without_a_model(data_dir, tmp_path):
  config = smoke('synthetic_actions', data_dir, tmp_path / 'empty')
  config.mode = 'few_shot'
  with pytest.raises(experiment.TrainingError, match='few_shot needs a model'):
    experiment.run(config)
  config.few_shot.embedding = 'attention'
  with pytest.raises(ValueError, match=r"config.few_shot.embedding='attention': must be one of"):
    experiment.run(config)


def test_ntu120_auxiliary_class_subset(data_dir):
  config = smoke('ntu120_xsub', data_dir, pathlib.Path('unused'))
  # Fixture labels: train 0, 105, 119; test 60, 109. Labels 0 and 60 (A001, A061) are one-shot evaluation classes.
  config.data.class_subset = 'ntu120_auxiliary'
  assert [data_lib.num_examples(config.data, split) for split in ('train', 'test')] == [2, 1]
  config.data.update(class_subset='', holdout_fraction=0.0)
  assert [data_lib.num_examples(config.data, split) for split in ('train', 'test')] == [3, 2]
  with pytest.raises(ValueError, match=r"class_subset='ntu120_auxiliary' needs ntu120_xsub or ntu120_xset"):
    data_lib.num_examples(smoke('synthetic_actions', data_dir, pathlib.Path('unused'),
                                class_subset='ntu120_auxiliary').data, 'train')


def test_ntu120_train_probe_and_one_shot_protocol(data_dir, tmp_path, compile_fast):
  config = smoke('ntu120_xsub', data_dir, tmp_path / 'ntu120')
  results = experiment.run(config)['test']
  assert results['count'] == 2 and len(results['per_class']) == 120
  # The test clips are A061 (single person) and A110 (two-person in NTU120).
  assert {k: v['count'] for k, v in results['person_type'].items()} == {'single_person': 1, 'two_person': 1}
  assert ensemble.load_workdir_scores(tmp_path / 'ntu120').sample_ids.tolist() == [
      'S020C001P060R001A061', 'S032C002P106R001A110']
  config.mode = 'probe'
  config.probe.update(epochs=2, batch_size=2)
  assert experiment.run(config)['probe']['num_test'] == 2
  config.update(mode='few_shot')
  config.few_shot.protocol = 'ntu120_one_shot'
  with pytest.raises(ValueError, match=r'exemplar\(s\) .*S001C003P008R001A001.* \(20 of 20\) are not among the 5 '
                                       r'clips read'):
    experiment.run(config)
  # A dataset that holds the 20 official exemplars (P008: x-sub training) and two more clips of evaluation classes.
  manual = tmp_path / 'one_shot_manual'
  folder = fixtures.write_ntu120_skeletons(manual)
  text = fixtures.ntu_fixture_texts()['S001C001P001R001A001']
  for name in ntu_rgbd120.one_shot_protocol()['exemplars'] + ['S001C001P003R001A007', 'S018C001P003R001A013']:
    (folder / f'{name}.skeleton').write_text(text)
  helpers.build('ntu_rgbd120', tmp_path / 'one_shot_tfds', manual, config='xsub')
  config.data.data_dir = str(tmp_path / 'one_shot_tfds')
  config.update(workdir=str(tmp_path / 'one_shot'), init_from=str(tmp_path / 'ntu120'))
  result = experiment.run(config)['few_shot']
  # Queries: every non-exemplar clip of an evaluation class: A001 and A061 of the fixtures, A007 and A013 above.
  assert (result['num_classes'], result['num_queries'], result['shots']['1']['runs']) == (20, 4, 1)
  assert result['shots']['1']['mean'] in (0.0, 0.25, 0.5, 0.75, 1.0)
