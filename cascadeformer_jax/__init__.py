"""CascadeFormer in JAX/Flax: models, checkpoint conversion, data, training and evaluation."""

from cascadeformer_jax.api import Classifier
from cascadeformer_jax.api import load_classifier
from cascadeformer_jax.api import load_pretrained
from cascadeformer_jax.api import Pretrained
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.models.presets import published_model_config

__version__ = '0.1.0'
