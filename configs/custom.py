r"""Your own data: a folder of skeleton clips in any joint layout (see the README, "Train on your own data").

  python -m cascadeformer_jax.main --config=configs/custom.py --config.data.folder=my_dataset
  python -m cascadeformer_jax.main --config=configs/custom.py:1.2 --config.data.folder=my_dataset   # variant 1.2

The folder holds dataset.json, labels.csv and the clips (data_builders/skeleton_folder/folder.py). It is built
into --config.data.data_dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets) on first use and rebuilt when the
folder changes; joints, coordinates and classes come from the folder. Work directory: workdirs/custom_<folder>.

The model is small, for datasets of tens to a few thousand clips: d = 64, 2 + 2 layers, 4 heads, FFN 128, dropout
0.1, clips resampled to 32 frames. Pretraining (30 epochs) masks half of the frames of every clip; fine-tuning
(40 epochs) selects the best epoch on a stratified 10 % hold-out of the training clips. Preprocessing
(`config.data.generic`): centring on the layout's centre joints in the first frame, scale by the mean bone length,
random rotation (±15°) and scale (0.9-1.1) and a random 90-100 % window in training. For larger datasets raise
model.d_model / num_layers / ffn_dim and the epochs; `--config.mode=eval|probe` and `cascadeformer_jax.predict`
work on the same folder.
"""

from cascadeformer_jax.config import configuration
from cascadeformer_jax import data as data_lib
from cascadeformer_jax.models import ModelConfig


def get_config(variant: str = '1.0'):
  if variant not in ('1.0', '1.1', '1.2'):
    raise ValueError(f"configs/custom.py:<variant> takes 1.0, 1.1 or 1.2, got {variant!r}")
  data = data_lib.default_data_config(data_lib.FOLDER)
  data.num_frames = 32
  data.holdout_fraction = 0.1
  # Joints, coordinates and classes are placeholders until the folder is read (configuration.resolve_dataset).
  model = ModelConfig(variant=variant, layout='nucla', num_joints=1, coords=2, d_model=64, num_heads=4, num_layers=2,
                      num_classes=2, pos_len=64, ffn_dim=128, t1_dropout=0.1, t2_dropout=0.1, spatial_dropout=0.1,
                      cross_attn_dropout=0.1, head_dropout=0.1)
  config = configuration.experiment_config(data_lib.FOLDER, model)
  config.data = data
  config.variant = variant
  config.pretrain.update(epochs=30, batch_size=16, optimizer='adamw', lr=1e-3, weight_decay=1e-2,
                         schedule='warmup_cosine', warmup_fraction=0.05, mask_mode='frames', mask_ratio=0.5)
  config.finetune.update(epochs=40, batch_size=16, optimizer='adamw', lr=1e-3, weight_decay=1e-2,
                         schedule='warmup_cosine', warmup_fraction=0.05, select_best='holdout')
  config.eval.batch_size = 32
  config.checkpoint.every_epochs = 10
  return config
