"""Procedural demo dataset builder (`synthetic_actions`, configs `default` and `tiny`)."""

from data_builders.synthetic_actions.builder import SyntheticActions
from data_builders.synthetic_actions.builder import SyntheticActionsConfig
from data_builders.synthetic_actions.generator import CLASS_NAMES
