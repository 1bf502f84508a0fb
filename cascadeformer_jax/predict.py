r"""Classifies a user's own skeleton sequences with a trained or converted CascadeFormer.

    python -m cascadeformer_jax.predict --config=configs/nucla_v1_1.py --init_from=<model dir | work dir | hf:folder> \
        --input=clip.npy [--top_k=5] [--output=predictions.json] [--features_output=features.npz] \
        [--bank=train_features.npz]

Input: a clip in the dataset's stored layout, (T, J, C) — for NTU-style datasets also (T, 2, J, C) with the
second actor slot (a (T, J, C) clip fills slot 0) — as .npy (one clip, or a stack (N, T, ...) of equal-length
clips), .npz (one clip per array), or .json (a nested list for one clip, or {"clips": [clip, ...]}). Clips get
the dataset's evaluation preprocessing (e.g. N-UCLA centring, min-max and 64 frames; NTU crop, resize and person
selection).

A bank of training embeddings for the kNN and Mahalanobis anomaly scores is made by running over a split:

    python -m cascadeformer_jax.predict --config=... --init_from=... --split=train --features_output=bank.npz
"""

import json
import pathlib
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file (model and dataset).')
_INIT_FROM = flags.DEFINE_string('init_from', None, 'Model directory, training work directory or hf:<folder>.')
_INPUT = flags.DEFINE_string('input', None, 'A .npy, .npz or .json file of clips.')
_SPLIT = flags.DEFINE_string('split', None, 'Instead of --input: run over this split of the config\'s dataset.')
_TOP_K = flags.DEFINE_integer('top_k', 5, 'How many classes to print per clip.')
_OUTPUT = flags.DEFINE_string('output', None, 'Write per-clip logits, probabilities, top-k (and scores) as JSON.')
_FEATURES_OUTPUT = flags.DEFINE_string('features_output', None, 'Write pooled embeddings (and labels) as .npz.')
_BANK = flags.DEFINE_string('bank', None, 'A --features_output file of training clips: enables the kNN and '
                            'Mahalanobis anomaly scores.')
_KNN = flags.DEFINE_integer('knn', 1, 'k of the kNN distance.')
_ANOMALY = flags.DEFINE_bool('anomaly_scores', False, 'Add the four anomaly scores per clip.')
flags.mark_flags_as_required(['config', 'init_from'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from cascadeformer_jax import configuration  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.evaluate import inference  # pylint: disable=g-import-not-at-top

  configuration.quiet_logs()
  if (_INPUT.value is None) == (_SPLIT.value is None):
    print('error: pass exactly one of --input and --split', file=sys.stderr)
    return 2
  try:
    predictor = inference.Predictor.load(_CONFIG.value, configuration.model_config(_CONFIG.value), _INIT_FROM.value)
    if _INPUT.value is not None:
      names, clips = inference.read_clips(_INPUT.value, predictor.data_config)
      outputs = predictor.predict_raw(clips, names)
    else:
      outputs = predictor.predict_split(_SPLIT.value)
    scores = None
    if _ANOMALY.value or _BANK.value:
      bank = inference.read_bank(_BANK.value) if _BANK.value else None
      scores = inference.scores_for(outputs, bank, _KNN.value)
  except (ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  top = inference.top_k(outputs, predictor.class_names, _TOP_K.value)
  if _INPUT.value is not None:
    for name, entries in zip(outputs['names'], top):
      print(f'{name}: ' + ', '.join(f'{c} {p:.3f}' for c, p in entries))
  else:
    print(f'{len(outputs["names"])} clips of split {_SPLIT.value!r}; top-1 accuracy '
          f'{float((outputs["logits"].argmax(-1) == outputs["labels"]).mean()):.4f}')
  if _OUTPUT.value:
    records = inference.records(outputs, top, scores, predictor.class_names)
    pathlib.Path(_OUTPUT.value).write_text(json.dumps({'clips': records}, indent=1) + '\n')
  if _FEATURES_OUTPUT.value:
    inference.write_features(_FEATURES_OUTPUT.value, outputs)
  return 0


if __name__ == '__main__':
  app.run(main)
