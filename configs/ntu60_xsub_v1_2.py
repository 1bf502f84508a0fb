r"""CascadeFormer 1.2 (joint spatial transformer frame embedding) on NTU RGB+D 60 cross-subject.

Published top-1 test accuracy: 80.48 % (paper Table 1).

Convert the published weights (Hugging Face YusenPeng/CascadeFormerCheckpoints,
CascadeFormer_1.2_best_checkpoints/BEST_NTU_CS_1_2) into a model directory:

  python -m cascadeformer_jax.convert --checkpoint_dir=BEST_NTU_CS_1_2 \
      --config=configs/ntu60_xsub_v1_2.py --output_dir=converted/ntu60_xsub_v1_2
"""

from cascadeformer_jax import configuration


def get_config():
  return configuration.published_experiment_config('ntu60_xsub', '1.2')
