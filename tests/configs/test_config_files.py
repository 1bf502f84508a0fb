"""Every config file loads and describes the published architecture it names."""

import pathlib

import pytest

from cascadeformer_jax.config import configuration
from cascadeformer_jax.models import presets

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / 'configs'
PUBLISHED = {f'{prefix}_v{variant.replace(".", "_")}.py': (dataset, variant)
             for dataset, prefix in (('penn_action', 'penn'), ('n_ucla', 'nucla'), ('ntu60_xsub', 'ntu60_xsub'),
                                     ('ntu60_xview', 'ntu60_xview'))
             for variant in presets.VARIANTS}


@pytest.mark.parametrize('file_name', sorted(PUBLISHED))
def test_published_config_files(file_name):
  dataset, variant = PUBLISHED[file_name]
  path = CONFIG_DIR / file_name
  config = configuration.load_config_file(path)
  assert configuration.model_config(config) == presets.published_model_config(dataset, variant)
  accuracy = presets.PUBLISHED_ACCURACY[(dataset, variant)]
  assert config.published_accuracy == accuracy
  docstring = path.read_text().split('"""')[1]
  assert f'{accuracy:.2f} %' in docstring
  assert f'--config=configs/{file_name}' in docstring


def test_published_sizes():
  """NTU widths 768/512 (1.0, 1.1) and 800/600 (1.2); Penn 1.0 has a 1000-long zero table.

  See docs/original_code.md, published configurations.
  """
  assert presets.published_model_config('ntu60_xsub', '1.1').d_model == 768
  assert presets.published_model_config('ntu60_xview', '1.2').d_model == 600
  assert presets.published_model_config('ntu60_xview', '1.2').spatial_width == 24
  penn = presets.published_model_config('penn_action', '1.0')
  assert (penn.pos_len, penn.pos_init) == (1000, 'zeros')
  assert presets.published_model_config('penn_action', '1.2').pos_len == 2048


NTU120 = {f'{dataset}_v{variant.replace(".", "_")}.py': (dataset, variant)
          for dataset in presets.NTU120_RECIPE_SOURCES for variant in presets.VARIANTS}


@pytest.mark.parametrize('file_name', sorted(NTU120))
def test_ntu120_config_files_scale_the_ntu60_recipes(file_name):
  dataset, variant = NTU120[file_name]
  path = CONFIG_DIR / file_name
  config = configuration.load_config_file(path)
  source = presets.NTU120_RECIPE_SOURCES[dataset]
  ntu60 = configuration.load_config_file(CONFIG_DIR / f'{source}_v{variant.replace(".", "_")}.py')
  model = configuration.model_config(config)
  assert model == configuration.model_config(ntu60).replace(num_classes=120)
  assert (config.dataset, config.data.tfds_name, config.data.num_classes) == (dataset, 'ntu_rgbd120', 120)
  assert config.data.tfds_config == dataset.split('_')[1] and config.variant == variant
  assert not config.published_accuracy
  for stage in ('pretrain', 'finetune', 'eval'):
    assert config[stage].to_dict() == ntu60[stage].to_dict(), stage
  docstring = path.read_text().split('"""')[1]
  assert 'No published CascadeFormer numbers exist for NTU RGB+D 120' in docstring
  assert f'configs/{source}_v' in docstring and f'--config=configs/{file_name}' in docstring


def test_ntu120_data_configs():
  from cascadeformer_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  ntu60 = data_lib.default_data_config('ntu60_xview')
  for dataset in ('ntu120_xsub', 'ntu120_xset'):
    ntu120 = data_lib.default_data_config(dataset)
    assert ntu120.ntu.to_dict() == ntu60.ntu.to_dict() and ntu120.layout == 'ntu'
    assert data_lib.two_person_labels(ntu120) == tuple(range(49, 60)) + tuple(range(105, 120))
  assert data_lib.two_person_labels(ntu60) == tuple(range(49, 60))
  assert data_lib.two_person_labels(data_lib.default_data_config('n_ucla')) is None


@pytest.mark.parametrize('argument, match', [
    ('n_ucla', r"configs/smoke.py:<dataset>,<variant> takes a dataset and a variant, e.g. n_ucla,1.1; got 'n_ucla'"),
    ('foo,1.0', r"unknown dataset 'foo'; expected one of"),
])
def test_smoke_config_names_a_bad_argument(argument, match):
  with pytest.raises(ValueError, match=match):
    configuration.load_config_file(CONFIG_DIR / 'smoke.py', argument)
