r"""CascadeFormer 1.2 (joint spatial transformer frame embedding) on Penn Action.

Published top-1 test accuracy: 94.10 % (paper Table 1).

Convert the published weights (Hugging Face YusenPeng/CascadeFormerCheckpoints,
CascadeFormer_1.2_best_checkpoints/BEST_PENN_ACTION_1_2) into a model directory:

  python -m cascadeformer_jax.convert --checkpoint_dir=BEST_PENN_ACTION_1_2 \
      --config=configs/penn_v1_2.py --output_dir=converted/penn_v1_2
"""

from cascadeformer_jax import configuration


def get_config():
  return configuration.published_experiment_config('penn_action', '1.2')
