r"""CascadeFormer 1.1 (joint-level Conv1d frame embedding) on N-UCLA.

Published top-1 test accuracy: 91.16 % (paper Table 1).

Build the dataset once (see data_builders/ for where to put the raw files):

  python -m data_builders.build n_ucla --manual_dir=<dir with all_sqe/> --data_dir=<tfds dir>

Train (pretraining, fine-tuning, test evaluation; a GPU is needed for the full recipe):

  python -m cascadeformer_jax.main --config=configs/nucla_v1_1.py --config.data.data_dir=<tfds dir>

Evaluate the published weights (Hugging Face YusenPeng/CascadeFormerCheckpoints,
CascadeFormer_1.1_best_checkpoints/BEST_N_UCLA_1_1), or convert them into a model directory:

  python -m cascadeformer_jax.main --config=configs/nucla_v1_1.py --config.mode=eval \
      --config.init_from=hf:BEST_N_UCLA_1_1 --config.data.data_dir=<tfds dir>
  python -m cascadeformer_jax.convert --checkpoint_dir=BEST_N_UCLA_1_1 \
      --config=configs/nucla_v1_1.py --output_dir=converted/nucla_v1_1
"""

from cascadeformer_jax.config import configuration


def get_config():
  config = configuration.published_experiment_config('n_ucla', '1.1')
  # The original code's recipes and its quirks Q1-Q13 are described in docs/original_code.md.
  # Original recipe: batch 4. The published 91.16 % run used repeat 10 (the uploaded driver says
  # 30, quirk Q12).
  # Training clips are augmented (rotation ±60°, axis/joint drop p=0.1) with 10 copies of the training
  # split per epoch (config.data.nucla.repeat). The original drew these augmentations once and reused them in
  # every epoch (quirk Q4); to reproduce that: config.data.nucla.frozen_augmentation = True
  config.data.holdout_fraction = 0.05
  config.pretrain.update(epochs=100, batch_size=4, optimizer='adam', lr=1e-4, schedule='constant')
  # Warmup-cosine stepped per epoch: the lr is exactly 0 in the first epoch (quirk Q10).
  config.finetune.update(epochs=100, batch_size=4, optimizer='adamw', lr=3e-5, weight_decay=1e-4,
                         schedule='warmup_cosine', schedule_unit='epoch', warmup_fraction=0.05)
  # The original evaluated with 4 cross-attention heads (quirk Q1): config.model.cross_attn_heads = 4, or report
  # both: config.eval.protocols = 'cross_attn_4_heads'
  config.eval.batch_size = 32
  # The paper's version instead: config.pretrain.update(optimizer='adamw', weight_decay=1e-2) and
  # config.finetune.update(lr=1e-5, schedule='cosine', warmup_fraction=0.0, schedule_unit='step').
  return config
