r"""Trains and evaluates CascadeFormer.

    python -m cascadeformer_jax.main --config=configs/nucla_v1_1.py
        [--config.mode=train|pretrain|finetune|eval|probe|few_shot]
        [--config.workdir=workdirs/nucla_v1_1] [--config.finetune.lr=1e-4 ...]
    python -m cascadeformer_jax.main --config_help    # every config field: default, allowed values, scope

See the README for the work directory layout and the configs for the recipes.
"""

import os
import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from cascadeformer_jax.config import schema
from cascadeformer_jax.run import cli

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.mark_flags_as_required(['config'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  # Imported here so that --help and flag errors stay fast.
  from cascadeformer_jax.config import configuration  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.experiment import runner as experiment  # pylint: disable=g-import-not-at-top
  from cascadeformer_jax.run import partitioning  # pylint: disable=g-import-not-at-top

  configuration.quiet_logs()
  config = _CONFIG.value
  with config.unlocked():
    if not config.workdir:
      config_name = pathlib.Path(flags.FLAGS['config'].config_filename).stem
      if config.data.get('folder'):  # one work directory per folder dataset
        config_name += '_' + os.path.basename(os.path.normpath(config.data.folder))
      config.workdir = os.path.join('workdirs', config_name)
  distributed = config.distributed
  partitioning.maybe_initialize_distributed(distributed.coordinator_address, distributed.num_processes,
                                            distributed.process_id, distributed.get('auto_detect', True))
  summary = experiment.run(config)
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_index() != 0:  # One report per job.
    return 0
  if summary.get('complete'):
    print(f'already complete: {summary["workdir"]} holds the finished run of this recipe (pass '
          '--config.restart=True to train again, or --config.mode=eval to evaluate again)')
  if 'test' in summary:
    test = summary['test']
    line = f'test accuracy {test["accuracy"]:.4f} (top-5 {test["top5"]:.4f}) on {test["count"]} clips'
    if test.get('published_accuracy'):
      line += f'; published {test["published_accuracy"]:.4f}'
    print(line)
  if 'probe' in summary:
    probe = summary['probe']
    print(f'linear probe accuracy {probe["linear_probe_accuracy"]:.4f}, kNN (k={probe["knn_k"]}) accuracy '
          f'{probe["knn_accuracy"]:.4f} on {probe["num_test"]} clips')
  if 'few_shot' in summary:
    few_shot = summary['few_shot']
    print(', '.join(f'{shots}-shot accuracy {entry["mean"]:.4f} ± {entry["std"]:.4f}'
                    for shots, entry in few_shot['shots'].items()) + f' on {few_shot["num_queries"]} clips')
  print(f'work directory: {summary["workdir"]} ({summary["seconds"]:.0f} s)')
  return 0


if __name__ == '__main__':
  cli.run(main, config_help=schema.help_text)
