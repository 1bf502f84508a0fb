r"""Streaming prediction: classifies a pose stream frame by frame, on a sliding window of its latest frames.

    python -m cascadeformer_jax.stream --init_from=<model dir | work dir | hf:folder> \
        --input=<frames.npy | frames.jsonl | -> [--stride=8] [--window=64] [--top_k=3] \
        [--bad_frames=refuse|skip] [--gaps=refuse|fill] [--emit_partial]

Input (`-` = standard input, read line by line until end of input; a file is played back):
  * JSON lines, one frame per line:

        {"t": 17, "persons": [[[x, y, z], [x, y, z], ...]]}

    ``persons`` is a list of persons, each a list of joints, each a list of coordinates (C of the model: 3 for NTU
    and N-UCLA, 2 for Penn Action). One-person models (N-UCLA, Penn Action) take exactly one person; NTU-style and
    folder models up to their person slots (missing slots are zero-filled; an empty list is an empty frame).
    ``t`` is the frame index; without it a frame follows the previous one. Blank lines are ignored.
  * .npy: an array of frames (T, J, C) or (T, persons, J, C), played back with t = 0, 1, ...

  Joints are in the model's stored layout, or in ``--layout`` (mapped as in ``predict``, with ``--mapping``).

Output: one JSON line per emission on standard output, flushed at once:

    {"t": 63, "window": [0, 63], "top_k": [{"class": "walk around", "probability": 0.91}, ...], "latency_ms": 21.4}

``t`` is the frame that completed the window, ``window`` its first and last frame index, ``latency_ms`` the time
from that frame's arrival (parsed) to its probabilities. Skipped frames and filled gaps are reported on standard
error, one line each.

The window (default: the model's frame count; Penn Action: 64 frames), the emission schedule (every ``--stride``
frames, starting with the first full window; ``--emit_partial`` also while it fills) and the transform (the model's
stored test transform, as on an offline clip of the window's frames) are described in
cascadeformer_jax/evaluate/streaming.py. The forward of a full window is compiled before the first frame is read.

Bad input ends the stream with one line naming the frame (exit 1), or is reported and left out:
  * ``--bad_frames=refuse|skip``: a line that is not a JSON frame, a frame with the wrong joint or coordinate count
    or too many persons, NaN or Inf coordinates, or a frame index that does not increase;
  * ``--gaps=refuse|fill``: a jump in ``t`` (fill repeats the last frame for the missing ones).
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from cascadeformer_jax.run import cli

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file: only for a model that does not '
                                          'store its preprocessing; otherwise it must agree with the model.')
_INIT_FROM = flags.DEFINE_string('init_from', None, 'Model directory, training work directory or hf:<folder>.')
_INPUT = flags.DEFINE_string('input', None, 'Frames: a .npy array, a .jsonl file, or - (JSON lines on stdin).')
_STRIDE = flags.DEFINE_integer('stride', 1, 'Emit every this many frames.')
_WINDOW = flags.DEFINE_integer('window', None, "Frames per prediction (default: the model's frame count; Penn "
                               'Action: 64).')
_TOP_K = flags.DEFINE_integer('top_k', 3, 'How many classes each emission lists.')
_EMIT_PARTIAL = flags.DEFINE_bool('emit_partial', False, 'Also emit while the window fills.')
_BAD_FRAMES = flags.DEFINE_enum('bad_frames', 'refuse', ['refuse', 'skip'],
                                'A bad frame (wrong shape, NaN/Inf, unreadable line, non-increasing t): end the '
                                'stream with an error, or leave the frame out.')
_GAPS = flags.DEFINE_enum('gaps', 'refuse', ['refuse', 'fill'],
                          'A jump in t: end the stream with an error, or repeat the last frame for the missing ones.')
_LAYOUT = flags.DEFINE_string('layout', None, "Joint layout of the frames when it is not the model's: a name or an "
                              'explicit layout as JSON.')
_MAPPING = flags.DEFINE_string('mapping', None, 'With --layout: a mapping name (original_partition_order) or a JSON '
                               'object {target joint: source joint(s)}.')
flags.mark_flags_as_required(['init_from', 'input'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from cascadeformer_jax.config import configuration  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.evaluate import inference  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.evaluate import streaming  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.run import runtime  # pylint: disable=g-import-not-at-top

  configuration.quiet_logs()
  if _STRIDE.value < 1:
    raise app.UsageError(f'--stride must be at least 1, got {_STRIDE.value}')
  if _WINDOW.value is not None and _WINDOW.value < 1:
    raise app.UsageError(f'--window must be at least 1, got {_WINDOW.value}')
  if _TOP_K.value < 1:
    raise app.UsageError(f'--top_k must be at least 1, got {_TOP_K.value}')
  config = _CONFIG.value
  if config is not None:
    runtime.apply_matmul_precision(config.get('matmul_precision', 'default'))
    runtime.setup_compilation_cache(config.get('compilation_cache_dir', ''))
    configuration.resolve_dataset(config)
  layout, mapping = cli.json_or_name('--layout', _LAYOUT.value), cli.json_or_name('--mapping', _MAPPING.value)
  frames = streaming.read_frames(_INPUT.value, sys.stdin)  # a bad file is refused before the model loads
  predictor = inference.Predictor.load(_INIT_FROM.value, config,
                                       None if config is None else configuration.model_config(config))
  stream = streaming.StreamingClassifier(
      predictor, _STRIDE.value, _WINDOW.value, layout=layout, mapping=mapping, emit_partial=_EMIT_PARTIAL.value,
      bad_frames=_BAD_FRAMES.value, gaps=_GAPS.value, notice=lambda line: print(line, file=sys.stderr, flush=True))
  stream.warm_up()
  emitted = streaming.run(stream, frames, _TOP_K.value, sys.stdout)
  frames_seen = stream.count - stream.filled
  print(f'{emitted} predictions from {frames_seen} frames (window {stream.window}, stride {stream.stride}'
        + (f', {stream.skipped} skipped' if stream.skipped else '')
        + (f', {stream.filled} filled' if stream.filled else '') + ')', file=sys.stderr, flush=True)
  return 0


if __name__ == '__main__':
  cli.run(main)
