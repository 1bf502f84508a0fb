r"""Converts a published CascadeFormer checkpoint folder into a model directory.

    python -m cascadeformer_jax.convert --checkpoint_dir=BEST_N_UCLA_1_1 \
        --config=configs/nucla_v1_1.py --output_dir=converted/nucla_v1_1

--checkpoint_dir is a local folder or `hf:[<owner>/<repo>/]<folder>[@<revision>]`, a folder of the Hugging Face
repository (default YusenPeng/CascadeFormerCheckpoints) downloaded through its cache. Without --config the
architecture is that of the published model whose sizes match the weights. The model directory stores the
preprocessing of its dataset (that of an experiment --config, else the evaluation settings of the published model's
dataset), so that predict, eval and the API need no config to use it.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from cascadeformer_jax.checkpoints.convert import convert_folder
# The conversion API, importable from the command module too.
from cascadeformer_jax.checkpoints.convert import read_published_folder  # pylint: disable=unused-import
from cascadeformer_jax.checkpoints.torch_pickle import CheckpointError  # pylint: disable=unused-import
from cascadeformer_jax.checkpoints.torch_pickle import load_state_dict  # pylint: disable=unused-import
from cascadeformer_jax.run import cli

_CHECKPOINT_DIR = flags.DEFINE_string('checkpoint_dir', None, 'Folder with the <Prefix>_*.pt files, or hf:<folder>.',
                                      required=True)
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where to write the model directory.', required=True)
_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config: its model and its data settings.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from cascadeformer_jax.config import configuration  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.run import io_checks  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.checkpoints import hub  # pylint: disable=g-import-not-at-top

  configuration.quiet_logs()
  output_dir, config = _OUTPUT_DIR.value, _CONFIG.value
  io_checks.check_writable(output_dir, 'output folder')
  model_config, preprocessing = None, None
  if config is not None and 'data' in config:  # An experiment config: its data settings are the model's.
    from cascadeformer_jax.data import preprocessing as preprocessing_lib  # pylint: disable=g-import-not-at-top
    from cascadeformer_jax.data import sources  # pylint: disable=g-import-not-at-top

    configuration.resolve_dataset(config)
    preprocessing = preprocessing_lib.describe(config.data, sources.class_names(config.data))
  if config is not None:
    model_config = configuration.model_config(config)
  checkpoint_dir = hub.download_published_folder(_CHECKPOINT_DIR.value)
  path = convert_folder(checkpoint_dir, output_dir, model_config, preprocessing)
  print(f'wrote {path}')
  return 0


if __name__ == '__main__':
  cli.run(main)
