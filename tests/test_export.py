"""The export command line: a model directory in, an export folder and one line out; bad input is one line."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from cascadeformer_jax.checkpoints import checkpoint_io
from tests.deploy import test_export

pytestmark = pytest.mark.cost(15)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _export(*args: str) -> subprocess.CompletedProcess:
  # A tiny model: compiled without most XLA optimisations, as the fast_compile fixture does.
  env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS='1')
  return subprocess.run([sys.executable, '-m', 'cascadeformer_jax.export', *args], capture_output=True, text=True,
                        cwd=REPO_ROOT, env=env, timeout=600)


def test_a_model_directory_exports_with_its_own_preprocessing(tmp_path):
  pytest.importorskip('flatbuffers', reason="StableHLO export needs the optional extra 'export'")
  predictor = test_export._predictor('1.0')
  checkpoint_io.save_model_dir(tmp_path / 'model', predictor.model_config,
                               {checkpoint_io.CLASSIFIER: predictor.params}, preprocessing=predictor.preprocessing)
  done = _export(f'--init_from={tmp_path / "model"}', '--format=stablehlo', f'--output={tmp_path / "out"}')
  assert done.returncode == 0, done.stderr[-3000:]
  lines = done.stdout.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f'wrote {tmp_path / "out" / "model.stablehlo"} (')
  assert float(lines[0].rsplit(' ', 1)[1]) <= test_export.TOLERANCE
  assert json.loads((tmp_path / 'out' / 'classes.json').read_text()) == predictor.class_names
  metadata = json.loads((tmp_path / 'out' / 'export.json').read_text())
  assert metadata['source'] == str(tmp_path / 'model') and metadata['check']['max_abs_difference'] <= 1e-4
  assert np.isclose(metadata['check']['max_abs_difference'], float(lines[0].rsplit(' ', 1)[1]), rtol=0.1)


def test_an_unknown_format_is_one_line(tmp_path):
  done = _export('--init_from=model', '--format=tflite', f'--output={tmp_path / "out"}')
  assert done.returncode == 2
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1, lines
  assert lines[0].startswith('error: --format=tflite: value should be one of <onnx|stablehlo>'), lines
  assert not (tmp_path / 'out').exists()
