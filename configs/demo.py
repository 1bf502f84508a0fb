r"""Demo: a small CascadeFormer 1.0 on the procedurally generated `synthetic_actions` (no download needed).

  python -m cascadeformer_jax.main --config=configs/demo.py

Builds the dataset on first use (~10 s), pretrains T1 by masked-joint reconstruction, fine-tunes the cascade and
evaluates on the 500 test clips (10 classes, cross-subject). Work directory: workdirs/demo.
"""

from cascadeformer_jax import configuration
from cascadeformer_jax.models import ModelConfig


def get_config():
  model = ModelConfig(variant='1.0', layout='ntu', num_joints=25, coords=3, d_model=64, num_heads=4, num_layers=2,
                      num_classes=10, pos_len=32, ffn_dim=128, t2_dropout=0.1, cross_attn_dropout=0.1,
                      head_dropout=0.1)
  config = configuration.experiment_config('synthetic_actions', model)
  config.data.num_frames = 32
  config.data.holdout_fraction = 0.1
  config.pretrain.update(epochs=10, batch_size=32, optimizer='adamw', lr=1e-3, weight_decay=1e-2,
                         schedule='warmup_cosine', warmup_fraction=0.05)
  config.finetune.update(epochs=10, batch_size=32, optimizer='adamw', lr=5e-4, weight_decay=1e-2,
                         schedule='warmup_cosine', warmup_fraction=0.05, select_best='holdout')
  config.eval.batch_size = 100
  return config
