"""Several command lines of one CLI module in one Python process: the interpreter and JAX start once.

Each command line goes through the same flag parsing (`cli.parse_flags`) and error handling (`cli.call`) as
`cli.run`; its own stdout and stderr are captured separately, so a test still checks the one line of each case.
Flags are reset between the command lines. Output of C++ code and of log handlers goes to the process's stderr,
returned as `process_stderr`.
"""

import dataclasses
import json
import pathlib
import subprocess
import sys
import tempfile
from typing import Callable

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

_DRIVER = """
import contextlib, importlib, io, json, os, sys
from absl import flags
from cascadeformer_jax.run import cli

module_name, cases_file, results_file = sys.argv[1:]
module = importlib.import_module(module_name)
results = []
for argv in json.loads(open(cases_file).read()):
  argv = [module_name] + argv
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    flags.FLAGS.unparse_flags()
    try:
      remaining = cli.parse_flags(argv)
      code = cli.call(lambda: module.main(remaining), cli.debug_requested(argv))
    except SystemExit as e:
      code = e.code
  results.append(dict(returncode=code, stdout=out.getvalue(), stderr=err.getvalue()))
with open(results_file, 'w') as f:
  f.write(json.dumps(results))
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)  # as cli.run: no waiting for library threads that a failed case left behind
"""


@dataclasses.dataclass
class CaseResult:
  returncode: int
  stdout: str
  stderr: str


def run_in_one_process(module: str, command_lines: list[list[str]], timeout: float = 600,
                       run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                       **kwargs) -> tuple[list[CaseResult], str]:
  """Runs `python -m module *args` for each args in ``command_lines`` in one process, in order.

  ``run``: runs the process's command (e.g. in a prepared mount namespace) with the keyword arguments of
  `subprocess.run`. Returns the result of each command line and the stderr of the whole process.
  """
  with tempfile.TemporaryDirectory() as scratch:
    cases_file, results_file = pathlib.Path(scratch, 'cases.json'), pathlib.Path(scratch, 'results.json')
    cases_file.write_text(json.dumps([[str(arg) for arg in args] for args in command_lines]))
    process = run([sys.executable, '-c', _DRIVER, module, str(cases_file), str(results_file)],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert process.returncode == 0 and results_file.is_file(), process.stderr[-3000:]
    results = [CaseResult(**result) for result in json.loads(results_file.read_text())]
  return results, process.stderr
