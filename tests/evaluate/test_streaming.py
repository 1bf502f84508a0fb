"""Streaming prediction equals offline prediction on the same windows, compiles nothing after warm-up, and treats
bad frames and gaps as its flags say."""

import io
import json
import sys
import types

import jax
import numpy as np
import pytest

import cascadeformer_jax as cfx
from cascadeformer_jax.config import configuration
from cascadeformer_jax.data import layouts
from cascadeformer_jax.data import preprocessing
from cascadeformer_jax.evaluate import streaming
from cascadeformer_jax.run import cli
from cascadeformer_jax.run import runtime
from tests import tiny_models

WINDOW = tiny_models.NUCLA_FRAMES


@pytest.fixture(scope='module')
def model(tmp_path_factory):
  return cfx.load_classifier(tiny_models.save_nucla_model(tmp_path_factory.mktemp('stream') / 'model'))


def _push_all(stream, clip, times=None):
  predictions = []
  for i, frame in enumerate(clip):
    prediction = stream.push(frame, None if times is None else times[i])
    if prediction is not None:
      predictions.append(prediction)
  return predictions


def test_streaming_over_a_recorded_clip_equals_offline_prediction_on_the_same_windows(model, fast_compile):
  clip = tiny_models.recorded_clip(40)
  stream = cfx.StreamingClassifier(model, stride=3, emit_partial=True)
  assert stream.window == WINDOW
  predictions = _push_all(stream, clip)
  # Every 3 frames, aligned so that the first full window (frames 0-15) emits; partial windows before it.
  assert [p.t for p in predictions] == list(range(0, 40, 3))
  windows = [clip[max(0, p.t + 1 - WINDOW):p.t + 1] for p in predictions]
  assert [(p.first_t, p.frames) for p in predictions] == [(max(0, p.t + 1 - WINDOW), len(w))
                                                         for p, w in zip(predictions, windows)]
  offline = np.stack([model.predict_raw(window)[0] for window in windows])
  streamed = np.stack([p.logits for p in predictions])
  np.testing.assert_allclose(streamed, offline, rtol=1e-5, atol=1e-5)
  softmax = np.exp(offline - offline.max(axis=1, keepdims=True))
  np.testing.assert_allclose([p.probabilities for p in predictions], softmax / softmax.sum(axis=1, keepdims=True),
                             atol=1e-6)
  # The windows give different outputs: a window shifted by a frame would not pass.
  assert np.abs(offline[1:] - offline[:-1]).max(axis=1).min() > 1e-4
  assert predictions[-1].top_k(2)[0][0] == model.class_names[int(offline[-1].argmax())]

  waiting = _push_all(cfx.StreamingClassifier(model, stride=3), clip)
  assert [p.t for p in waiting] == list(range(WINDOW - 1, 40, 3))
  np.testing.assert_allclose([p.logits for p in waiting], streamed[5:], rtol=1e-6, atol=1e-6)


def test_no_compilation_after_warm_up(model, fast_compile):
  with runtime.count_compilations() as sanity:  # the counter sees a compilation when there is one
    jax.jit(lambda x: x * 3)(np.ones(11))
  assert sanity.total == 1
  notices = []
  stream = cfx.StreamingClassifier(model, stride=2, bad_frames='skip', gaps='fill', notice=notices.append)
  stream.warm_up()
  clip = tiny_models.recorded_clip(30, seed=1)
  clip[20, 4, 1] = np.nan
  times = list(range(10)) + list(range(13, 33))  # frames 10-12 missing
  with runtime.count_compilations() as count:
    predictions = _push_all(stream, clip, times)
  assert len(predictions) >= 8 and count.total == 0, count
  assert stream.skipped == 1 and stream.filled == 3 and len(notices) == 2, notices


