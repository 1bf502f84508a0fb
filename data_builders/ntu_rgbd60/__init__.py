"""NTU RGB+D 60 builder (`ntu_rgbd60`, configs `xsub` and `xview`)."""

from data_builders.ntu_rgbd60.builder import CLASS_NAMES
from data_builders.ntu_rgbd60.builder import MANUAL_DOWNLOAD_INSTRUCTIONS
from data_builders.ntu_rgbd60.builder import missing_samples
from data_builders.ntu_rgbd60.builder import NtuRgbd60
from data_builders.ntu_rgbd60.builder import NtuRgbd60Config
