"""N-UCLA builder (`n_ucla`)."""

from data_builders.n_ucla.builder import ACTION_IDS
from data_builders.n_ucla.builder import CLASS_NAMES
from data_builders.n_ucla.builder import MANUAL_DOWNLOAD_INSTRUCTIONS
from data_builders.n_ucla.builder import NUcla
from data_builders.n_ucla.builder import parse_sample_name
from data_builders.n_ucla.builder import read_sample_file
