r"""CascadeFormer 1.0 (linear frame embedding) on NTU RGB+D 60 cross-subject.

Published top-1 test accuracy: 81.01 % (paper Table 1).

Convert the published weights (Hugging Face YusenPeng/CascadeFormerCheckpoints,
CascadeFormer_1.0_best_checkpoints/BEST_NTU_CS_1_0) into a model directory:

  python -m cascadeformer_jax.convert --checkpoint_dir=BEST_NTU_CS_1_0 \
      --config=configs/ntu60_xsub_v1_0.py --output_dir=converted/ntu60_xsub_v1_0
"""

from cascadeformer_jax import configuration


def get_config():
  return configuration.published_experiment_config('ntu60_xsub', '1.0')
