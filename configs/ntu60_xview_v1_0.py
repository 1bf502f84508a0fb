r"""CascadeFormer 1.0 (linear frame embedding) on NTU RGB+D 60 cross-view.

Published top-1 test accuracy: 88.17 % (paper Table 1).

Convert the published weights (Hugging Face YusenPeng/CascadeFormerCheckpoints,
CascadeFormer_1.0_best_checkpoints/BEST_NTU_CV_1_0) into a model directory:

  python -m cascadeformer_jax.convert --checkpoint_dir=BEST_NTU_CV_1_0 \
      --config=configs/ntu60_xview_v1_0.py --output_dir=converted/ntu60_xview_v1_0
"""

from cascadeformer_jax import configuration


def get_config():
  return configuration.published_experiment_config('ntu60_xview', '1.0')
