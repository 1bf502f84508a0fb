"""Reads a published checkpoint folder (five ``torch.save`` files) into our parameter trees.

A folder holds ``<Prefix>_pretrained.pt``, ``<Prefix>_finetuned_T1.pt``, ``<Prefix>_finetuned_T2.pt``,
``<Prefix>_finetuned_cross_attn.pt`` and ``<Prefix>_finetuned_head.pt`` (Prefix = Penn, NUCLA or NTU). Files are
classified by their keys; the name only tells the pretrained T1 from the fine-tuned one, and a file whose name
promises another module than its keys hold is an error.
"""

import dataclasses
import os
import pathlib
import re

from cascadeformer_jax.checkpoints import torch_layout
from cascadeformer_jax.checkpoints.torch_pickle import CheckpointError
from cascadeformer_jax.checkpoints.torch_pickle import load_state_dict
from cascadeformer_jax.models import presets
from cascadeformer_jax.models.config import ModelConfig

ROLE_PRETRAINED = 'pretrained'
ROLE_FINETUNED_T1 = 'finetuned_T1'
ROLE_FINETUNED_T2 = 'finetuned_T2'
ROLE_CROSS_ATTENTION = 'finetuned_cross_attn'
ROLE_HEAD = 'finetuned_head'
CLASSIFIER_ROLES = (ROLE_FINETUNED_T1, ROLE_FINETUNED_T2, ROLE_CROSS_ATTENTION, ROLE_HEAD)
ROLES = (ROLE_PRETRAINED,) + CLASSIFIER_ROLES

_ROLE_MODULE = {
    ROLE_PRETRAINED: torch_layout.MODULE_T1,
    ROLE_FINETUNED_T1: torch_layout.MODULE_T1,
    ROLE_FINETUNED_T2: torch_layout.MODULE_T2,
    ROLE_CROSS_ATTENTION: torch_layout.MODULE_CROSS_ATTENTION,
    ROLE_HEAD: torch_layout.MODULE_HEAD,
}
_ROLE_BY_SUFFIX = re.compile(r'_(pretrained|finetuned_T1|finetuned_T2|finetuned_cross_attn|finetuned_head)\.pt$')


@dataclasses.dataclass
class PublishedFolder:
  """The files of a published checkpoint folder, by role, with what their keys say they hold."""

  path: pathlib.Path
  files: dict[str, pathlib.Path]
  infos: dict[str, torch_layout.ModuleInfo]

  @property
  def has_classifier(self) -> bool:
    return all(role in self.files for role in CLASSIFIER_ROLES)

  @property
  def has_pretrained(self) -> bool:
    return ROLE_PRETRAINED in self.files

  def t1_info(self) -> torch_layout.ModuleInfo:
    role = ROLE_FINETUNED_T1 if ROLE_FINETUNED_T1 in self.infos else ROLE_PRETRAINED
    return self.infos[role]


def scan_folder(path: str | os.PathLike) -> PublishedFolder:
  """Finds and classifies the ``.pt`` files of a published folder (reads only their pickles)."""
  path = pathlib.Path(path)
  if not path.is_dir():
    raise CheckpointError(f'{path}: no such checkpoint folder')
  candidates = sorted(path.glob('*.pt'))
  if not candidates:
    raise CheckpointError(f'{path}: no .pt files; expected <Prefix>_pretrained.pt and '
                          '<Prefix>_finetuned_{T1,T2,cross_attn,head}.pt')
  files, infos = {}, {}
  unnamed_t1 = []
  for file in candidates:
    info = torch_layout.describe(load_state_dict(file, verify_crc=False), file)
    match = _ROLE_BY_SUFFIX.search(file.name)
    if match:
      role = match.group(1)
      if _ROLE_MODULE[role] != info.module:
        raise CheckpointError(f'{file}: the name says {role} (a {_ROLE_MODULE[role]} module) but the keys hold '
                              f'a {info.module} module')
    elif info.module == torch_layout.MODULE_T1:
      unnamed_t1.append(file)
      continue
    else:
      role = {torch_layout.MODULE_T2: ROLE_FINETUNED_T2, torch_layout.MODULE_CROSS_ATTENTION:
              ROLE_CROSS_ATTENTION, torch_layout.MODULE_HEAD: ROLE_HEAD}[info.module]
    if role in files:
      raise CheckpointError(f'{path}: both {files[role].name} and {file.name} hold the {role} module')
    files[role], infos[role] = file, info
  if unnamed_t1:
    raise CheckpointError(f'{unnamed_t1[0]}: a T1 file whose name does not say whether it is pretrained or '
                          'fine-tuned; name it <Prefix>_pretrained.pt or <Prefix>_finetuned_T1.pt')
  folder = PublishedFolder(path, files, infos)
  if not folder.has_classifier and not folder.has_pretrained:
    missing = [role for role in ROLES if role not in files]
    raise CheckpointError(f'{path}: missing checkpoint files for {missing}')
  return folder


def published_config(folder: PublishedFolder) -> ModelConfig:
  """The published architecture matching the folder's weights (head counts come from the paper's table)."""
  info = folder.t1_info()
  match = presets.match_published(info.form, info.joint_features, info.d_model, info.num_layers)
  if match is None:
    raise CheckpointError(
        f'{folder.path}: the weights (variant {info.form}, J*C={info.joint_features}, d={info.d_model}, '
        f'L={info.num_layers}) match no published model, so the attention head counts are unknown; pass a '
        'config (e.g. --config=configs/<dataset>_v<variant>.py)')
  return presets.published_model_config(*match)


def require_roles(folder: PublishedFolder, roles: tuple[str, ...]) -> None:
  missing = [role for role in roles if role not in folder.files]
  if missing:
    names = ', '.join(f'<Prefix>_{role}.pt' for role in missing)
    raise CheckpointError(f'{folder.path}: missing {names}')


def classifier_params(folder: PublishedFolder, config: ModelConfig) -> dict:
  """Converts the four fine-tuned files into ``CascadeClassifier`` parameters."""
  require_roles(folder, CLASSIFIER_ROLES)
  t1, _ = torch_layout.t1_params(_load(folder, ROLE_FINETUNED_T1), config, folder.files[ROLE_FINETUNED_T1])
  return {
      't1': t1,
      't2': torch_layout.t2_params(_load(folder, ROLE_FINETUNED_T2), config, folder.files[ROLE_FINETUNED_T2]),
      'cross_attention': torch_layout.cross_attention_params(
          _load(folder, ROLE_CROSS_ATTENTION), config, folder.files[ROLE_CROSS_ATTENTION]),
      'head': torch_layout.head_params(_load(folder, ROLE_HEAD), config, folder.files[ROLE_HEAD]),
  }


def pretrained_params(folder: PublishedFolder, config: ModelConfig) -> dict:
  """Converts ``<Prefix>_pretrained.pt`` into ``MaskedPretrainer`` parameters (T1 + decoder)."""
  require_roles(folder, (ROLE_PRETRAINED,))
  t1, decoder = torch_layout.t1_params(_load(folder, ROLE_PRETRAINED), config, folder.files[ROLE_PRETRAINED])
  return {'t1': t1, 'decoder': decoder}


def _load(folder: PublishedFolder, role: str):
  return load_state_dict(folder.files[role])
