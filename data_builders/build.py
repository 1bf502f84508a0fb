"""Builds a dataset without TensorFlow (the `tfds build` CLI needs it).

  python -m data_builders.build <name> [--config=CONFIG] --manual_dir=RAW_DIR --data_dir=DATA_DIR
      [--source=auto|raw|npz] [--overwrite] [--quiet]

<name>: penn_action, n_ucla, ntu_rgbd60 (--config=xsub|xview), ntu_rgbd120 (--config=xsub|xset),
synthetic_actions (--config=default|tiny; no --manual_dir), skeleton_folder (--manual_dir=your folder of clips;
named after its dataset.json and its content's fingerprint). Progress goes to stderr; the last lines give the
dataset folder, split sizes, time and size on disk.
"""

import argparse
import logging
import os
import sys
import time

from etils import epath
import tensorflow_datasets as tfds

from cascadeformer_jax.run import cli
from cascadeformer_jax.run import io_checks
import data_builders
from data_builders import _common


def directory_size(path: epath.PathLike) -> int:
  """Total bytes of the files in the (flat) dataset folder `path`."""
  return sum(os.path.getsize(os.fspath(f)) for f in epath.Path(path).iterdir() if f.is_file())


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m data_builders.build', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('name', choices=sorted(data_builders.BUILDERS))
  parser.add_argument('--config', default=None, help='builder config (default: the first one)')
  parser.add_argument('--manual_dir', default=None, help='folder with the raw files')
  parser.add_argument('--data_dir', required=True, help='TFDS data dir to write to')
  parser.add_argument('--source', default=None, choices=('auto', 'raw', 'npz'),
                      help='ntu_rgbd60 / ntu_rgbd120 only: build from .skeleton files (raw) or CTR-GCN npz')
  parser.add_argument('--overwrite', action='store_true', help='rebuild even if the dataset exists')
  parser.add_argument('--quiet', action='store_true', help='only warnings and the summary')
  args = parser.parse_args(argv)

  builder_class = data_builders.BUILDERS[args.name]
  if args.config is not None and args.config not in [c.name for c in builder_class.BUILDER_CONFIGS]:
    parser.error(f'{args.name} has no config {args.config!r}; choose from '
                 f'{[c.name for c in builder_class.BUILDER_CONFIGS]}')
  builder_kwargs = {}
  if args.source is not None:
    if args.name not in ('ntu_rgbd60', 'ntu_rgbd120'):
      parser.error('--source applies to ntu_rgbd60 and ntu_rgbd120 only')
    builder_kwargs['source'] = args.source

  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(message)s', '%H:%M:%S'))
  saved = (_common.logger.level, _common.logger.propagate)
  _common.logger.addHandler(handler)
  _common.logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
  _common.logger.propagate = False
  tfds.disable_progress_bar()  # our log lines report progress; tqdm bars garble non-terminal logs

  start = time.monotonic()
  try:
    builder = None

    def build():
      nonlocal builder
      io_checks.check_writable(args.data_dir, 'data dir')
      try:
        builder = data_builders.build_dataset(args.name, args.data_dir, manual_dir=args.manual_dir,
                                              config=args.config, overwrite=args.overwrite, verbose=not args.quiet,
                                              **builder_kwargs)
      except (data_builders.DatasetFormatError, ValueError) as e:
        raise ValueError(f'building {args.name} failed: {e}') from e

    code = cli.call(build, cli.debug_requested(argv if argv is not None else sys.argv))
    if code:
      return code
  finally:
    _common.logger.removeHandler(handler)
    _common.logger.setLevel(saved[0])
    _common.logger.propagate = saved[1]
  elapsed = time.monotonic() - start
  splits = ', '.join(f'{name} {info.num_examples}' for name, info in sorted(builder.info.splits.items()))
  print(f'{builder.info.full_name}: {splits} examples in {builder.data_path} '
        f'({directory_size(builder.data_path) / 2**20:.2f} MiB, {elapsed:.1f} s)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
