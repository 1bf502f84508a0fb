"""Procedural NTU-style skeleton clips: a kinematic 25-joint body performing ten actions.

Everything is plain numpy and deterministic: a clip depends only on (seed, subject, class, repetition), so a small
configuration yields a subset of the clips of a large one.

Body model (person frame: x = the person's right, y = up, z = forward, metres, ground at y = 0): a pelvis
(spine_base) with a yaw, a torso that can pitch forward (bow), arms positioned by two-link inverse kinematics from
hand (wrist) targets given relative to the shoulder in the torso frame, legs from hip/knee flexion angles, feet kept
on the ground (except in jumps). Per subject: height and segment proportions. Per clip: idle postures of the limbs
not used by the action (hands on hips, arms crossed, a hand raised, a forward lean, bent knees, a staggered stance,
...), speed/frequency, phase, amplitude, onset/offset of the action, small sway, camera view (yaw about +-45 deg
plus jitter, tilt), Gaussian joint noise (larger on hand tips and thumbs) and occasional short bursts of missing
joints (stored as zeros, as Kinect does).

Output per clip: (T, 2, 25, 3) float32 in NTU (Kinect v2) joint order and camera-like axes (x to the camera's left
= the person's right when facing the camera, y up, z away from the camera), centred like CTR-GCN's NTU data on
actor 1's spine_mid in the first frame; slot 1 is zeros unless the class is a two-person interaction.
"""

import dataclasses

import numpy as np

from cascadeformer_jax.data import layouts

FPS = 30.0
HEADING_JITTER = 30.0
CLASS_NAMES = (
    'wave_left_hand', 'wave_right_hand', 'clap', 'bow', 'squat', 'jump', 'kick', 'reach', 'turn_around', 'handshake',
)
TWO_PERSON_CLASSES = frozenset({'handshake'})
# Base yaw of the camera around the person for views 1, 2, 3 (degrees), like NTU's three cameras.
VIEW_YAW_DEGREES = {1: 0.0, 2: 45.0, 3: -45.0}

# Joint indices of the NTU (Kinect v2) layout; LEFT / RIGHT index the sided joints.
LEFT, RIGHT = -1, 1
_INDEX = {name: index for index, name in enumerate(layouts.NTU25_JOINTS)}
NUM_JOINTS = len(layouts.NTU25_JOINTS)


def _sided(joint: str) -> dict[int, int]:
  return {LEFT: _INDEX[f'{joint}_left'], RIGHT: _INDEX[f'{joint}_right']}


SPINE_BASE, SPINE_MID, NECK, HEAD = (_INDEX[name] for name in ('spine_base', 'spine_mid', 'neck', 'head'))
SHOULDER, ELBOW, WRIST, HAND = _sided('shoulder'), _sided('elbow'), _sided('wrist'), _sided('hand')
HIP, KNEE, ANKLE, FOOT = _sided('hip'), _sided('knee'), _sided('ankle'), _sided('foot')
SPINE_SHOULDER = _INDEX['spine_shoulder']
HAND_TIP, THUMB = _sided('hand_tip'), _sided('thumb')
# Joints that may go missing, with weights (extremities are tracked worst).
_MISSING_CANDIDATES = np.array([_INDEX[name] for name in (
    'hand_tip_left', 'thumb_left', 'hand_tip_right', 'thumb_right', 'hand_left', 'hand_right', 'foot_left',
    'foot_right', 'wrist_left', 'wrist_right', 'ankle_left', 'ankle_right', 'head')])
_MISSING_WEIGHTS = np.array([3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1], np.float64)


@dataclasses.dataclass(frozen=True)
class Body:
  """Segment lengths of one subject in metres."""
  spine_lower: float
  spine_upper: float
  neck: float
  head: float
  shoulder_half_width: float
  upper_arm: float
  forearm: float
  hand: float
  hand_tip: float
  thumb: float
  hip_half_width: float
  hip_drop: float
  thigh: float
  shin: float
  foot: float
  ankle_height: float


def sample_body(rng: np.random.Generator) -> Body:
  """Body proportions of one subject: height about 1.47-1.93 m, limbs/torso/widths varied independently."""
  scale = rng.uniform(0.84, 1.1)
  torso, arms, legs, width = (scale * rng.uniform(0.93, 1.07) for _ in range(4))
  return Body(
      spine_lower=0.27 * torso, spine_upper=0.22 * torso, neck=0.07 * torso, head=0.13 * scale,
      shoulder_half_width=0.175 * width * rng.uniform(0.95, 1.05), upper_arm=0.29 * arms, forearm=0.26 * arms,
      hand=0.08 * arms, hand_tip=0.08 * arms, thumb=0.05 * arms, hip_half_width=0.085 * width, hip_drop=0.06 * torso,
      thigh=0.44 * legs, shin=0.42 * legs, foot=0.14 * scale, ankle_height=0.08 * scale)


