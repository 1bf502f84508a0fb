r"""A tiny model and one epoch per stage, for tests and for trying a dataset end to end in seconds.

  python -m cascadeformer_jax.main --config=configs/smoke.py:n_ucla,1.1 --config.data.data_dir=<tfds dir>

The argument is '<dataset>,<variant>' (default 'synthetic_actions,1.0'); datasets: penn_action, n_ucla,
ntu60_xsub, ntu60_xview, ntu120_xsub, ntu120_xset, synthetic_actions. Accuracy is meaningless: this checks that
everything runs.
"""

from cascadeformer_jax.config import configuration
from cascadeformer_jax import data as data_lib
from cascadeformer_jax.models import ModelConfig

_LAYOUTS = {'penn_action': 'penn', 'n_ucla': 'nucla', 'ntu60_xsub': 'ntu', 'ntu60_xview': 'ntu',
            'ntu120_xsub': 'ntu', 'ntu120_xset': 'ntu', 'synthetic_actions': 'ntu'}


def get_config(arg: str = 'synthetic_actions,1.0'):
  if arg.count(',') != 1:
    raise ValueError(f"configs/smoke.py:<dataset>,<variant> takes a dataset and a variant, e.g. n_ucla,1.1; got {arg!r}")
  dataset, variant = arg.split(',')
  data = data_lib.default_data_config(dataset, variant)
  data.num_frames = 16 if data.layout != 'penn' else data.num_frames
  _, joints, coords = data_lib.model_input_shape(data)
  model = ModelConfig(
      variant=variant, layout=_LAYOUTS[dataset], num_joints=joints, coords=coords, d_model=2 * joints,
      num_heads=2, num_layers=1, num_classes=data.num_classes, pos_len=max(data.max_frames, 16), ffn_dim=16,
      pos_init='zeros' if (dataset == 'penn_action' and variant == '1.0') else 'trunc_normal')
  config = configuration.experiment_config(dataset, model, data_variant=variant)
  config.data = data
  if data.layout == 'nucla':
    config.data.nucla.repeat = 1
  config.pretrain.update(epochs=1, batch_size=2)
  config.finetune.update(epochs=1, batch_size=2, lr=1e-3)
  config.eval.batch_size = 2
  config.log_every_steps = 1
  return config
