r"""Exports a trained or converted classifier for deployment: ONNX (ONNX Runtime and other runtimes) or StableHLO.

    python -m cascadeformer_jax.export --init_from=<model dir | work dir | hf:folder> --format=onnx --output=DIR

DIR is new (or empty) and gets the model file (model.onnx, or model.stablehlo: a serialized `jax.export`),
preprocessing.json, classes.json, export.json and a README that says how to prepare inputs with NumPy alone
(`cascadeformer_jax.data.preprocessing.prepare_clip`) and how to run the model. The model brings its own
preprocessing and class names; `--config` is needed only for a model directory converted before they were stored.
Both formats need the optional extra 'export' (pip install 'cascadeformer-jax[export]').

Before anything is written the exported file is run on random clips and compared with the JAX model; the folder
appears only when it is complete (cascadeformer_jax/deploy/export.py).
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from cascadeformer_jax.run import cli

FORMATS = ('onnx', 'stablehlo')

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file: only for a model that does not '
                                          'store its preprocessing; otherwise it must agree with the model.')
_INIT_FROM = flags.DEFINE_string('init_from', None, 'Model directory, training work directory or hf:<folder>.')
_FORMAT = flags.DEFINE_enum('format', 'onnx', FORMATS, 'onnx: a .onnx graph (opset 23); stablehlo: a serialized '
                            'jax.export (StableHLO with symbolic batch).')
_OUTPUT = flags.DEFINE_string('output', None, 'The export folder to create (new or empty).')
flags.mark_flags_as_required(['init_from', 'output'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from cascadeformer_jax.config import configuration  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.deploy import export  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.run import runtime  # pylint: disable=g-import-not-at-top

  configuration.quiet_logs()
  export.check_request(_FORMAT.value, _OUTPUT.value)  # Before the model is loaded.
  config = _CONFIG.value
  model_config = None
  if config is not None:
    runtime.apply_matmul_precision(config.get('matmul_precision', 'default'))
    configuration.resolve_dataset(config)
    model_config = configuration.model_config(config)
  predictor = export.load_model(_INIT_FROM.value, config, model_config)
  result = export.export(predictor, _FORMAT.value, _OUTPUT.value, _INIT_FROM.value)
  print(f'wrote {result.output / result.model_file} ({result.model_bytes / 2**20:.1f} MiB, converted in '
        f'{result.convert_seconds:.1f} s) with preprocessing.json, classes.json, export.json and README.md; largest '
        f'logit difference to the JAX model on {export.CHECK_CLIPS} random clips: {result.max_abs_difference:.1e}')
  return 0


if __name__ == '__main__':
  cli.run(main)
