r"""Classifies a user's own skeleton sequences with a trained or converted CascadeFormer.

    python -m cascadeformer_jax.predict --init_from=<model dir | work dir | hf:folder> --input=clip.npy \
        [--top_k=5] [--output=predictions.json] [--features_output=features.npz] [--bank=train_features.npz]

The model brings its own preprocessing, class names and joint layout (stored with it when it was trained or
converted). `--config` is needed only for a model directory converted before they were stored; a config that is
passed supplies the free settings (data_dir, evaluation batch size, precision) and must agree with the model on
everything that changes its input (a contradiction is refused, naming the field).

Input: a clip in the dataset's stored layout, (T, J, C) — for NTU-style datasets also (T, 2, J, C) with the
second actor slot (a (T, J, C) clip fills slot 0), for folder datasets (T, M, J, C) with M <= max_persons — as
.npy (one clip, or a stack (N, T, ...) of equal-length clips), .npz (one clip per array), or .json (a nested list
for one clip, or {"clips": [clip, ...]}). Clips get the dataset's evaluation preprocessing (e.g. N-UCLA centring,
min-max and 64 frames; NTU crop, resize and person selection; a folder's generic preprocessing).

Clips in another joint layout are mapped to the dataset's with `--layout` (ntu25, nucla20, penn13, coco17,
mediapipe33, openpose25, h36m17, or an explicit {"joints": [...], "parents": [...]} as JSON) and optionally
`--mapping` (a mapping name such as original_partition_order, or a JSON object {target joint: source joint(s)});
see cascadeformer_jax/data/layouts.py for how missing joints are approximated. E.g. OpenPose-25 clips with a model
trained on a folder dataset:

    python -m cascadeformer_jax.predict --init_from=workdirs/custom_my_dataset --input=clip.npy --layout=openpose25

A bank of training embeddings for the kNN and Mahalanobis anomaly scores is made by running over a split of the
model's dataset (`--data_dir`: where it is built, default $TFDS_DATA_DIR):

    python -m cascadeformer_jax.predict --init_from=... --split=train --data_dir=<tfds dir> --features_output=bank.npz
"""

import json
import pathlib
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from cascadeformer_jax.run import cli

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file: only for a model that does not store '
                                          'its preprocessing; otherwise it must agree with the model.')
_INIT_FROM = flags.DEFINE_string('init_from', None, 'Model directory, training work directory or hf:<folder>.')
_INPUT = flags.DEFINE_string('input', None, 'A .npy, .npz or .json file of clips.')
_SPLIT = flags.DEFINE_string('split', None, "Instead of --input: run over this split of the model's dataset.")
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'With --split: the TFDS data dir the dataset is built in.')
_TOP_K = flags.DEFINE_integer('top_k', 5, 'How many classes to print per clip.')
_OUTPUT = flags.DEFINE_string('output', None, 'Write per-clip logits, probabilities, top-k (and scores) as JSON.')
_FEATURES_OUTPUT = flags.DEFINE_string('features_output', None, 'Write pooled embeddings (and labels) as .npz.')
_BANK = flags.DEFINE_string('bank', None, 'A --features_output file of training clips: enables the kNN and '
                            'Mahalanobis anomaly scores.')
_KNN = flags.DEFINE_integer('knn', 1, 'k of the kNN distance.')
_ANOMALY = flags.DEFINE_bool('anomaly_scores', False, 'Add the four anomaly scores per clip.')
_LAYOUT = flags.DEFINE_string('layout', None, "Joint layout of the --input clips when it is not the dataset's: a "
                              'name or an explicit layout as JSON.')
_MAPPING = flags.DEFINE_string('mapping', None, 'With --layout: a mapping name (original_partition_order) or a JSON '
                               'object {target joint: source joint(s)}.')
flags.mark_flags_as_required(['init_from'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from cascadeformer_jax.config import configuration  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.run import runtime  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.evaluate import inference  # pylint: disable=g-import-not-at-top

  configuration.quiet_logs()
  if (_INPUT.value is None) == (_SPLIT.value is None):
    raise app.UsageError('pass exactly one of --input and --split')
  if (_LAYOUT.value is not None or _MAPPING.value is not None) and _INPUT.value is None:
    raise app.UsageError('--layout and --mapping apply to --input clips')
  if _TOP_K.value < 1:
    raise app.UsageError(f'--top_k={_TOP_K.value}: must be at least 1')
  if _KNN.value < 1:
    raise app.UsageError(f'--knn={_KNN.value}: must be at least 1')
  for flag, value in (('--output', _OUTPUT.value), ('--features_output', _FEATURES_OUTPUT.value)):
    if value:
      inference.check_output_file(value, flag)
  bank = inference.read_bank(_BANK.value) if _BANK.value else None
  if bank is not None and _KNN.value > len(bank['features']):
    raise app.UsageError(f'--knn={_KNN.value} is larger than the feature bank {_BANK.value} '
                         f'({len(bank["features"])} clips)')
  config = _CONFIG.value
  if config is not None:
    # The run settings of the config that matter for inference: matmul precision and the compilation cache.
    runtime.apply_matmul_precision(config.get('matmul_precision', 'default'))
    runtime.setup_compilation_cache(config.get('compilation_cache_dir', ''))
    if _DATA_DIR.value is not None:
      config.data.data_dir = _DATA_DIR.value
    configuration.resolve_dataset(config)  # folder datasets: joints, classes and layout from the folder
  layout, mapping = cli.json_or_name('--layout', _LAYOUT.value), cli.json_or_name('--mapping', _MAPPING.value)
  predictor = inference.Predictor.load(_INIT_FROM.value, config,
                                       None if config is None else configuration.model_config(config))
  if config is None and _DATA_DIR.value is not None:
    predictor.data_config.data_dir = _DATA_DIR.value
  print(predictor.describe(), file=sys.stderr, flush=True)
  if _INPUT.value is not None:
    names, clips = inference.read_clips(_INPUT.value, predictor.preprocessing, layout, mapping)
    outputs = predictor.predict_raw(clips, names)
    outputs['warnings'] = inference.clip_warnings(clips, outputs['input_peaks'], predictor.preprocessing)
  else:
    outputs = predictor.predict_split(_SPLIT.value)
  scores = None
  if _ANOMALY.value or _BANK.value:
    scores = inference.scores_for(outputs, bank, _KNN.value)
  top = inference.top_k(outputs, predictor.class_names, _TOP_K.value)
  if _INPUT.value is not None:
    for name, entries, warnings in zip(outputs['names'], top, outputs['warnings']):
      print(f'{name}: ' + ', '.join(f'{c} {p:.3f}' for c, p in entries)
            + ''.join(f'  [warning: {warning}]' for warning in warnings))
  else:
    print(f'{len(outputs["names"])} clips of split {_SPLIT.value!r}; top-1 accuracy '
          f'{float((outputs["logits"].argmax(-1) == outputs["labels"]).mean()):.4f}')
  if _OUTPUT.value:
    records = inference.records(outputs, top, scores, predictor.class_names)
    pathlib.Path(_OUTPUT.value).write_text(json.dumps({'clips': records}, indent=1, allow_nan=False) + '\n')
  if _FEATURES_OUTPUT.value:
    inference.write_features(_FEATURES_OUTPUT.value, outputs)
  return 0


if __name__ == '__main__':
  cli.run(main)
