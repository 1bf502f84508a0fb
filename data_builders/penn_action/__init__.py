"""Penn Action builder (`penn_action`)."""

from data_builders.penn_action.builder import CLASS_NAMES
from data_builders.penn_action.builder import MANUAL_DOWNLOAD_INSTRUCTIONS
from data_builders.penn_action.builder import PennAction
from data_builders.penn_action.builder import read_label_file