def test_bad_frames_are_refused_or_skipped_naming_the_frame(model, fast_compile):
  clip = tiny_models.recorded_clip(6)
  stream = cfx.StreamingClassifier(model, window=4)
  for frame in clip[:3]:
    stream.push(frame)
  bad = {'joints': (clip[3, :19], 'frame 3: shape (1, 19, 3), expected (joints, coords) or (persons, joints, '
                    'coords) with 20 joints (nucla20 layout) and 3 coordinates'),
         'nan': (np.where(np.arange(20)[:, None] == 2, np.nan, clip[3]), 'frame 3: 3 NaN/Inf coordinates'),
         'inf': (np.where(np.arange(3) == 0, np.inf, clip[3]), 'frame 3: 20 NaN/Inf coordinates'),
         'persons': (np.stack([clip[3], clip[3]]), 'frame 3: 2 persons, the model takes one'),
         'ragged': ([[1.0, 2.0, 3.0], [1.0]], 'frame 3: not an array of numbers')}
  for frame, message in bad.values():
    with pytest.raises(streaming.BadFrameError) as refused:
      stream.push(frame)
    assert str(refused.value).startswith(message) and '\n' not in str(refused.value)
  with pytest.raises(streaming.BadFrameError, match='frame 2: frame index 2 after 2: frame indices must increase'):
    stream.push(clip[3], t=2)
  assert stream.push(clip[3][None]) is not None  # one person as (1, J, C): the first full window

  notices = []
  skipping = cfx.StreamingClassifier(model, window=4, bad_frames='skip', notice=notices.append)
  _push_all(skipping, clip[:3])
  for frame, _ in bad.values():
    assert skipping.push(frame) is None
  prediction = skipping.push(clip[3], t=8)  # skipped frames are left out, not a gap
  assert prediction is not None and (prediction.first_t, prediction.t, prediction.frames) == (0, 8, 4)
  np.testing.assert_array_equal(skipping.window_frames(), clip[:4])
  assert skipping.skipped == len(bad) and [n.split(':')[0] for n in notices] == [f'frame {t}' for t in range(3, 8)]
  assert all(n.endswith(': skipped') for n in notices)


def test_a_gap_is_refused_or_filled_with_the_last_frame(model, fast_compile):
  clip = tiny_models.recorded_clip(8)
  stream = cfx.StreamingClassifier(model, window=6, stride=2)
  _push_all(stream, clip[:3])
  with pytest.raises(streaming.FrameGapError, match=r'^frame 6: frames 3-5 missing after frame 2 '):
    stream.push(clip[3], t=6)
  notices = []
  filling = cfx.StreamingClassifier(model, window=6, stride=2, gaps='fill', notice=notices.append)
  _push_all(filling, clip[:3])
  prediction = filling.push(clip[3], t=6)  # the emission due on filled frame 5 comes with frame 6
  assert prediction is not None and (prediction.first_t, prediction.t) == (1, 6)
  np.testing.assert_array_equal(filling.window_frames(), clip[[1, 2, 2, 2, 2, 3]])
  assert notices == ['frame 6: frames 3-5 missing: repeated frame 2'] and filling.filled == 3
  assert filling.push(clip[4], t=1000) is not None  # a long gap costs one window of copies, not 993
  np.testing.assert_array_equal(filling.window_frames(), clip[[3, 3, 3, 3, 3, 4]])


def test_frames_in_another_layout_are_mapped(model, fast_compile):
  ntu = tiny_models.recorded_clip(5, seed=2)
  ntu = np.concatenate([ntu, ntu[:, :5]], axis=1)  # 25 joints
  stream = cfx.StreamingClassifier(model, window=5, layout='ntu25')
  assert _push_all(stream, ntu)
  np.testing.assert_allclose(stream.window_frames(), layouts.convert(ntu, 'ntu25', 'nucla20'), atol=1e-6)
  with pytest.raises(streaming.BadFrameError, match='25 joints \\(ntu25 layout\\)'):
    stream.push(ntu[0, :20])


def test_person_slots_of_an_ntu_style_model():
  config = configuration.load_config_file(tiny_models.SMOKE, 'ntu60_xsub,1.0')
  ntu = types.SimpleNamespace(config=None, params=None,  # nothing is predicted: the window never fills
                              preprocessing=preprocessing.describe(config.data, ['a'] * config.data.num_classes))
  stream = cfx.StreamingClassifier(ntu, window=8)
  one, two = tiny_models.recorded_clip(2, seed=5)
  one, two = np.concatenate([one, one[:5]]), np.concatenate([two, two[:5]])  # 25 joints
  for frame in (one, [one], [one, two], []):
    stream.push(frame)
  np.testing.assert_array_equal(stream.window_frames(), [[one, 0 * one], [one, 0 * one], [one, two], [0 * one] * 2])
  with pytest.raises(streaming.BadFrameError, match='frame 4: 3 persons, the model takes at most 2'):
    stream.push([one, two, one])


