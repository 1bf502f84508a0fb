"""Conversion of the published PyTorch checkpoints (no PyTorch needed)."""

from cascadeformer_jax.convert.convert import convert_folder
from cascadeformer_jax.convert.convert import read_published_folder
from cascadeformer_jax.convert.torch_pickle import CheckpointError
from cascadeformer_jax.convert.torch_pickle import load_state_dict
