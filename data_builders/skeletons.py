"""Joint layouts of the supported datasets: joint names and skeleton edges.

Edges are (child, parent) pairs of 0-based joint indices. They describe the anatomy for plots, bone features and
reports; they are stored in every dataset's metadata.
"""

PENN_ACTION_JOINTS = (
    'head', 'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
    'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle',
)
PENN_ACTION_EDGES = (
    (1, 0), (2, 0), (3, 1), (5, 3), (4, 2), (6, 4), (7, 1), (8, 2), (8, 7), (9, 7), (11, 9), (10, 8), (12, 10),
)

# Kinect v1 (N-UCLA), 20 joints.
KINECT_V1_JOINTS = (
    'hip_center', 'spine', 'shoulder_center', 'head',
    'shoulder_left', 'elbow_left', 'wrist_left', 'hand_left',
    'shoulder_right', 'elbow_right', 'wrist_right', 'hand_right',
    'hip_left', 'knee_left', 'ankle_left', 'foot_left',
    'hip_right', 'knee_right', 'ankle_right', 'foot_right',
)
KINECT_V1_EDGES = (
    (0, 1), (1, 2), (3, 2), (4, 2), (5, 4), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9), (11, 10),
    (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18),
)

# Kinect v2 (NTU RGB+D and synthetic_actions), 25 joints.
KINECT_V2_JOINTS = (
    'spine_base', 'spine_mid', 'neck', 'head',
    'shoulder_left', 'elbow_left', 'wrist_left', 'hand_left',
    'shoulder_right', 'elbow_right', 'wrist_right', 'hand_right',
    'hip_left', 'knee_left', 'ankle_left', 'foot_left',
    'hip_right', 'knee_right', 'ankle_right', 'foot_right',
    'spine_shoulder', 'hand_tip_left', 'thumb_left', 'hand_tip_right', 'thumb_right',
)
# Parent of every Kinect v2 joint (-1 for the root, spine_base).
KINECT_V2_PARENTS = (-1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11)
KINECT_V2_EDGES = tuple((child, parent) for child, parent in enumerate(KINECT_V2_PARENTS) if parent >= 0)


def layout_metadata(joint_names: tuple[str, ...], edges: tuple[tuple[int, int], ...]) -> dict:
  """Metadata entries shared by all builders (JSON-serialisable)."""
  return {
      'joint_names': list(joint_names),
      'num_joints': len(joint_names),
      'edges': [list(edge) for edge in edges],
      'edges_note': 'pairs (child, parent) of 0-based joint indices',
  }
