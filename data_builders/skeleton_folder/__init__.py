"""A user's folder of skeleton clips in any joint layout (`skeleton_folder`); `example` writes a small one."""

from data_builders.skeleton_folder.builder import SkeletonFolder
from data_builders.skeleton_folder.builder import SkeletonFolderConfig
