r"""Converts a published CascadeFormer checkpoint folder into a model directory.

    python -m cascadeformer_jax.convert --checkpoint_dir=BEST_N_UCLA_1_1 \
        --config=configs/nucla_v1_1.py --output_dir=converted/nucla_v1_1

Without --config the architecture is that of the published model whose sizes match the weights.
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from cascadeformer_jax import configuration
from cascadeformer_jax.convert.convert import convert_folder
from cascadeformer_jax.convert.torch_pickle import CheckpointError

_CHECKPOINT_DIR = flags.DEFINE_string('checkpoint_dir', None, 'Folder with the <Prefix>_*.pt files.',
                                      required=True)
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Where to write the model directory.', required=True)
_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config (its `model` part is used).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  configuration.quiet_logs()
  model_config = configuration.model_config(_CONFIG.value) if _CONFIG.value is not None else None
  try:
    path = convert_folder(_CHECKPOINT_DIR.value, _OUTPUT_DIR.value, model_config)
  except (CheckpointError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(f'wrote {path}')
  return 0


if __name__ == '__main__':
  app.run(main)
