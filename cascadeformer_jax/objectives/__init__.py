"""Pretraining objectives of T1 and their masks: losses shared by the training steps and the evaluators."""

from cascadeformer_jax.objectives.losses import ERROR_METRICS
from cascadeformer_jax.objectives.losses import make_objective
from cascadeformer_jax.objectives.losses import Objective
from cascadeformer_jax.objectives.losses import objective_name
from cascadeformer_jax.objectives.losses import OBJECTIVES
