r"""CascadeFormer 1.0 (linear frame embedding) on Penn Action.

Published top-1 test accuracy: 94.66 % (paper Table 1).

Convert the published weights (Hugging Face YusenPeng/CascadeFormerCheckpoints,
CascadeFormer_1.0_best_checkpoints/BEST_PENN_ACTION_1_0) into a model directory:

  python -m cascadeformer_jax.convert --checkpoint_dir=BEST_PENN_ACTION_1_0 \
      --config=configs/penn_v1_0.py --output_dir=converted/penn_v1_0
"""

from cascadeformer_jax import configuration


def get_config():
  return configuration.published_experiment_config('penn_action', '1.0')
