"""Every config file loads and describes the published architecture it names."""

import pathlib

import pytest

from cascadeformer_jax import configuration
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
