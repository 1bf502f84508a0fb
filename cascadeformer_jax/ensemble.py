r"""Fuses the test scores of several trained streams (e.g. joint, bone, joint motion, bone motion) of one recipe.

    python -m cascadeformer_jax.ensemble --workdirs=runs/joint,runs/bone,runs/motion,runs/bone_motion \
        --weights=2,2,1,1 --output=ensemble.json
    python -m cascadeformer_jax.ensemble --workdirs=runs/joint,runs/bone --search_weights --output=ensemble.json

Each work dir must hold the `scores.npz` its test evaluation saved; all of them must have scored the same clips of
the same split of the same dataset. The fused score of a clip is sum_s weight_s * softmax(logits_s) (default weights
all 1). `--search_weights` instead picks the weights from the grid {0, 0.5, 1, 1.5, 2} on the hold-out scores
(`scores_holdout.npz`, saved by runs with --config.data.holdout_fraction > 0), never on test, and then reports the
test split with them; ties go to the weights nearest to equal, and a hold-out too small to tell the streams apart
(under 50 clips, or all streams within one clip) keeps equal weights with a warning. Writes the JSON to --output
and a markdown table next to it (same name, .md), and prints the table.
"""

import json
import os
import pathlib

from absl import app
from absl import flags

from cascadeformer_jax.run import cli
from cascadeformer_jax.run import io_checks

_WORKDIRS = flags.DEFINE_list('workdirs', None, 'Comma-separated work dirs, one per stream.')
_WEIGHTS = flags.DEFINE_list('weights', None, 'Comma-separated non-negative weights, one per work dir (default 1).')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON file to write; the markdown table goes next to it (.md).')
_SEARCH = flags.DEFINE_bool('search_weights', False, 'Choose the weights on the hold-out scores.')
flags.mark_flags_as_required(['workdirs', 'output'])


def _parse_weights(values: list[str] | None, count: int) -> list[float]:
  if values is None:
    return [1.0] * count
  weights = []
  for value in values:
    try:
      weights.append(float(value))
    except ValueError:
      raise ValueError(f'--weights: {value!r} is not a number') from None
  return weights


def _write_text(path: pathlib.Path, text: str) -> None:
  """Writes ``path`` whole or not at all (a temporary file renamed into place); a failure names the file."""
  staging = path.with_name(f'.{path.name}.tmp')
  try:
    with io_checks.checked_write('output file', path):
      staging.write_text(text)
      os.replace(staging, path)
  finally:
    staging.unlink(missing_ok=True)


def run(workdirs: list[str], weights: list[str] | None, output: str, search: bool) -> str:
  """Fuses, writes the JSON and markdown files and returns the markdown; raises ValueError on bad input and
  io_checks.WriteError when the output cannot be written."""
  from cascadeformer_jax.evaluate import ensemble  # pylint: disable=g-import-not-at-top

  if len(workdirs) < 2:
    raise ValueError(f'--workdirs: give at least two work dirs to fuse, got {len(workdirs)}')
  output_path = pathlib.Path(output)
  if output_path.suffix == '.md':
    raise ValueError(f'--output={output}: name the JSON file; the markdown goes next to it')
  if search and weights is not None:
    raise ValueError('pass either --weights or --search_weights, not both')
  io_checks.check_writable(output_path.parent, 'output folder')
  if not search:
    chosen = ensemble.check_weights(_parse_weights(weights, len(workdirs)), len(workdirs)).tolist()
  streams = [ensemble.load_workdir_scores(workdir) for workdir in workdirs]
  search_info = None
  if search:
    holdout = [ensemble.load_workdir_scores(workdir, 'holdout') for workdir in workdirs]
    chosen, holdout_top1, warning = ensemble.search_weights(holdout)
    search_info = {'split': holdout[0].split, 'count': int(len(holdout[0].labels)), 'top1': holdout_top1,
                   'grid': list(ensemble.SEARCH_GRID), 'warning': warning}
  results = ensemble.ensemble_results(streams, chosen, names=workdirs)
  if search_info:
    results['weight_search'] = search_info
  markdown = ensemble.markdown_report(results)
  with io_checks.checked_write('output folder', output_path.parent):
    output_path.parent.mkdir(parents=True, exist_ok=True)
  _write_text(output_path, json.dumps(results, indent=1) + '\n')
  _write_text(output_path.with_suffix('.md'), markdown)
  return markdown


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  print(run(_WORKDIRS.value, _WEIGHTS.value, _OUTPUT.value, _SEARCH.value), end='')
  return 0


if __name__ == '__main__':
  cli.run(main)
