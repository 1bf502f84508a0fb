r"""Time and peak memory of converting a published-size checkpoint folder (needs PyTorch to write the files).

    python -m benchmarks.convert_memory --dataset=ntu60_xsub --variant=1.0

Writes the five files of a randomly initialised model of the published size with ``torch.save`` (the published
layout), then converts them in a fresh process (no PyTorch imported there) and reports the process's peak
resident memory next to the size of the weights, as a markdown table.
"""

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
_PREFIX = {'penn_action': 'Penn', 'n_ucla': 'NUCLA', 'ntu60_xsub': 'NTU', 'ntu60_xview': 'NTU'}

_CONVERT = """
import json, resource, sys, time
sys.modules['torch'] = None  # Conversion must not need PyTorch.
started = time.time()
from cascadeformer_jax.checkpoints.convert import convert_folder
imported = time.time()
convert_folder(sys.argv[1], sys.argv[2])
done = time.time()
print(json.dumps({'import_s': imported - started, 'convert_s': done - imported,
                  'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_published_folder(dataset: str, variant: str, folder: pathlib.Path) -> int:
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top

  config = torch_reference.published_config(dataset, variant)
  prefix = _PREFIX[dataset]
  folder.mkdir(parents=True, exist_ok=True)
  classifier = torch_reference.Classifier(config)
  modules = {'pretrained': classifier.t1, 'finetuned_T1': classifier.t1, 'finetuned_T2': classifier.t2,
             'finetuned_cross_attn': classifier.cross_attn, 'finetuned_head': classifier.head}
  for role, module in modules.items():
    torch.save(module.state_dict(), folder / f'{prefix}_{role}.pt')
  return sum(p.numel() for p in classifier.parameters())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--dataset', default='ntu60_xsub', choices=sorted(_PREFIX))
  parser.add_argument('--variant', default='1.0', choices=('1.0', '1.1', '1.2'))
  parser.add_argument('--workdir', default=str(pathlib.Path(tempfile.gettempdir()) / 'cascadeformer_convert_benchmark'))
  parser.add_argument('--keep', action='store_true', help='keep the written files')
  args = parser.parse_args()
  workdir = pathlib.Path(args.workdir)
  shutil.rmtree(workdir, ignore_errors=True)
  started = time.time()
  classifier_parameters = write_published_folder(args.dataset, args.variant, workdir / 'published')
  write_s = time.time() - started
  files_bytes = sum(p.stat().st_size for p in (workdir / 'published').glob('*.pt'))
  result = subprocess.run([sys.executable, '-c', _CONVERT, str(workdir / 'published'), str(workdir / 'converted')],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=True)
  measured = json.loads(result.stdout.strip().splitlines()[-1])
  # A bare interpreter with the same imports, for the baseline memory of JAX/Orbax themselves.
  baseline = subprocess.run([sys.executable, '-c', 'import resource, cascadeformer_jax.convert; '
                             'print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)'],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True)
  baseline_mib = float(baseline.stdout.strip())
  classifier_mib = classifier_parameters * 4 / 2**20
  rows = [
      ('model', f'{args.dataset} {args.variant} (published size)'),
      ('classifier parameters', f'{classifier_parameters / 1e6:.2f} M ({classifier_mib:.0f} MiB float32)'),
      ('five .pt files', f'{files_bytes / 2**20:.0f} MiB (written in {write_s:.1f} s)'),
      ('conversion time', f'{measured["convert_s"]:.1f} s (+ {measured["import_s"]:.1f} s imports)'),
      ('peak RSS of the converting process', f'{measured["peak_rss_mib"]:.0f} MiB'),
      ('peak RSS after imports only', f'{baseline_mib:.0f} MiB'),
  ]
  print('| quantity | value |\n|---|---|')
  for name, value in rows:
    print(f'| {name} | {value} |')
  if not args.keep:
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
  main()
