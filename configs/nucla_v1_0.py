r"""CascadeFormer 1.0 (linear frame embedding) on N-UCLA.

Published top-1 test accuracy: 89.66 % (paper Table 1).

Convert the published weights (Hugging Face YusenPeng/CascadeFormerCheckpoints,
CascadeFormer_1.0_best_checkpoints/BEST_N_UCLA_1_0) into a model directory:

  python -m cascadeformer_jax.convert --checkpoint_dir=BEST_N_UCLA_1_0 \
      --config=configs/nucla_v1_0.py --output_dir=converted/nucla_v1_0
"""

from cascadeformer_jax import configuration


def get_config():
  return configuration.published_experiment_config('n_ucla', '1.0')
