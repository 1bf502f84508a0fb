r"""CascadeFormer 1.2 (joint spatial transformer frame embedding) on N-UCLA.

Published top-1 test accuracy: 90.73 % (paper Table 1).

Convert the published weights (Hugging Face YusenPeng/CascadeFormerCheckpoints,
CascadeFormer_1.2_best_checkpoints/BEST_N_UCLA_1_2) into a model directory:

  python -m cascadeformer_jax.convert --checkpoint_dir=BEST_N_UCLA_1_2 \
      --config=configs/nucla_v1_2.py --output_dir=converted/nucla_v1_2
"""

from cascadeformer_jax import configuration


def get_config():
  return configuration.published_experiment_config('n_ucla', '1.2')
