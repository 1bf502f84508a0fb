"""Flax Linen modules of CascadeFormer 1.0 / 1.1 / 1.2."""

from cascadeformer_jax.models.cascadeformer import batch_frame_mask
from cascadeformer_jax.models.cascadeformer import CascadeClassifier
from cascadeformer_jax.models.cascadeformer import ClassificationHead
from cascadeformer_jax.models.cascadeformer import CrossAttention
from cascadeformer_jax.models.cascadeformer import FrameEmbedding
from cascadeformer_jax.models.cascadeformer import MaskedPretrainer
from cascadeformer_jax.models.cascadeformer import padding_frame_mask
from cascadeformer_jax.models.cascadeformer import pool_frames
from cascadeformer_jax.models.cascadeformer import ReconstructionDecoder
from cascadeformer_jax.models.cascadeformer import T1
from cascadeformer_jax.models.config import ModelConfig
from cascadeformer_jax.models.layers import Encoder
from cascadeformer_jax.models.layers import EncoderLayer
from cascadeformer_jax.models.layers import MultiHeadAttention