def test_default_windows_and_bad_settings(model):
  penn = configuration.load_config_file(tiny_models.SMOKE, 'penn_action,1.0').data
  penn_preprocessing = preprocessing.describe(penn, None)
  assert streaming.default_window(penn_preprocessing) == 64  # the first length bucket, not 663 frames
  assert streaming.default_window(model.preprocessing) == WINDOW
  for settings, message in (({'stride': 0}, 'stride must be a positive integer'),
                            ({'window': 0}, 'window must be a positive number'),
                            ({'bad_frames': 'drop'}, 'bad_frames must be one of'),
                            ({'gaps': 'interpolate'}, 'gaps must be one of')):
    with pytest.raises(ValueError, match=message):
      cfx.StreamingClassifier(model, **settings)
  with pytest.raises(ValueError, match='does not store its preprocessing'):
    cfx.StreamingClassifier(cfx.Classifier(model.config, model.params))


def test_frame_sources_and_the_emission_loop_on_json_lines_and_npy(model, tmp_path, fast_compile):
  clip = tiny_models.recorded_clip(12, seed=3)
  lines = [json.dumps({'t': t, 'persons': [clip[t].tolist()]}) for t in range(12)]
  lines[4] = '{"t": 4, "persons": [[[1, 2, 3]]]}'  # wrong joint count
  lines[7] = 'not json'
  text = '\n'.join(lines[:9] + [''] + lines[9:]) + '\n'  # a blank line is ignored
  notices = []
  stream = cfx.StreamingClassifier(model, stride=2, window=4, bad_frames='skip', notice=notices.append)
  out = io.StringIO()
  assert streaming.run(stream, streaming.read_frames('-', io.StringIO(text)), 2, out) == 4
  records = [json.loads(line) for line in out.getvalue().splitlines()]
  assert [(r['t'], r['window']) for r in records] == [(3, [0, 3]), (6, [2, 6]), (9, [5, 9]), (11, [8, 11])]
  assert all(len(r['top_k']) == 2 and r['latency_ms'] > 0 for r in records)
  assert notices[0].startswith('frame 4: shape (1, 1, 3)') and notices[0].endswith(': skipped')
  assert notices[1] == 'stdin line 8: invalid JSON (Expecting value): skipped'

  np.save(tmp_path / 'clip.npy', clip)
  played = cfx.StreamingClassifier(model, stride=2, window=4)
  out = io.StringIO()
  assert streaming.run(played, streaming.read_frames(str(tmp_path / 'clip.npy'), io.StringIO()), 1, out) == 5
  expected = [model.predict_raw(clip[t - 3:t + 1])[0] for t in (3, 5, 7, 9, 11)]
  top = [json.loads(line)['top_k'][0] for line in out.getvalue().splitlines()]
  assert [r['class'] for r in top] == [model.class_names[int(e.argmax())] for e in expected]
  np.testing.assert_allclose([r['probability'] for r in top], [1 / np.exp(e - e.max()).sum() for e in expected],
                             atol=2e-6)
  for name, content, message in (('clip.txt', b'', "unsupported input type '.txt'"),
                                 ('fake.npy', b'PK\x03\x04', 'not a NumPy .npy file'),
                                 ('missing.npy', None, 'no such input file')):
    if content is not None:
      (tmp_path / name).write_bytes(content)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
      streaming.read_frames(str(tmp_path / name), io.StringIO())


def test_a_refused_frame_or_gap_ends_the_stream_in_one_line(model, tmp_path, capsys, fast_compile):
  clip = tiny_models.recorded_clip(6)
  np.save(tmp_path / 'clip.npy', np.where(np.arange(6)[:, None, None] == 3, np.inf, clip))
  (tmp_path / 'gap.jsonl').write_text(''.join(json.dumps({'t': t, 'persons': [clip[t].tolist()]}) + '\n'
                                              for t in (0, 1, 2, 4, 5)))
  for name, message in (('clip.npy', 'frame 3: 60 NaN/Inf coordinates (bad_frames=skip leaves such frames out)'),
                        ('gap.jsonl', 'frame 4: frame 3 missing after frame 2 (gaps=fill repeats the last frame)')):
    stream = cfx.StreamingClassifier(model, window=2)
    frames = streaming.read_frames(str(tmp_path / name), sys.stdin)
    work = lambda stream=stream, frames=frames: streaming.run(stream, frames, 1, sys.stdout)
    code = cli.call(work, debug=False)
    out, err = capsys.readouterr()
    assert code == cli.EXIT_ERROR and err == f'error: {message}\n', err
    assert [json.loads(line)['t'] for line in out.splitlines()] == [1, 2]
