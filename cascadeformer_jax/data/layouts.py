"""Joint layouts (joint names and skeleton trees) and the mapping of clips from one layout to another.

A layout is an ordered list of joint names and the parent of every joint; the root is its own parent (its bone is
zero). Named layouts:

* `ntu25` (Kinect v2, NTU RGB+D): the Kinect for Windows SDK 2.0 `JointType` order (= the NTU RGB+D README's
  list); tree: CTR-GCN's NTU graph, rooted at spine_shoulder.
* `nucla20` (Kinect v1, native N-UCLA order): the Kinect for Windows SDK 1.x `NUI_SKELETON_POSITION_INDEX` order;
  tree: the N-UCLA feeders' bone pairs, rooted at shoulder_center.
* `penn13` (Penn Action): the README's joint order (columns of `x`, `y`, `visibility`); head root, shoulders from
  the head, hips from the shoulders.
* `coco17` (COCO keypoints, HRNet, ViTPose, ...): `categories[0].keypoints` of COCO's `person_keypoints_*.json`;
  tree: COCO's `skeleton` made acyclic as pyskl/MMAction2's `coco` graph, rooted at the nose.
* `mediapipe33`: the 33 landmarks of the MediaPipe Pose landmarker; tree: MediaPipe's `POSE_CONNECTIONS` made
  acyclic, rooted at the nose.
* `openpose25`: OpenPose `doc/02_output.md`, BODY_25 keypoint order; tree: OpenPose's BODY_25 pairs (already a
  tree), rooted at mid_hip.
* `h36m17`: the Human3.6M 17-joint subset as VideoPose3D's `h36m_skeleton` keeps it; tree: its parents, rooted at
  the pelvis.

This module is the one table of joint names and trees. The bone representations use the trees of `ntu25`,
`nucla20` and `penn13` (`transforms.NTU_PARENTS`, `NUCLA_PARENTS`, `PENN_PARENTS` are these arrays), and the
dataset builders (`data_builders`) write them into their datasets' metadata, so it imports nothing but NumPy: the
builders read it without importing the input pipeline. An explicit layout is a mapping
`{"joints": [names], "parents": [indices]}`: names unique and non-empty, exactly one root, every joint reaching
the root (no cycle).

Mapping between layouts (`convert`). Every joint name has an anatomical meaning (`canonical_name`): Kinect names
such as `shoulder_left` mean `left_shoulder`; the pelvis is `spine_base` (Kinect v2), `hip_center` (Kinect v1),
`mid_hip` (OpenPose) and `pelvis` (Human3.6M); the base of the neck between the shoulders is `spine_shoulder`
(Kinect v2), `shoulder_center` (Kinect v1), `thorax` (Human3.6M) and `neck` (OpenPose, whose neck keypoint sits
between the shoulders). A target joint the source has is copied. A target joint the source lacks is approximated
from the first rule of `APPROXIMATIONS` whose joints the source has (or can itself approximate), e.g.

* pelvis = midpoint of the hips; thorax (spine_shoulder) = midpoint of the shoulders; mid-spine = midpoint of
  pelvis and thorax; Kinect v2 neck = midpoint of thorax and head;
* head = midpoint of the ears (else the nose); nose, eyes and ears = the head;
* Kinect hand = midpoint of index and pinky (MediaPipe), else the wrist; hand tip = index, else the hand;
  thumb = thumb, else the hand; foot = big toe / foot index, else the ankle; heel = ankle.

A target joint that no rule can produce is an error that names it (pass it in `mapping`). Missing joints in the
data (all coordinates 0) stay 0 in every joint derived from them.

N-UCLA -> NTU (`convert(x, 'nucla20', 'ntu25')`): the default is the anatomical mapping above from the native Kinect
v1 order: spine_base <- hip_center, spine_mid <- spine, spine_shoulder <- shoulder_center, neck <- midpoint of
shoulder_center and head, head <- head, arms and legs joint for joint, hand_tip and thumb <- hand.

`mapping='original_partition_order'` reproduces the original code's NTU -> N-UCLA transfer (`ucla20_to_ntu25` in
`ntu_60_own/transfer_ucla.py`). That function copies input joint k to NTU joint k for k < 20 and fills NTU 20
(spine_shoulder) from input 2, NTU 21/22 (left hand tip / thumb) from input 7 and NTU 23/24 from input 11; its
comments name the inputs in native Kinect v1 order. But its loader (`SF_UCLA_Dataset(partition=True)`) has already
reordered every clip into SkateFormer's partition order (input k = native joint `NUCLA_PARTITION_ORDER[k]`), so
from native joints the original computes: NTU spine_base, spine_mid, neck, head <- shoulder_left, elbow_left,
wrist_left, hand_left; NTU left arm (4-7) <- the right arm; NTU right arm (8-11) <- the left leg; NTU left leg
(12-15) <- the right leg; NTU hip_right, knee_right, ankle_right, foot_right <- spine, shoulder_center, hip_center,
head; NTU spine_shoulder <- wrist_left; left hand tip and thumb <- hand_right; right hand tip and thumb <-
foot_left. This option takes native-order clips (like every `nucla20` clip) and applies exactly that index
arithmetic, so the original's transfer numbers can be reproduced.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

# --- Joint orders and trees -------------------------------------------------------------------------

NTU25_JOINTS = (
    'spine_base', 'spine_mid', 'neck', 'head',
    'shoulder_left', 'elbow_left', 'wrist_left', 'hand_left',
    'shoulder_right', 'elbow_right', 'wrist_right', 'hand_right',
    'hip_left', 'knee_left', 'ankle_left', 'foot_left',
    'hip_right', 'knee_right', 'ankle_right', 'foot_right',
    'spine_shoulder', 'hand_tip_left', 'thumb_left', 'hand_tip_right', 'thumb_right',
)
# CTR-GCN's NTU pairs (1-based (child, parent): (1,2) (2,21) (3,21) (4,3) (5,21) ... (22,23) (23,8) (24,25) (25,12)),
# 0-based; spine_shoulder (20) is the root.
NTU25_PARENTS = (1, 20, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 20, 22, 7, 24, 11)

NUCLA20_JOINTS = (
    'hip_center', 'spine', 'shoulder_center', 'head',
    'shoulder_left', 'elbow_left', 'wrist_left', 'hand_left',
    'shoulder_right', 'elbow_right', 'wrist_right', 'hand_right',
    'hip_left', 'knee_left', 'ankle_left', 'foot_left',
    'hip_right', 'knee_right', 'ankle_right', 'foot_right',
)
# The N-UCLA feeders' bone pairs (1-based (1,2) (2,3) (3,3) (4,3) ...), 0-based; shoulder_center (2) is the root.
NUCLA20_PARENTS = (1, 2, 2, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18)
# Model joint k of the N-UCLA models = native joint NUCLA_PARTITION_ORDER[k] (SkateFormer's partition order; its
# names for the groups are right arm, left arm, right leg, left leg, torso).
NUCLA_PARTITION_ORDER = (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 1, 2, 0, 3)

PENN13_JOINTS = (
    'head', 'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
    'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle',
)
# Penn Action has no torso joint: shoulders hang from the head, hips from the shoulders.
PENN13_PARENTS = (0, 0, 0, 1, 2, 3, 4, 1, 2, 7, 8, 9, 10)

COCO17_JOINTS = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder', 'left_elbow',
    'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle',
    'right_ankle',
)
COCO17_PARENTS = (0, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14)

MEDIAPIPE33_JOINTS = (
    'nose', 'left_eye_inner', 'left_eye', 'left_eye_outer', 'right_eye_inner', 'right_eye', 'right_eye_outer',
    'left_ear', 'right_ear', 'mouth_left', 'mouth_right', 'left_shoulder', 'right_shoulder', 'left_elbow',
    'right_elbow', 'left_wrist', 'right_wrist', 'left_pinky', 'right_pinky', 'left_index', 'right_index',
    'left_thumb', 'right_thumb', 'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle',
    'left_heel', 'right_heel', 'left_foot_index', 'right_foot_index',
)
MEDIAPIPE33_PARENTS = (
    0, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16, 11, 12, 23, 24, 25, 26, 27, 28,
    27, 28,
)

OPENPOSE25_JOINTS = (
    'nose', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder', 'left_elbow', 'left_wrist',
    'mid_hip', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee', 'left_ankle', 'right_eye',
    'left_eye', 'right_ear', 'left_ear', 'left_big_toe', 'left_small_toe', 'left_heel', 'right_big_toe',
    'right_small_toe', 'right_heel',
)
OPENPOSE25_PARENTS = (1, 8, 1, 2, 3, 1, 5, 6, 8, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16, 14, 19, 14, 11, 22, 11)

H36M17_JOINTS = (
    'pelvis', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee', 'left_ankle', 'spine', 'thorax',
    'neck_nose', 'head', 'left_shoulder', 'left_elbow', 'left_wrist', 'right_shoulder', 'right_elbow', 'right_wrist',
)
H36M17_PARENTS = (0, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)


@dataclasses.dataclass(frozen=True)
class Layout:
  """An ordered joint layout.

  Attributes:
    name: the layout's name ('custom' for an explicit layout).
    joints: joint names in storage order.
    parents: parent index of every joint; the root is its own parent.
    centre_joints: joints whose mean is the default centre for root-centring (the root unless the layout says
      otherwise, e.g. the hips for COCO).
    description: where the order and tree come from.
  """
  name: str
  joints: tuple[str, ...]
  parents: tuple[int, ...]
  centre_joints: tuple[int, ...] = ()
  description: str = ''

  def __post_init__(self):
    validate_tree(self.joints, self.parents, where=f'layout {self.name!r}')
    if not self.centre_joints:
      object.__setattr__(self, 'centre_joints', (self.root,))

  @property
  def num_joints(self) -> int:
    return len(self.joints)

  @property
  def root(self) -> int:
    return next(j for j, parent in enumerate(self.parents) if parent == j)

  @property
  def edges(self) -> tuple[tuple[int, int], ...]:
    """The bones as (child, parent) pairs of joint indices, in joint order; the root has none."""
    return tuple((child, parent) for child, parent in enumerate(self.parents) if child != parent)

  @property
  def parents_array(self) -> np.ndarray:
    """(J,) int64 parents."""
    return np.asarray(self.parents, dtype=np.int64)

  def index(self, joint: str) -> int:
    """Index of a joint name (ValueError listing the names when unknown)."""
    try:
      return self.joints.index(joint)
    except ValueError:
      raise ValueError(f'layout {self.name!r} has no joint {joint!r}; joints: {list(self.joints)}') from None

  def to_dict(self) -> dict[str, Any]:
    """JSON-serialisable description (an explicit layout that `get_layout` accepts, plus the name)."""
    return {'name': self.name, 'joints': list(self.joints), 'parents': list(self.parents),
            'centre_joints': list(self.centre_joints)}


def validate_tree(joints: Sequence[str], parents: Sequence[int], where: str = 'layout') -> None:
  """Raises ValueError unless `parents` describes one tree over `joints` (see the module docstring)."""
  if not joints:
    raise ValueError(f'{where}: "joints" is empty')
  for position, joint in enumerate(joints):
    if not isinstance(joint, str) or not joint:
      raise ValueError(f'{where}: joint {position} has no name (got {joint!r})')
  duplicates = sorted({joint for joint in joints if list(joints).count(joint) > 1})
  if duplicates:
    raise ValueError(f'{where}: duplicate joint names {duplicates}')
  if len(parents) != len(joints):
    raise ValueError(f'{where}: {len(joints)} joints but {len(parents)} parents')
  for joint, parent in enumerate(parents):
    if isinstance(parent, bool) or not isinstance(parent, (int, np.integer)) or not 0 <= parent < len(joints):
      raise ValueError(f'{where}: parent of joint {joint} ({joints[joint]!r}) is {parent!r}, not an index in '
                       f'[0, {len(joints)})')
  roots = [joint for joint, parent in enumerate(parents) if parent == joint]
  if len(roots) != 1:
    names = [joints[j] for j in roots]
    raise ValueError(f'{where}: needs exactly one root (a joint that is its own parent), found {len(roots)}: '
                     f'{names}')
  for start in range(len(joints)):
    seen, joint = set(), start
    while parents[joint] != joint:
      if joint in seen:
        cycle = ' -> '.join(joints[j] for j in seen)
        raise ValueError(f'{where}: the parents of {joints[start]!r} form a cycle ({cycle}); every joint must reach '
                         f'the root {joints[roots[0]]!r}')
      seen.add(joint)
      joint = parents[joint]


def _named(name, joints, parents, description, centre=()):
  return Layout(name, tuple(joints), tuple(parents), tuple(joints.index(j) for j in centre), description)


LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (
        _named('ntu25', NTU25_JOINTS, NTU25_PARENTS,
               'Kinect v2 (NTU RGB+D): Kinect for Windows SDK 2.0 JointType order; CTR-GCN NTU tree'),
        _named('nucla20', NUCLA20_JOINTS, NUCLA20_PARENTS,
               'Kinect v1 (N-UCLA, native order): NUI_SKELETON_POSITION_INDEX order; N-UCLA feeder bone pairs',
               centre=('hip_center',)),
        _named('penn13', PENN13_JOINTS, PENN13_PARENTS, 'Penn Action: the README joint order',
               centre=('left_hip', 'right_hip')),
        _named('coco17', COCO17_JOINTS, COCO17_PARENTS,
               'COCO keypoints: person_keypoints categories[0].keypoints order; pyskl coco tree',
               centre=('left_hip', 'right_hip')),
        _named('mediapipe33', MEDIAPIPE33_JOINTS, MEDIAPIPE33_PARENTS,
               'MediaPipe Pose landmarks 0-32; POSE_CONNECTIONS made acyclic',
               centre=('left_hip', 'right_hip')),
        _named('openpose25', OPENPOSE25_JOINTS, OPENPOSE25_PARENTS, 'OpenPose BODY_25 (doc/02_output.md)'),
        _named('h36m17', H36M17_JOINTS, H36M17_PARENTS, 'Human3.6M 17 joints (VideoPose3D h36m_skeleton)'),
    )
}


def layout_names() -> list[str]:
  return sorted(LAYOUTS)


def get_layout(layout: str | Mapping[str, Any] | Layout) -> Layout:
  """A named layout, or an explicit `{"joints": [...], "parents": [...]}` (optionally "name", "centre_joints").

  Raises:
    ValueError: an unknown name (the message lists the known ones) or an invalid explicit layout.
  """
  if isinstance(layout, Layout):
    return layout
  if isinstance(layout, str):
    try:
      return LAYOUTS[layout]
    except KeyError:
      raise ValueError(f'unknown joint layout {layout!r}; known layouts: {", ".join(layout_names())} (or an explicit '
                       '{"joints": [...], "parents": [...]})') from None
  if not isinstance(layout, Mapping):
    raise ValueError(f'a layout is a name or {{"joints": [...], "parents": [...]}}, got {type(layout).__name__}')
  unknown = sorted(set(layout) - {'joints', 'parents', 'name', 'centre_joints'})
  missing = [key for key in ('joints', 'parents') if key not in layout]
  if unknown or missing:
    problem = f'missing {missing}' if missing else f'unknown keys {unknown}'
    raise ValueError(f'explicit layout: {problem}; expected {{"joints": [names], "parents": [indices]}} '
                     '(optional "name", "centre_joints")')
  joints, parents = layout['joints'], layout['parents']
  if not isinstance(joints, (list, tuple)) or not isinstance(parents, (list, tuple)):
    raise ValueError('explicit layout: "joints" and "parents" must be lists')
  name = layout.get('name', 'custom')
  where = f'explicit layout {name!r}' if 'name' in layout else 'explicit layout'
  validate_tree(joints, parents, where)
  centre = layout.get('centre_joints', ())
  centre_indices = []
  for joint in centre:
    if isinstance(joint, str) and joint in joints:
      centre_indices.append(list(joints).index(joint))
    elif isinstance(joint, int) and not isinstance(joint, bool) and 0 <= joint < len(joints):
      centre_indices.append(joint)
    else:
      raise ValueError(f'{where}: centre joint {joint!r} is neither a joint name nor an index')
  return Layout(str(name), tuple(joints), tuple(int(p) for p in parents), tuple(centre_indices))


# --- Anatomical names and approximations --------------------------------------------------------------

# Names that differ between formats but mean the same point.
_SYNONYMS = {
    'spine_base': 'pelvis', 'hip_center': 'pelvis', 'mid_hip': 'pelvis',
    'spine_mid': 'spine',
    'spine_shoulder': 'thorax', 'shoulder_center': 'thorax',
    'neck_nose': 'neck',
    'foot_index': 'foot', 'big_toe': 'foot',
}
_SIDES = ('left', 'right')


def canonical_name(joint: str, layout_name: str = '') -> str:
  """The anatomical meaning of a joint name: 'shoulder_left' -> 'left_shoulder', 'hip_center' -> 'pelvis', ...

  OpenPose's neck keypoint lies between the shoulders, so in `openpose25` 'neck' means 'thorax'.
  """
  name = joint.lower()
  for side in _SIDES:
    if name.endswith('_' + side):
      name = f'{side}_{name[:-len(side) - 1]}'
  if layout_name == 'openpose25' and name == 'neck':
    return 'thorax'
  for side in _SIDES:
    if name.startswith(side + '_'):
      rest = name[len(side) + 1:]
      return f'{side}_{_SYNONYMS.get(rest, rest)}'
  return _SYNONYMS.get(name, name)


def _sided(rules: Mapping[str, list[tuple[str, ...]]]) -> dict[str, list[tuple[str, ...]]]:
  """Expands '{side}' in keys and joint names to both sides."""
  out = {}
  for key, alternatives in rules.items():
    for side in _SIDES if '{side}' in key else ('',):
      out[key.format(side=side)] = [tuple(j.format(side=side) for j in option) for option in alternatives]
  return out


# canonical joint -> alternatives, tried in order; each alternative is the mean of its canonical joints.
APPROXIMATIONS: dict[str, list[tuple[str, ...]]] = _sided({
    'pelvis': [('left_hip', 'right_hip')],
    'thorax': [('left_shoulder', 'right_shoulder')],
    'spine': [('pelvis', 'thorax')],
    'neck': [('thorax', 'head'), ('thorax', 'nose')],
    'head': [('left_ear', 'right_ear'), ('nose',), ('neck',)],
    'nose': [('head',)],
    '{side}_eye': [('head',)],
    '{side}_ear': [('head',)],
    '{side}_eye_inner': [('{side}_eye',)],
    '{side}_eye_outer': [('{side}_eye',)],
    '{side}_mouth': [('nose',)],
    '{side}_hand': [('{side}_index', '{side}_pinky'), ('{side}_wrist',)],
    '{side}_hand_tip': [('{side}_index',), ('{side}_hand',)],
    '{side}_thumb': [('{side}_hand',)],
    '{side}_index': [('{side}_hand_tip',), ('{side}_hand',)],
    '{side}_pinky': [('{side}_hand',)],
    '{side}_foot': [('{side}_ankle',)],
    '{side}_small_toe': [('{side}_foot',)],
    '{side}_heel': [('{side}_ankle',)],
})


def _weights_for(target: str, available: Mapping[str, int], num_source: int,
                 visiting: frozenset[str]) -> np.ndarray | None:
  """(J_src,) weights producing canonical joint `target` from the source joints, or None."""
  if target in available:
    weights = np.zeros(num_source)
    weights[available[target]] = 1.0
    return weights
  if target in visiting:
    return None
  for option in APPROXIMATIONS.get(target, ()):
    parts = [_weights_for(part, available, num_source, visiting | {target}) for part in option]
    if all(part is not None for part in parts):
      return np.mean(parts, axis=0)
  return None


def mapping_matrix(source: str | Mapping[str, Any] | Layout, target: str | Mapping[str, Any] | Layout,
                   mapping: str | Mapping[str, Any] | None = None) -> np.ndarray:
  """(J_tgt, J_src) matrix W with `target_clip[..., t, :] = Σ_s W[t, s]·source_clip[..., s, :]`.

  Args:
    source, target: layouts (names, explicit dicts or Layout objects).
    mapping: None for the anatomical mapping (module docstring); 'original_partition_order' for the original
      code's N-UCLA -> NTU transfer (nucla20 -> ntu25 only); or a dict {target joint: source joint name or index,
      or a list of them (their mean)} overriding or completing the anatomical mapping for those joints.

  Raises:
    ValueError: a target joint no rule produces (the message names them), or a bad `mapping`.
  """
  source, target = get_layout(source), get_layout(target)
  if isinstance(mapping, str):
    if mapping != 'original_partition_order':
      raise ValueError(f"unknown mapping {mapping!r}; expected None, 'original_partition_order' or a dict "
                       '{target joint: source joint(s)}')
    if (source.name, target.name) != ('nucla20', 'ntu25'):
      raise ValueError(f"mapping 'original_partition_order' maps nucla20 -> ntu25, not {source.name} -> "
                       f'{target.name}')
    # The original: out[k] = u[k] (k < 20), out[20] = u[2], out[21] = out[22] = u[7], out[23] = out[24] = u[11],
    # where u[k] = native[NUCLA_PARTITION_ORDER[k]].
    partition_source = list(range(20)) + [2, 7, 7, 11, 11]
    matrix = np.zeros((target.num_joints, source.num_joints))
    matrix[np.arange(target.num_joints), [NUCLA_PARTITION_ORDER[k] for k in partition_source]] = 1.0
    return matrix
  if mapping is not None and not isinstance(mapping, Mapping):
    raise ValueError(f'mapping must be None, a name or a dict, got {type(mapping).__name__}')
  explicit = dict(mapping or {})
  available = {}
  for index, joint in enumerate(source.joints):
    available.setdefault(canonical_name(joint, source.name), index)
  matrix = np.zeros((target.num_joints, source.num_joints))
  missing = []
  for row, joint in enumerate(target.joints):
    if joint in explicit:
      matrix[row] = _explicit_weights(explicit.pop(joint), source, joint)
      continue
    weights = _weights_for(canonical_name(joint, target.name), available, source.num_joints, frozenset())
    if weights is None:
      missing.append(joint)
    else:
      matrix[row] = weights
  if explicit:
    raise ValueError(f'mapping names target joints that {target.name!r} does not have: {sorted(explicit)}; '
                     f'its joints: {list(target.joints)}')
  if missing:
    raise ValueError(f'cannot map {source.name!r} to {target.name!r}: no source joint or approximation for target '
                     f'joints {missing}; give them in mapping={{target joint: source joint(s)}}')
  return matrix


def _explicit_weights(value: Any, source: Layout, target_joint: str) -> np.ndarray:
  parts = value if isinstance(value, (list, tuple)) else [value]
  if not parts:
    raise ValueError(f'mapping for target joint {target_joint!r} is empty')
  weights = np.zeros(source.num_joints)
  for part in parts:
    if isinstance(part, str):
      index = source.index(part)
    elif isinstance(part, (int, np.integer)) and not isinstance(part, bool) and 0 <= part < source.num_joints:
      index = int(part)
    else:
      raise ValueError(f'mapping for target joint {target_joint!r}: {part!r} is not a joint of {source.name!r}')
    weights[index] += 1.0 / len(parts)
  return weights


def convert(clips: np.ndarray, source: str | Mapping[str, Any] | Layout, target: str | Mapping[str, Any] | Layout,
            *, mapping: str | Mapping[str, Any] | None = None, zero_missing: bool = True) -> np.ndarray:
  """Maps clips from the source layout to the target layout (see `mapping_matrix` and the module docstring).

  Args:
    clips: (..., J_src, C) coordinates, e.g. (T, J, C), (T, M, J, C) or (B, T, J, C).
    source, target: layouts.
    mapping: see `mapping_matrix`.
    zero_missing: a joint computed from several source joints is 0 wherever one of them is missing (all its
      coordinates exactly 0, the convention of Kinect and most pose estimators), instead of a mean pulled towards
      the origin. Turn it off for data in which a joint sits exactly at the origin by construction (e.g. clips
      centred on that joint) and takes part in such a mean. Copied joints are unaffected.

  Returns:
    (..., J_tgt, C) array of the input's float dtype.

  Raises:
    ValueError: the clips do not have the source layout's joint count, or the mapping cannot be built.
  """
  source_layout = get_layout(source)
  clips = np.asarray(clips)
  if clips.ndim < 2 or clips.shape[-2] != source_layout.num_joints:
    raise ValueError(f'clips of shape {clips.shape} do not have the {source_layout.num_joints} joints of layout '
                     f'{source_layout.name!r} on axis -2')
  matrix = mapping_matrix(source_layout, target, mapping)
  dtype = clips.dtype if np.issubdtype(clips.dtype, np.floating) else np.float32
  x = clips.astype(dtype, copy=False)
  out = np.einsum('ts,...sc->...tc', matrix.astype(dtype), x)
  if not zero_missing:
    return out
  present = np.any(x != 0, axis=-1)  # (..., J_src)
  uses = matrix != 0  # (J_tgt, J_src)
  # A target joint is present where every source joint it uses is present.
  missing = np.einsum('ts,...s->...t', uses.astype(np.int32), (~present).astype(np.int32)) > 0
  return np.where(missing[..., None], np.zeros((), dtype), out)
