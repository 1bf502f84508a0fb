"""Architectures of the published CascadeFormer checkpoints (paper Table 1; sizes from the original code)."""

from cascadeformer_jax.models.config import ModelConfig

DATASETS = ('penn_action', 'n_ucla', 'ntu60_xsub', 'ntu60_xview')
VARIANTS = ('1.0', '1.1', '1.2')

# Published top-1 test accuracy (%), paper Table 1.
PUBLISHED_ACCURACY = {
    ('penn_action', '1.0'): 94.66, ('penn_action', '1.1'): 94.10, ('penn_action', '1.2'): 94.10,
    ('n_ucla', '1.0'): 89.66, ('n_ucla', '1.1'): 91.16, ('n_ucla', '1.2'): 90.73,
    ('ntu60_xsub', '1.0'): 81.01, ('ntu60_xsub', '1.1'): 79.62, ('ntu60_xsub', '1.2'): 80.48,
    ('ntu60_xview', '1.0'): 88.17, ('ntu60_xview', '1.1'): 86.86, ('ntu60_xview', '1.2'): 87.24,
}

# Hugging Face folder of each published model inside YusenPeng/CascadeFormerCheckpoints.
HF_FOLDER_NAMES = {'penn_action': 'PENN_ACTION', 'n_ucla': 'N_UCLA', 'ntu60_xsub': 'NTU_CS',
                   'ntu60_xview': 'NTU_CV'}


def published_model_config(dataset: str, variant: str) -> ModelConfig:
  """The architecture of a published model, e.g. ``published_model_config('n_ucla', '1.1')``."""
  if dataset not in DATASETS:
    raise ValueError(f'unknown dataset {dataset!r}; published models exist for {DATASETS}')
  if variant not in VARIANTS:
    raise ValueError(f'unknown variant {variant!r}; expected one of {VARIANTS}')
  if dataset == 'penn_action':
    return ModelConfig(
        variant=variant, layout='penn', num_joints=13, coords=2, d_model=256, num_heads=8, num_layers=4,
        num_classes=15, pos_len=1000 if variant == '1.0' else 2048,
        pos_init='zeros' if variant == '1.0' else 'trunc_normal')
  if dataset == 'n_ucla':
    return ModelConfig(
        variant=variant, layout='nucla', num_joints=20, coords=3, d_model=256, num_heads=8, num_layers=4,
        num_classes=10, pos_len=2048)
  cross_subject = dataset == 'ntu60_xsub'
  if variant == '1.2':
    d_model = 800 if cross_subject else 600
  else:
    d_model = 768 if cross_subject else 512
  return ModelConfig(
      variant=variant, layout='ntu', num_joints=25, coords=3, d_model=d_model,
      num_heads=16 if cross_subject else 8, num_layers=16 if cross_subject else 12, num_classes=60,
      pos_len=64, t2_dropout=0.2, cross_attn_dropout=0.2,
      # NTU-CS 1.0 was trained with head dropout 0.2, the others with 0.3 (no effect at evaluation).
      head_dropout=0.2 if (cross_subject and variant == '1.0') else 0.3)


# NTU RGB+D 120 has no published CascadeFormer model or accuracy. Its recipes use the architecture and training
# settings of the NTU60 model of the matching benchmark (x-sub -> NTU60 x-sub; x-set, which like x-view changes the
# camera set-up between training and test, -> NTU60 x-view) with a 120-class head.
NTU120_RECIPE_SOURCES = {'ntu120_xsub': 'ntu60_xsub', 'ntu120_xset': 'ntu60_xview'}


def ntu120_model_config(dataset: str, variant: str) -> ModelConfig:
  """The NTU120 recipe architecture: the NTU60 model of `NTU120_RECIPE_SOURCES[dataset]` with 120 classes."""
  if dataset not in NTU120_RECIPE_SOURCES:
    raise ValueError(f'unknown dataset {dataset!r}; NTU120 recipes exist for {tuple(NTU120_RECIPE_SOURCES)}')
  return published_model_config(NTU120_RECIPE_SOURCES[dataset], variant).replace(num_classes=120)


def match_published(variant: str, joint_features: int, d_model: int, num_layers: int) -> tuple[str, str] | None:
  """Finds the published (dataset, variant) whose sizes match detected weights, or None."""
  for dataset in DATASETS:
    config = published_model_config(dataset, variant)
    if (config.num_joints * config.coords, config.d_model, config.num_layers) == (
        joint_features, d_model, num_layers):
      return dataset, variant
  return None