# ----------------------------------------------------------------------------------------------------------------
# Geometry helpers.


def _normalize(v: np.ndarray) -> np.ndarray:
  return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _rot_y(angle: np.ndarray) -> np.ndarray:
  """(T,) yaw angles (radians) -> (T, 3, 3); positive turns +z (forward) towards +x (right)."""
  c, s = np.cos(angle), np.sin(angle)
  zero, one = np.zeros_like(angle), np.ones_like(angle)
  return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1), np.stack([-s, zero, c], -1)], -2)


def _rot_x(angle: np.ndarray) -> np.ndarray:
  """(T,) pitch angles (radians) -> (T, 3, 3); positive tilts +y (up) towards +z (forward)."""
  c, s = np.cos(angle), np.sin(angle)
  zero, one = np.zeros_like(angle), np.ones_like(angle)
  return np.stack([np.stack([one, zero, zero], -1), np.stack([zero, c, -s], -1), np.stack([zero, s, c], -1)], -2)


def _apply(rotation: np.ndarray, vectors: np.ndarray) -> np.ndarray:
  """(T, 3, 3) x (T, 3) or (3,) -> (T, 3)."""
  return np.einsum('tij,tj->ti', rotation, np.broadcast_to(vectors, rotation.shape[:-1]))


def _two_link_ik(root: np.ndarray, target: np.ndarray, length1: float, length2: float,
                 pole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Middle and end joint of a two-segment limb reaching for `target` (clamped to the reachable shell).

  Args:
    root, target, pole: (T, 3); the middle joint bends towards `pole`.

  Returns:
    (middle, end), each (T, 3).
  """
  offset = target - root
  distance = np.linalg.norm(offset, axis=-1, keepdims=True)
  direction = offset / np.maximum(distance, 1e-9)
  reach = np.clip(distance, abs(length1 - length2) * 1.05 + 1e-3, (length1 + length2) * 0.995)
  along = (length1 ** 2 - length2 ** 2 + reach ** 2) / (2 * reach)
  across = np.sqrt(np.maximum(length1 ** 2 - along ** 2, 0.0))
  bend = pole - np.sum(pole * direction, axis=-1, keepdims=True) * direction
  bend = _normalize(bend)
  return root + along * direction + across * bend, root + reach * direction


def _smoothstep(x: np.ndarray) -> np.ndarray:
  x = np.clip(x, 0.0, 1.0)
  return x * x * (3 - 2 * x)


def _bumps(u: np.ndarray, count: int, hold: float) -> np.ndarray:
  """`count` smooth 0 -> 1 -> 0 bumps over u in [0, 1], each flat at 1 for a fraction `hold` of its span."""
  local = np.clip(u, 0.0, 1.0) * count
  local = local - np.minimum(np.floor(local), count - 1)
  rise = (1.0 - hold) / 2
  return _smoothstep(local / rise) * _smoothstep((1.0 - local) / rise)


def _sway(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
  """Slow random sway (sum of two sinusoids below 0.6 Hz) with the given amplitude, (T,)."""
  out = np.zeros_like(t)
  for _ in range(2):
    out += np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * t / FPS + rng.uniform(0, 2 * np.pi))
  return amplitude * out / 2


# ----------------------------------------------------------------------------------------------------------------
# Posture and motion specification.

# Idle hand (wrist) targets relative to the shoulder in the torso frame, in units of the arm length, for the right
# arm (x is mirrored for the left arm), with the elbow pole direction.
_IDLE_ARMS = {
    'down': ((0.12, -0.96, 0.05), (0.3, 0.0, -1.0)),
    'hip': ((-0.05, -0.8, -0.05), (1.0, 0.0, -0.4)),
    'front': ((-0.15, -0.55, 0.6), (0.3, -1.0, 0.0)),
    'chest': ((-0.45, -0.45, 0.35), (1.0, -1.0, 0.0)),
    'crossed': ((-0.65, -0.55, 0.3), (0.5, -1.0, 0.3)),
    'head': ((-0.1, 0.3, 0.15), (1.0, -0.3, 0.0)),
    'raised': ((0.25, 0.65, 0.1), (1.0, -0.5, -0.2)),
    'point': ((0.1, -0.05, 0.95), (0.3, -1.0, 0.0)),
}
_IDLE_ARM_NAMES = tuple(_IDLE_ARMS)
_IDLE_ARM_PROBS = np.array([0.25, 0.1, 0.13, 0.08, 0.08, 0.12, 0.14, 0.1])


# Resting postures an idle arm may move to during a clip.
_FIDGET_ARM_NAMES = ('down', 'hip', 'front', 'chest', 'crossed', 'head')
FIDGET_PROBABILITY = 0.3
SYMMETRIC_ARMS_PROBABILITY = 0.35


def _idle_arm(rng: np.random.Generator, side: int, name: str) -> tuple[np.ndarray, np.ndarray]:
  """(wrist target in arm lengths, elbow pole) of an idle arm posture, jittered, for the given side."""
  target, pole = (np.array(v, np.float64) for v in _IDLE_ARMS[name])
  target = target + rng.normal(0.0, 0.05, 3)
  target[0] *= side
  pole[0] *= side
  return target, pole


@dataclasses.dataclass
class Motion:
  """Per-frame posture of one person; all arrays have T rows.

  root: (T, 3) pelvis offset in the person's initial frame (added to the standing height).
  yaw, pitch: (T,) radians: pelvis heading and torso forward bend.
  hand_targets / hand_poles: side -> (T, 3) wrist targets and elbow poles, shoulder-relative, torso frame, metres.
  hip_flexion / knee_flexion: side -> (T,) radians. foot_follow_shin: side -> (T,) in [0, 1] (0: foot flat).
  flight: (T,) extra height of the whole body (jumps).
  """
  root: np.ndarray
  yaw: np.ndarray
  pitch: np.ndarray
  hand_targets: dict[int, np.ndarray]
  hand_poles: dict[int, np.ndarray]
  hip_flexion: dict[int, np.ndarray]
  knee_flexion: dict[int, np.ndarray]
  foot_follow_shin: dict[int, np.ndarray]
  flight: np.ndarray


def _idle_motion(rng: np.random.Generator, t: np.ndarray, body: Body) -> Motion:
  """A person standing with random idle postures of arms, torso and legs, and a slow sway."""
  frames = len(t)
  arm_length = body.upper_arm + body.forearm
  hand_targets, hand_poles = {}, {}
  postures = [_IDLE_ARM_NAMES[i] for i in rng.choice(len(_IDLE_ARM_NAMES), size=2, p=_IDLE_ARM_PROBS)]
  if rng.random() < SYMMETRIC_ARMS_PROBABILITY:  # both arms alike (hands on hips, both in front, ...)
    postures[1] = postures[0]
  for side, posture in zip((LEFT, RIGHT), postures):
    target, pole = _idle_arm(rng, side, posture)
    sway = np.stack([_sway(rng, t, 0.03) for _ in range(3)], -1)
    hand_targets[side] = arm_length * (target + sway)
    hand_poles[side] = np.broadcast_to(pole, (frames, 3)).copy()
  if rng.random() < FIDGET_PROBABILITY:  # one arm moves to another resting posture during the clip
    side = LEFT if rng.random() < 0.5 else RIGHT
    target, pole = _idle_arm(rng, side, _FIDGET_ARM_NAMES[rng.integers(len(_FIDGET_ARM_NAMES))])
    start, length = rng.uniform(-10, frames - 5), rng.uniform(10, 25)
    weight = _smoothstep((t - start) / length)
    hand_targets[side] = _blend(hand_targets[side], arm_length * target, weight)
    hand_poles[side] = _blend(hand_poles[side], pole, weight)
  lean_degrees = rng.uniform(15, 45) if rng.random() < 0.3 else rng.uniform(-5, 8)
  pitch = np.deg2rad(lean_degrees) + _sway(rng, t, np.deg2rad(2))
  stance = rng.choice(['straight', 'bent', 'stagger'], p=[0.64, 0.18, 0.18])
  hip_flexion, knee_flexion = {}, {}
  for side in (LEFT, RIGHT):
    if stance == 'bent':
      knee = rng.uniform(20, 55)
      hip = knee * rng.uniform(0.55, 0.75)
    elif stance == 'stagger' and side == (RIGHT if rng.random() < 0.5 else LEFT):
      hip, knee = rng.uniform(15, 40), rng.uniform(5, 30)
    else:
      hip, knee = rng.uniform(-3, 6), rng.uniform(0, 8)
    hip_flexion[side] = np.full(frames, np.deg2rad(hip)) + _sway(rng, t, np.deg2rad(1.5))
    knee_flexion[side] = np.full(frames, np.deg2rad(knee))
  if stance == 'bent':
    pitch = pitch + np.deg2rad(rng.uniform(10, 25))
  root = np.stack([_sway(rng, t, 0.02), np.zeros(frames), _sway(rng, t, 0.02)], -1)
  return Motion(root=root, yaw=_sway(rng, t, np.deg2rad(3)), pitch=pitch, hand_targets=hand_targets,
                hand_poles=hand_poles, hip_flexion=hip_flexion, knee_flexion=knee_flexion,
                foot_follow_shin={LEFT: np.zeros(frames), RIGHT: np.zeros(frames)}, flight=np.zeros(frames))


def _action_window(rng: np.random.Generator, frames: int,
                   duration: float | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(u, envelope): action progress in [0, 1] and a smooth on/off envelope over a window of the clip.

  Without `duration` the action lasts about the whole clip; with it (frames), the window is placed at random. In both
  cases the recording may start or stop while the action is under way.
  """
  t = np.arange(frames, dtype=np.float64)
  if duration is None:
    duration = rng.uniform(0.7, 1.3) * frames
  low, high = -0.15 * duration, frames - 0.85 * duration
  if high > low:
    start = rng.uniform(low, high)
  else:
    start = (frames - duration) / 2 + rng.uniform(-0.1, 0.1) * duration
  end = start + duration
  u = np.clip((t - start) / (end - start), 0.0, 1.0)
  ramp = min(rng.uniform(6, 12), duration / 3)
  envelope = _smoothstep((t - start) / ramp) * _smoothstep((end - t) / ramp)
  return u, envelope


def _blend(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
  weight = weight.reshape(weight.shape + (1,) * (a.ndim - weight.ndim))
  return (1 - weight) * a + weight * b


def _wave(rng, t, body, motion, side):
  """The hand of `side` rises above the shoulder and swings side to side at 1.3-2.6 Hz."""
  _, envelope = _action_window(rng, len(t), rng.uniform(40, 110))
  arm = body.upper_arm + body.forearm
  centre = arm * np.array([side * rng.uniform(0.0, 0.4), rng.uniform(0.2, 0.8), rng.uniform(-0.05, 0.3)])
  frequency = rng.uniform(1.3, 2.6)
  amplitude = arm * rng.uniform(0.14, 0.3)
  swing = np.sin(2 * np.pi * frequency * t / FPS + rng.uniform(0, 2 * np.pi))
  direction = _normalize(np.array([1.0, rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)]))
  target = centre + amplitude * swing[:, None] * direction
  motion.hand_targets[side] = _blend(motion.hand_targets[side], target, envelope)
  motion.hand_poles[side] = _blend(motion.hand_poles[side], np.array([side * 1.0, -0.5, -0.2]), envelope)


def _clap(rng, t, body, motion):
  """Both hands meet repeatedly (1.5-3 Hz) in front of the chest."""
  _, envelope = _action_window(rng, len(t), rng.uniform(40, 100))
  arm = body.upper_arm + body.forearm
  height = arm * rng.uniform(-0.5, -0.05)
  forward = arm * rng.uniform(0.5, 0.75)
  frequency = rng.uniform(1.5, 3.0)
  opening = arm * rng.uniform(0.2, 0.4) * 0.5 * (1 - np.cos(2 * np.pi * frequency * t / FPS + rng.uniform(-0.5, 0.5)))
  for side in (LEFT, RIGHT):
    half_gap = 0.03 + opening
    lateral = side * (half_gap - body.shoulder_half_width)
    target = np.stack([lateral, np.full_like(t, height), np.full_like(t, forward)], -1)
    motion.hand_targets[side] = _blend(motion.hand_targets[side], target, envelope)
    motion.hand_poles[side] = _blend(motion.hand_poles[side], np.array([side * 1.0, -1.0, 0.0]), envelope)


def _bow(rng, t, body, motion):
  """One or two forward bends of the torso by 35-70 deg."""
  count = int(rng.integers(1, 3))
  u, _ = _action_window(rng, len(t), count * rng.uniform(40, 75))
  bend = _bumps(u, count, rng.uniform(0.1, 0.5)) * np.deg2rad(rng.uniform(35, 70))
  motion.pitch = motion.pitch + bend
  motion.root[:, 2] -= 0.12 * np.sin(bend)  # hips move back for balance
  if rng.random() < 0.5:  # arms hang (towards the floor) rather than keep their idle pose
    arm = body.upper_arm + body.forearm
    for side in (LEFT, RIGHT):
      hang = np.stack([np.full_like(t, side * 0.1 * arm), -arm * np.cos(bend) * 0.95, arm * np.sin(bend) * 0.95], -1)
      motion.hand_targets[side] = _blend(motion.hand_targets[side], hang, np.minimum(1.0, bend / 0.3))


def _squat(rng, t, body, motion):
  """One or two knee bends (partial to deep), feet on the ground."""
  count = int(rng.integers(1, 3))
  u, _ = _action_window(rng, len(t), count * rng.uniform(40, 70))
  depth = _bumps(u, count, rng.uniform(0.0, 0.4)) * rng.uniform(0.35, 1.0)
  for side in (LEFT, RIGHT):
    motion.hip_flexion[side] = motion.hip_flexion[side] + np.deg2rad(95) * depth
    motion.knee_flexion[side] = motion.knee_flexion[side] + np.deg2rad(125) * depth
  motion.pitch = motion.pitch + np.deg2rad(rng.uniform(25, 40)) * depth
  if rng.random() < 0.5:  # arms forward for balance
    arm = body.upper_arm + body.forearm
    for side in (LEFT, RIGHT):
      forward = arm * np.array([side * 0.05, -0.1, 0.95])
      motion.hand_targets[side] = _blend(motion.hand_targets[side], forward, depth)


def _jump(rng, t, body, motion):
  """One to three vertical jumps: crouch, 0.12-0.35 m flight, landing crouch."""
  jumps = int(rng.integers(1, 4))
  u, _ = _action_window(rng, len(t), jumps * rng.uniform(22, 34))
  local = np.clip(u, 0, 1) * jumps
  local = local - np.minimum(np.floor(local), jumps - 1)
  active = (u > 0) & (u < 1)
  crouch = (_smoothstep(local / 0.3) * _smoothstep((0.45 - local) / 0.15) +
            _smoothstep((local - 0.75) / 0.1) * _smoothstep((1.0 - local) / 0.15)) * active
  airborne = np.clip((local - 0.45) / 0.3, 0, 1)
  flight = np.where(active & (local > 0.45) & (local < 0.75), 4 * airborne * (1 - airborne), 0.0)
  motion.flight = motion.flight + rng.uniform(0.12, 0.35) * flight
  depth = rng.uniform(0.3, 0.5) * crouch
  for side in (LEFT, RIGHT):
    motion.hip_flexion[side] = motion.hip_flexion[side] * (1 - crouch) + np.deg2rad(95) * depth
    motion.knee_flexion[side] = motion.knee_flexion[side] * (1 - crouch) + np.deg2rad(125) * depth
    motion.foot_follow_shin[side] = 0.6 * flight
  motion.pitch = motion.pitch + np.deg2rad(30) * depth
  if rng.random() < 0.6:  # arm swing: back while crouching, up in the air
    arm = body.upper_arm + body.forearm
    for side in (LEFT, RIGHT):
      back = arm * np.array([side * 0.1, -0.85, -0.45])
      up = arm * np.array([side * 0.2, 0.7, 0.35])
      swing = _blend(_blend(motion.hand_targets[side], back, crouch), up, flight)
      motion.hand_targets[side] = swing


def _kick(rng, t, body, motion):
  """One or two forward kicks of the right leg (wind-up, swing to 50-90 deg, return)."""
  kicks = int(rng.integers(1, 3))
  u, _ = _action_window(rng, len(t), kicks * rng.uniform(20, 32))
  local = np.clip(u, 0, 1) * kicks
  local = local - np.minimum(np.floor(local), kicks - 1)
  active = ((u > 0) & (u < 1)).astype(np.float64)
  windup = _smoothstep(local / 0.3) * _smoothstep((0.5 - local) / 0.2) * active
  swing = _smoothstep((local - 0.3) / 0.25) * _smoothstep((1.0 - local) / 0.35) * active
  height = np.deg2rad(rng.uniform(50, 90))
  side = RIGHT
  motion.hip_flexion[side] = motion.hip_flexion[side] * (1 - swing) - np.deg2rad(15) * windup + height * swing
  motion.knee_flexion[side] = motion.knee_flexion[side] + np.deg2rad(80) * windup * (1 - swing) + \
      np.deg2rad(10) * swing
  motion.foot_follow_shin[side] = np.maximum(windup, swing)
  motion.hip_flexion[-side] = motion.hip_flexion[-side] * (1 - swing) + np.deg2rad(3) * swing
  motion.pitch = motion.pitch - np.deg2rad(rng.uniform(5, 15)) * swing


def _reach(rng, t, body, motion):
  """The right hand reaches forward to a low/high target at arm's length, holds, and returns."""
  u, _ = _action_window(rng, len(t), rng.uniform(45, 85))
  extend = _bumps(u, 1, rng.uniform(0.1, 0.45))
  arm = body.upper_arm + body.forearm
  target = arm * np.array([rng.uniform(0.0, 0.3), rng.uniform(-0.35, 0.45), rng.uniform(0.85, 1.0)])
  motion.hand_targets[RIGHT] = _blend(motion.hand_targets[RIGHT], target, extend)
  motion.hand_poles[RIGHT] = _blend(motion.hand_poles[RIGHT], np.array([0.6, -1.0, 0.0]), extend)
  motion.pitch = motion.pitch + np.deg2rad(rng.uniform(0, 20)) * extend * (target[1] < 0)
  motion.root[:, 2] += rng.uniform(0.0, 0.15) * extend  # lean/step towards the target


def _turn_around(rng, t, body, motion):
  """The body turns by 100-200 deg (either way) with stepping feet."""
  u, _ = _action_window(rng, len(t), rng.uniform(35, 80))
  angle = np.deg2rad(rng.uniform(100, 200)) * rng.choice([-1.0, 1.0])
  progress = _smoothstep(u)
  motion.yaw = motion.yaw + angle * progress
  steps = max(2, int(rng.integers(2, 5)))
  stepping = np.sin(np.pi * steps * u) * (u > 0) * (u < 1)
  for side in (LEFT, RIGHT):
    lift = np.maximum(side * stepping, 0.0)
    motion.hip_flexion[side] = motion.hip_flexion[side] + np.deg2rad(25) * lift
    motion.knee_flexion[side] = motion.knee_flexion[side] + np.deg2rad(45) * lift


def _handshake(rng, t, body_a, body_b, motion_a, motion_b, distance):
  """Both actors reach with the right hand to a common point between them and shake it up and down.

  Actor 2 stands `distance` in front of actor 1, facing them; each actor's person frame has the partner at +z.
  """
  _, envelope = _action_window(rng, len(t))
  frequency = rng.uniform(1.2, 2.4)
  shake = rng.uniform(0.03, 0.07) * np.sin(2 * np.pi * frequency * t / FPS + rng.uniform(0, 2 * np.pi))
  shake = shake * _smoothstep((envelope - 0.5) * 2)
  for motion in (motion_a, motion_b):
    motion.pitch = _blend(motion.pitch, np.full_like(t, np.deg2rad(4)), envelope)
  frames = {}
  for key, body, motion in (('a', body_a, motion_a), ('b', body_b, motion_b)):
    root, _, torso = _root_and_frames(body, motion)
    frames[key] = (_shoulder(body, root, torso, RIGHT), torso)
  meet_height = (frames['a'][0][0, 1] + frames['b'][0][0, 1]) / 2 - rng.uniform(0.25, 0.45)
  for key, motion in (('a', motion_a), ('b', motion_b)):
    shoulder, torso = frames[key]
    meeting = np.stack([np.full_like(t, 0.03), meet_height + shake, np.full_like(t, distance / 2 - 0.03)], -1)
    target = np.einsum('tji,tj->ti', torso, meeting - shoulder)  # torso^T (meeting - shoulder)
    motion.hand_targets[RIGHT] = _blend(motion.hand_targets[RIGHT], target, envelope)
    motion.hand_poles[RIGHT] = _blend(motion.hand_poles[RIGHT], np.array([1.0, -1.0, 0.0]), envelope)


# ----------------------------------------------------------------------------------------------------------------
# Forward kinematics.


def _sagittal(angle: np.ndarray) -> np.ndarray:
  """Unit vectors rotated from straight down towards forward by `angle` (T,) -> (T, 3)."""
  return np.stack([np.zeros_like(angle), -np.cos(angle), np.sin(angle)], -1)


def _legs(body: Body, motion: Motion) -> dict[int, tuple[np.ndarray, ...]]:
  """Hip, knee, ankle, foot of each leg relative to the pelvis (pelvis frame), each (T, 3)."""
  frames = len(motion.yaw)
  legs = {}
  for side in (LEFT, RIGHT):
    hip = np.array([side * body.hip_half_width, -body.hip_drop, 0.0])
    thigh_direction = _sagittal(motion.hip_flexion[side])
    thigh_direction[:, 0] += side * 0.06
    knee = hip + body.thigh * _normalize(thigh_direction)
    shin_angle = motion.hip_flexion[side] - motion.knee_flexion[side]
    ankle = knee + body.shin * _sagittal(shin_angle)
    foot_angle = (1 - motion.foot_follow_shin[side]) * np.deg2rad(75) + \
        motion.foot_follow_shin[side] * (shin_angle + np.deg2rad(75))
    foot_direction = _sagittal(foot_angle)
    foot_direction[:, 0] += side * 0.2
    foot = ankle + body.foot * _normalize(foot_direction)
    legs[side] = (np.broadcast_to(hip, (frames, 3)), knee, ankle, foot)
  return legs


def _root_and_frames(body: Body, motion: Motion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Pelvis position (T, 3) with the lowest ankle at ankle height, pelvis and torso rotations (T, 3, 3)."""
  legs = _legs(body, motion)
  lowest_ankle = np.minimum(legs[LEFT][2][:, 1], legs[RIGHT][2][:, 1])
  frames = len(motion.yaw)
  root = motion.root + np.stack([np.zeros(frames), body.ankle_height - lowest_ankle + motion.flight,
                                 np.zeros(frames)], -1)
  pelvis = _rot_y(motion.yaw)
  return root, pelvis, pelvis @ _rot_x(motion.pitch)


def _spine_shoulder(body: Body, root: np.ndarray, torso: np.ndarray) -> np.ndarray:
  return root + _apply(torso, np.array([0.0, body.spine_lower + body.spine_upper, 0.05 * body.spine_upper]))


def _shoulder(body: Body, root: np.ndarray, torso: np.ndarray, side: int) -> np.ndarray:
  return _spine_shoulder(body, root, torso) + _apply(torso, np.array([side * body.shoulder_half_width, -0.03, 0.0]))


def forward_kinematics(body: Body, motion: Motion) -> np.ndarray:
  """Joint positions (T, 25, 3) in the person's initial frame (x right, y up, z forward; ground y = 0)."""
  frames = len(motion.yaw)
  joints = np.zeros((frames, NUM_JOINTS, 3))
  root, pelvis, torso = _root_and_frames(body, motion)
  joints[:, SPINE_BASE] = root
  for side, points in _legs(body, motion).items():
    for index, point in zip((HIP[side], KNEE[side], ANKLE[side], FOOT[side]), points):
      joints[:, index] = root + _apply(pelvis, point)

  up = np.array([0.0, 1.0, 0.0])
  joints[:, SPINE_MID] = root + _apply(torso, body.spine_lower * up)
  joints[:, SPINE_SHOULDER] = _spine_shoulder(body, root, torso)
  joints[:, NECK] = joints[:, SPINE_SHOULDER] + _apply(torso, body.neck * up)
  joints[:, HEAD] = joints[:, NECK] + _apply(torso, body.head * _normalize(np.array([0.0, 1.0, 0.15])))

  for side in (LEFT, RIGHT):
    shoulder = _shoulder(body, root, torso, side)
    target = shoulder + _apply(torso, motion.hand_targets[side])
    pole = _apply(torso, motion.hand_poles[side])
    elbow, wrist = _two_link_ik(shoulder, target, body.upper_arm, body.forearm, pole)
    forearm = _normalize(wrist - elbow)
    hand = wrist + body.hand * forearm
    thumb_direction = _normalize(np.cross(forearm, _apply(torso, np.array([side * 1.0, 0.0, 0.0]))) + 0.6 * forearm)
    joints[:, SHOULDER[side]] = shoulder
    joints[:, ELBOW[side]] = elbow
    joints[:, WRIST[side]] = wrist
    joints[:, HAND[side]] = hand
    joints[:, HAND_TIP[side]] = hand + body.hand_tip * forearm
    joints[:, THUMB[side]] = wrist + body.thumb * thumb_direction
  return joints


# ----------------------------------------------------------------------------------------------------------------
# Clips.


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """Identity of a clip; its content is a pure function of these fields and the seed."""
  subject: int
  label: int
  repetition: int


def subject_body(seed: int, subject: int) -> Body:
  return sample_body(np.random.default_rng([seed, 1, subject]))


def generate_clip(seed: int, spec: ClipSpec, min_frames: int = 40,
                  max_frames: int = 120) -> tuple[np.ndarray, int, int]:
  """Generates one clip.

  Returns:
    (skeleton (T, 2, 25, 3) float32, num_bodies, view in {1, 2, 3}).
  """
  rng = np.random.default_rng([seed, 2, spec.subject, spec.label, spec.repetition])
  frames = int(rng.integers(min_frames, max_frames + 1))
  t = np.arange(frames, dtype=np.float64)
  name = CLASS_NAMES[spec.label]
  body_a = subject_body(seed, spec.subject)
  motion_a = _idle_motion(rng, t, body_a)
  two_person = name in TWO_PERSON_CLASSES
  if name in ('wave_left_hand', 'wave_right_hand'):
    _wave(rng, t, body_a, motion_a, LEFT if name == 'wave_left_hand' else RIGHT)
  elif name == 'clap':
    _clap(rng, t, body_a, motion_a)
  elif name == 'bow':
    _bow(rng, t, body_a, motion_a)
  elif name == 'squat':
    _squat(rng, t, body_a, motion_a)
  elif name == 'jump':
    _jump(rng, t, body_a, motion_a)
  elif name == 'kick':
    _kick(rng, t, body_a, motion_a)
  elif name == 'reach':
    _reach(rng, t, body_a, motion_a)
  elif name == 'turn_around':
    _turn_around(rng, t, body_a, motion_a)
  if two_person:
    # Actor 2 is a "guest" with its own body, sampled per clip, so that subjects never cross the split.
    body_b = sample_body(np.random.default_rng([seed, 3, spec.subject, spec.label, spec.repetition]))
    motion_b = _idle_motion(rng, t, body_b)
    arms = body_a.upper_arm + body_a.forearm + body_b.upper_arm + body_b.forearm
    distance = rng.uniform(0.8, 1.05) * arms / 1.1
    _handshake(rng, t, body_a, body_b, motion_a, motion_b, distance)
    # Actor 2 stands `distance` in front of actor 1, facing them; the pair is centred for the camera placement.
    facing = _rot_y(np.full(frames, np.pi))
    points_b = np.einsum('tij,tvj->tvi', facing, forward_kinematics(body_b, motion_b))
    offset = np.array([0.0, 0.0, distance / 2])
    people = [forward_kinematics(body_a, motion_a) - offset, points_b + offset]
  else:
    people = [forward_kinematics(body_a, motion_a)]

  view = int(rng.integers(1, 4))
  yaw = np.deg2rad(VIEW_YAW_DEGREES[view] + rng.uniform(-12, 12) + rng.uniform(-HEADING_JITTER, HEADING_JITTER))
  tilt = np.deg2rad(rng.uniform(-12, 4))
  camera_distance = rng.uniform(2.6, 3.6)
  camera_height = rng.uniform(0.7, 1.3)
  scene = np.stack(people, axis=1)  # (T, M, 25, 3), person frame
  # Camera axes: x = the person's right when facing the camera, y up, z away from the camera (person's backward).
  cos_yaw, sin_yaw = np.cos(yaw), np.sin(yaw)
  rotate_yaw = np.array([[cos_yaw, 0, sin_yaw], [0, 1, 0], [-sin_yaw, 0, cos_yaw]])
  flip = np.diag([1.0, 1.0, -1.0])
  cos_tilt, sin_tilt = np.cos(tilt), np.sin(tilt)
  rotate_tilt = np.array([[1, 0, 0], [0, cos_tilt, -sin_tilt], [0, sin_tilt, cos_tilt]])
  to_camera = rotate_tilt @ flip @ rotate_yaw
  camera = scene @ to_camera.T + np.array([rng.uniform(-0.5, 0.5), -camera_height, camera_distance])

  noise_scale = rng.uniform(0.004, 0.015)
  noise = rng.normal(0.0, noise_scale, camera.shape)
  noise[:, :, [21, 22, 23, 24]] *= 2.5
  camera = camera + noise

  skeleton = np.zeros((frames, 2, NUM_JOINTS, 3), np.float32)
  skeleton[:, :len(people)] = camera - camera[0, 0, SPINE_MID]
  if rng.random() < 0.3:  # short bursts of untracked joints
    for _ in range(int(rng.integers(1, 4))):
      joint = rng.choice(_MISSING_CANDIDATES, p=_MISSING_WEIGHTS / _MISSING_WEIGHTS.sum())
      person = int(rng.integers(0, len(people)))
      length = int(rng.integers(1, 16))
      start = int(rng.integers(0, frames - length + 1))
      skeleton[start:start + length, person, joint] = 0.0
  return skeleton, len(people), view


@dataclasses.dataclass(frozen=True)
class Split:
  train_subjects: tuple[int, ...]
  test_subjects: tuple[int, ...]


def subject_split(num_subjects: int, test_subject_every: int) -> Split:
  """Cross-subject split: subjects 1..num_subjects; every `test_subject_every`-th one is a test subject."""
  subjects = range(1, num_subjects + 1)
  test = tuple(s for s in subjects if s % test_subject_every == 0)
  train = tuple(s for s in subjects if s % test_subject_every != 0)
  if not train or not test:
    raise ValueError(f'num_subjects={num_subjects}, test_subject_every={test_subject_every} leaves an empty split')
  return Split(train_subjects=train, test_subjects=test)


def clip_specs(subjects: tuple[int, ...], clips_per_class: int) -> list[ClipSpec]:
  """All clips of the given subjects, ordered by subject, class, repetition."""
  return [ClipSpec(subject=subject, label=label, repetition=repetition)
          for subject in subjects for label in range(len(CLASS_NAMES))
          for repetition in range(1, clips_per_class + 1)]


def sample_name(spec: ClipSpec, view: int) -> str:
  """NTU-like name, e.g. 'P003C002R004A005' (performer, camera/view, repetition, action = label + 1)."""
  return f'P{spec.subject:03d}C{view:03d}R{spec.repetition:03d}A{spec.label + 1:03d}'
