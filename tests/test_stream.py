"""The streaming command line: JSON lines on stdin until end of input, one JSON line per emission, bad frames and
gaps per its flags (the loop's one-line errors and the .npy input: tests/evaluate/test_streaming.py)."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import cascadeformer_jax as cfx
from tests import tiny_models

pytestmark = pytest.mark.cost(10)  # seconds on 2 cores, roughly: a process that imports JAX and compiles a model

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_stdin_frames_stream_to_json_lines_until_end_of_input(tmp_path, fast_compile):
  model_dir = tiny_models.save_nucla_model(tmp_path / 'model')
  clip = tiny_models.recorded_clip(30, seed=4)
  clip[12] = np.where(clip[12] > 0, np.nan, clip[12])
  sent = [t for t in range(30) if t not in (20, 21)]
  lines = [json.dumps({'t': t, 'persons': [clip[t].tolist()]}) for t in sent]
  result = subprocess.run(
      [sys.executable, '-m', 'cascadeformer_jax.stream', f'--init_from={model_dir}', '--input=-', '--stride=4',
       '--top_k=2', '--bad_frames=skip', '--gaps=fill'], input='\n'.join(lines) + '\n', cwd=REPO_ROOT,
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  records = [json.loads(line) for line in result.stdout.splitlines()]
  # The same frames through the API: frame 12 skipped, frames 20-21 filled with frame 19.
  stream = cfx.StreamingClassifier(cfx.load_classifier(model_dir), stride=4, bad_frames='skip', gaps='fill')
  expected = [p for p in (stream.push(clip[t], t) for t in sent) if p is not None]
  assert [(r['t'], r['window']) for r in records] == [(p.t, [p.first_t, p.t]) for p in expected]
  assert [r['t'] for r in records] == [16, 20 + 2, 24, 28]  # the emission due on filled frame 20 comes with 22
  for record, prediction in zip(records, expected):
    assert [entry['class'] for entry in record['top_k']] == [name for name, _ in prediction.top_k(2)]
    np.testing.assert_allclose([entry['probability'] for entry in record['top_k']],
                               [p for _, p in prediction.top_k(2)], atol=1e-5)
    assert record['latency_ms'] > 0
  assert 'frame 12: ' in result.stderr and 'NaN/Inf coordinates: skipped' in result.stderr
  assert 'frame 22: frames 20-21 missing: repeated frame 19' in result.stderr
  assert '4 predictions from 27 frames (window 16, stride 4, 1 skipped, 2 filled)' in result.stderr
