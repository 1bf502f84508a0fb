r"""CascadeFormer 1.1 (joint-level Conv1d frame embedding) on NTU RGB+D 60 cross-subject.

Published top-1 test accuracy: 79.62 % (paper Table 1).

Convert the published weights (Hugging Face YusenPeng/CascadeFormerCheckpoints,
CascadeFormer_1.1_best_checkpoints/BEST_NTU_CS_1_1) into a model directory:

  python -m cascadeformer_jax.convert --checkpoint_dir=BEST_NTU_CS_1_1 \
      --config=configs/ntu60_xsub_v1_1.py --output_dir=converted/ntu60_xsub_v1_1
"""

from cascadeformer_jax import configuration


def get_config():
  return configuration.published_experiment_config('ntu60_xsub', '1.1')
