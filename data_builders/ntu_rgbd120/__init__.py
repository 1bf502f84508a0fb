"""NTU RGB+D 120 builder (`ntu_rgbd120`, configs `xsub` and `xset`)."""

from data_builders.ntu_rgbd120.builder import CLASS_DESCRIPTIONS
from data_builders.ntu_rgbd120.builder import CLASS_NAMES
from data_builders.ntu_rgbd120.builder import MANUAL_DOWNLOAD_INSTRUCTIONS
from data_builders.ntu_rgbd120.builder import missing_samples
from data_builders.ntu_rgbd120.builder import NtuRgbd120
from data_builders.ntu_rgbd120.builder import one_shot_protocol
