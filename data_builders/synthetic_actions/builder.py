"""`synthetic_actions`: procedurally generated NTU-style skeleton clips; the project's default dataset, no download.

Build (default: 11.5 s on 2 cores, 48 MiB; tiny: 0.3 s, 1.1 MiB; `python benchmarks/build_datasets.py`):
  python -m data_builders.build synthetic_actions --data_dir=DATA            # config `default`
  python -m data_builders.build synthetic_actions --config=tiny --data_dir=DATA

Ten classes defined by joint kinematics (`generator.py`): wave_left_hand, wave_right_hand, clap, bow, squat, jump,
kick, reach, turn_around and the two-person handshake, performed by a 25-joint Kinect-v2-ordered body in metres with
per-subject proportions, per-clip speed/phase/amplitude and idle postures, camera views (yaw 0 / +45 / -45 deg plus
jitter, tilt), joint noise, short bursts of missing joints (zeros) and 40-120 frames. Layout as `ntu_rgbd60`:
`skeleton` (T, 2, 25, 3) float32 centred on actor 1's spine_mid in the first frame, slot 1 zeros for one-person
classes; `num_bodies`, `subject`, `view`, `sample_name` (e.g. 'P003C002R004A005'), `label`. Cross-subject split:
every 4th subject is a test subject. Deterministic: a clip depends only on (seed, subject, class, repetition).

Configs: `default` = 40 subjects x 10 classes x 5 repetitions = 1500 train / 500 test clips (seed 0); `tiny` =
4 subjects x 10 classes x 1 = 30 / 10 clips (for tests). Other sizes: pass
`SyntheticActionsConfig(name=..., num_subjects=..., clips_per_class=..., seed=...)` as `config`.

Difficulty (default config, `python -m data_builders.synthetic_actions.baseline`, numpy logistic regression, L2
chosen on held-out training subjects; chance 10 %):
* per-clip mean joint positions (150 features): 68.0 % test accuracy (seed 1: 70.0 %);
* mean + std + mean |velocity| + mean |acceleration| per coordinate (600 features): 98.0 % (seed 1: 97.6 %).
Static poses are ambiguous by design (idle postures such as a raised hand, arms in front, a forward lean, bent
knees or a staggered stance mimic the mean pose of waves, claps, bows, squats and kicks; only the two-person
handshake is obvious from the pose); the motion separates the classes.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from data_builders import _common
from data_builders.synthetic_actions import generator


@dataclasses.dataclass(eq=False)
class SyntheticActionsConfig(tfds.core.BuilderConfig):
  """Size and seed of the generated dataset.

  Attributes:
    seed: global seed; every clip is a function of (seed, subject, class, repetition).
    num_subjects: subjects 1..num_subjects.
    test_subject_every: subjects whose id is a multiple of this are test subjects.
    clips_per_class: repetitions of every class per subject.
    min_frames, max_frames: clip length range (inclusive).
  """
  seed: int = 0
  num_subjects: int = 40
  test_subject_every: int = 4
  clips_per_class: int = 5
  min_frames: int = 40
  max_frames: int = 120


class SyntheticActions(tfds.core.GeneratorBasedBuilder):
  """Procedural 10-class, 25-joint 3D action dataset (see module docstring)."""

  name = 'synthetic_actions'
  VERSION = tfds.core.Version('1.0.1')
  SUPPORTED_VERSIONS = [tfds.core.Version('1.0.0')]  # readable; only VERSION is built
  RELEASE_NOTES = {
      '1.0.0': 'Initial release.',
      '1.0.1': ('Metadata: `edges` are the ntu25 tree of cascadeformer_jax.data.layouts (CTR-GCN pairs, root '
                'spine_shoulder), the tree of the bone features; examples identical to 1.0.0.'),
  }
  BUILDER_CONFIGS = [
      SyntheticActionsConfig(name='default', description='40 subjects x 10 classes x 5 clips: 1500 train / 500 test'),
      SyntheticActionsConfig(name='tiny', num_subjects=4, clips_per_class=1,
                             description='4 subjects x 10 classes x 1 clip: 30 train / 10 test (for tests)'),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    split = generator.subject_split(config.num_subjects, config.test_subject_every)
    metadata = _common.layout_metadata('ntu25')
    metadata.update({
        'class_names': list(generator.CLASS_NAMES),
        'num_classes': len(generator.CLASS_NAMES),
        'two_person_classes': sorted(generator.CLASS_NAMES.index(c) for c in generator.TWO_PERSON_CLASSES),
        'coordinates': ('camera-like axes in metres (x = the person\'s right when facing the camera, y up, z away '
                        'from the camera), centred on actor 1 spine_mid of the first frame; missing joints are zeros'),
        'skeleton_layout': '(T, 2, 25, 3) = (frame, actor slot, joint, (x, y, z)); unpadded; NTU joint order',
        'fps': generator.FPS,
        'views': {str(view): f'camera yaw {yaw:+.0f} deg (+- jitter)'
                  for view, yaw in generator.VIEW_YAW_DEGREES.items()},
        'generator_config': {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
                             if field.name in ('seed', 'num_subjects', 'test_subject_every', 'clips_per_class',
                                               'min_frames', 'max_frames')},
        'train_subjects': list(split.train_subjects),
        'test_subjects': list(split.test_subjects),
        'baselines_default_config': {
            'mean_pose_logistic_regression_test_accuracy': 0.68,
            'motion_statistics_logistic_regression_test_accuracy': 0.98,
            'command': 'python -m data_builders.synthetic_actions.baseline',
        },
    })
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            'skeleton': tfds.features.Tensor(shape=(None, 2, generator.NUM_JOINTS, 3), dtype=np.float32,
                                             encoding='zlib'),
            'num_bodies': np.int32,
            'subject': np.int32,
            'view': np.int32,
            'sample_name': tfds.features.Text(),
            'label': tfds.features.ClassLabel(names=generator.CLASS_NAMES),
        }),
        supervised_keys=('skeleton', 'label'),
        disable_shuffling=True,
        homepage='https://github.com/YP4AIresearch/CascadeFormer',
        metadata=tfds.core.MetadataDict(metadata),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # nothing to download
    config = self.builder_config
    if not 1 <= config.min_frames <= config.max_frames:
      raise ValueError(f'synthetic_actions: need 1 <= min_frames <= max_frames, got {config.min_frames}, '
                       f'{config.max_frames}')
    split = generator.subject_split(config.num_subjects, config.test_subject_every)
    return {
        'train': self._generate_examples(generator.clip_specs(split.train_subjects, config.clips_per_class), 'train'),
        'test': self._generate_examples(generator.clip_specs(split.test_subjects, config.clips_per_class), 'test'),
    }

  def _generate_examples(self, specs: list[generator.ClipSpec], split: str):
    config = self.builder_config
    for spec in _common.progress(specs, f'synthetic_actions/{config.name}: generating {split}'):
      skeleton, num_bodies, view = generator.generate_clip(config.seed, spec, config.min_frames, config.max_frames)
      name = generator.sample_name(spec, view)
      yield name, {
          'skeleton': skeleton,
          'num_bodies': num_bodies,
          'subject': spec.subject,
          'view': view,
          'sample_name': name,
          'label': spec.label,
      }
