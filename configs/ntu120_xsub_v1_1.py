r"""CascadeFormer 1.1 (joint-level Conv1d frame embedding) on NTU RGB+D 120 cross-subject.

No published CascadeFormer numbers exist for NTU RGB+D 120 (the paper reports Penn Action, N-UCLA and NTU60 only),
so this config has no published accuracy to compare with. The recipe is a choice, not a reproduction: the
architecture and training settings of `configs/ntu60_xsub_v1_1.py` (the NTU60 cross-subject model, see
`presets.NTU120_RECIPE_SOURCES`) with a 120-class head, on the same NTU preprocessing (CTR-GCN cleaning, 64-frame
crops, rotation, person selection).

Build the dataset once (see data_builders/ntu_rgbd120 for where to put the raw files or CTR-GCN's npz):

  python -m data_builders.build ntu_rgbd120 --config=xsub --manual_dir=<dir> --data_dir=<tfds dir>

Train (pretraining, fine-tuning, test evaluation; a GPU is needed for the full recipe):

  python -m cascadeformer_jax.main --config=configs/ntu120_xsub_v1_1.py --config.data.data_dir=<tfds dir>
"""

import pathlib

from cascadeformer_jax.config import configuration


def get_config():
  # The ntu60_xsub 1.1 recipe (`ntu60_xsub_v1_1.py` next to this file; docs/original_code.md).
  recipe = configuration.load_config_file(pathlib.Path(__file__).with_name('ntu60_xsub_v1_1.py'))
  return configuration.ntu120_experiment_config(recipe, 'ntu120_xsub', '1.1')
