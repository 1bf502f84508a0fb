r"""Demo: a small CascadeFormer 1.0 on the procedurally generated `synthetic_actions` (no download needed).

  python -m cascadeformer_jax.main --config=configs/demo.py

Builds the dataset on first use (~12 s), pretrains T1 (20 epochs), fine-tunes the cascade (15 epochs, model
selection on a 10 % hold-out of the training subjects' clips) and evaluates on the 500 test clips (10 classes,
cross-subject). Work directory: workdirs/demo. See the README for the measured accuracy and time on 2 CPU cores,
and for the same fine-tuning budget without pretraining:

  python -m cascadeformer_jax.main --config=configs/demo.py --config.mode=finetune \
      --config.finetune.t1_init=scratch --config.workdir=workdirs/demo_scratch

Pretraining masks half of the frames of each clip (the frame-masking ablation of the original code): on this
dataset the paper's masking of 30 % of the (frame, joint) slots is solved by interpolating neighbouring joints and
frames and gave a worse start for fine-tuning than no pretraining at all (see the README).
"""

from cascadeformer_jax.config import configuration
from cascadeformer_jax.models import ModelConfig


def get_config():
  model = ModelConfig(variant='1.0', layout='ntu', num_joints=25, coords=3, d_model=64, num_heads=4, num_layers=2,
                      num_classes=10, pos_len=32, ffn_dim=128, t2_dropout=0.1, cross_attn_dropout=0.1,
                      head_dropout=0.1)
  config = configuration.experiment_config('synthetic_actions', model)
  config.data.num_frames = 32
  config.data.holdout_fraction = 0.1
  config.pretrain.update(epochs=20, batch_size=32, optimizer='adamw', lr=1e-3, weight_decay=1e-2,
                         schedule='warmup_cosine', warmup_fraction=0.05, mask_mode='frames', mask_ratio=0.5)
  config.finetune.update(epochs=15, batch_size=32, optimizer='adamw', lr=1e-3, weight_decay=1e-2,
                         schedule='warmup_cosine', warmup_fraction=0.05, select_best='holdout')
  config.eval.batch_size = 100
  config.checkpoint.every_epochs = 5  # an interrupted demo repeats at most a few seconds of work
  return config
