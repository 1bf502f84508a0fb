"""Command-line entry points that explain themselves: expected mistakes end in one `error: ...` line.

`run(main)` replaces `absl.app.run(main)`. It parses the flags itself so that a missing or broken config file, an
unknown or misspelt `--config.<field>` override (with a "did you mean"), a value of the wrong type and an unknown
flag each give one line and exit code 2; an error raised by ``main`` gives one line and exit code 1; Ctrl-C exits
with 130 and SIGTERM with 143. Tracebacks appear only with `--config.debug=True` or $CASCADEFORMER_DEBUG=1.
A command that passes `config_help` takes `--config_help`, which prints the config schema and exits.

A process whose work failed exits even if a library left threads waiting behind it (Orbax save threads wait up to
its timeout for signals that a failed step never sends).
"""

import io
import json
import os
import re
import signal
import sys
import threading
import traceback
from typing import Any, Callable, Sequence

from absl import app
from absl import flags
from ml_collections import config_flags
# is_config_flag is public but not re-exported by the package.
from ml_collections.config_flags import config_flags as config_flag_types

from cascadeformer_jax.run import io_checks
from cascadeformer_jax.run import interrupts

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = interrupts.EXIT_INTERRUPTED  # 130
EXIT_TERMINATED = interrupts.EXIT_TERMINATED  # 143

_DID_YOU_MEAN = re.compile(r'Did you mean "([^"]+)" instead of "([^"]+)"\?')


class UsageError(ValueError):
  """A command line that cannot work (exit code 2)."""


def debug_requested(argv: Sequence[str]) -> bool:
  """The debug switch: $CASCADEFORMER_DEBUG, or --config.debug / --config.debug=True on the command line."""
  if io_checks.debug_enabled():
    return True
  return any(arg in ('--config.debug', '--config.debug=True', '--config.debug=true', '--config.debug=1')
             for arg in argv)


def _root_cause(error: BaseException) -> BaseException:
  seen = set()
  while id(error) not in seen:
    seen.add(id(error))
    nested = getattr(error, '_error', None) or error.__cause__
    if not isinstance(nested, BaseException):
      return error
    error = nested
  return error


def _config_file_problem(name: str, flag: Any) -> str | None:
  """Why the config file flag ``name`` did not load (None if it did)."""
  try:
    value = flag.value
    if value is not None:
      value.get('mode')  # A config file that failed to load raises on first use.
    return None
  except Exception as e:  # pylint: disable=broad-exception-caught
    filename = _config_filename(flag)
    path = filename if os.path.exists(filename) else filename.split(':', 1)[0]
    if path and not os.path.isfile(path):
      return f'--{name}: config file {path} does not exist'
    cause = _root_cause(e)
    if isinstance(cause, SyntaxError):
      return f'--{name}: config file {path} line {cause.lineno}: {cause.msg}'
    first_line = (str(cause).strip().splitlines() or [''])[0]
    return f'--{name}: config file {path} could not be loaded: {type(cause).__name__}: {first_line}'


def _failing_config_file(error: BaseException, argv: Sequence[str]) -> str | None:
  """'--<flag>: config file <path> line <n>: <problem>' if ``error`` (or an error it wraps, as ml_collections wraps
  a ValueError or TypeError of ``get_config``) came from executing a config file, or the file has no get_config."""
  files = {}
  for arg in argv[1:]:
    name, _, value = arg.lstrip('-').partition('=')
    if value and '.' not in name and value.split(':', 1)[0].endswith('.py'):
      files[os.path.realpath(value.split(':', 1)[0])] = (name, value.split(':', 1)[0])
  for cause in _chain(error):
    if isinstance(cause, SyntaxError) and cause.filename and os.path.realpath(cause.filename) in files:
      name, path = files[os.path.realpath(cause.filename)]
      return f'--{name}: config file {path} line {cause.lineno}: {cause.msg}'
    module_file = getattr(getattr(cause, 'obj', None), '__file__', None)
    if (isinstance(cause, AttributeError) and getattr(cause, 'name', None) == 'get_config' and module_file
        and os.path.realpath(module_file) in files):
      name, path = files[os.path.realpath(module_file)]
      return f'--{name}: config file {path} defines no get_config() (a config file returns its config from it)'
    for frame, line in reversed(list(traceback.walk_tb(cause.__traceback__))):
      key = os.path.realpath(frame.f_code.co_filename)
      if key in files:
        name, path = files[key]
        first_line = (str(cause).strip().splitlines() or [''])[0]
        return f'--{name}: config file {path} line {line} raised {type(cause).__name__}: {first_line}'
  return None


def _chain(error: BaseException) -> list[BaseException]:
  """``error`` and the errors it was raised from or while handling, outermost first."""
  chain = []
  while error is not None and all(error is not seen for seen in chain):
    chain.append(error)
    error = error.__cause__ or error.__context__
  return chain


def _override_problem(error: BaseException, argv: Sequence[str]) -> str:
  """One line for an exception raised while applying a --config.<field> override."""
  text = str(error).strip().strip('\'"').replace('\\n', '\n').replace("\\'", "'")
  match = _DID_YOU_MEAN.search(text)
  key = text.splitlines()[0].strip('\'"') if text else ''
  offending = next((arg for arg in argv[1:] if arg.startswith('--') and key and
                    re.search(rf'[.]{re.escape(key)}(?:[.=]|$)', arg.split('=', 1)[0] + '=')), None)
  where = offending.split('=', 1)[0] if offending else 'a --config override'
  if isinstance(error, (AttributeError, KeyError)):
    line = f'{where}: the config has no field {key!r}'
    if match:
      line += f'; did you mean {match.group(1)!r}?'
    return line
  return f'{where}: {text.splitlines()[0] if text else type(error).__name__}'


def json_or_name(flag: str, value: str | None) -> Any:
  """A flag that takes a name or a JSON object (a value starting with '{'), e.g. --layout and --mapping."""
  if value is None or not value.lstrip().startswith('{'):
    return value
  try:
    return json.loads(value)
  except json.JSONDecodeError as e:
    raise ValueError(f'{flag}: invalid JSON ({e})') from None


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing with one-line errors; exits with code 2 on a bad command line."""
  debug = debug_requested(argv)
  try:
    remaining = flags.FLAGS(argv)
  except flags.Error as e:
    if debug:
      raise
    config_file = _failing_config_file(e, argv)
    if config_file:
      _fail(config_file, EXIT_USAGE)
    _fail(f'{e}'.replace('flag --', '--'), EXIT_USAGE, hint='pass --helpshort to see the flags')
  except Exception as e:  # pylint: disable=broad-exception-caught
    if debug:
      raise
    config_file = _failing_config_file(e, argv)
    if config_file:
      _fail(config_file, EXIT_USAGE)
    _fail(_override_problem(e, argv), EXIT_USAGE)
  for name, flag in _config_flags():
    problem = _config_file_problem(name, flag)
    if problem:
      if debug:
        flag.value.get('mode')
      _fail(problem, EXIT_USAGE)
  return remaining


def _config_filename(flag: Any) -> str:
  """The config file argument of a config flag ('' if none was parsed)."""
  try:
    return config_flags.get_config_filename(flag) or ''
  except config_flag_types.UnparsedFlagError:
    return ''


def _config_flags() -> list[tuple[str, Any]]:
  """The config flags defined, each under its own name (not its short name)."""
  return [(name, flags.FLAGS[name]) for name in flags.FLAGS
          if config_flag_types.is_config_flag(flags.FLAGS[name]) and name == flags.FLAGS[name].name]


def _fail(message: str, code: int, hint: str = '') -> None:
  print(f'error: {message}' + (f' ({hint})' if hint else ''), file=sys.stderr)
  _exit(code)


def _exit(code: int) -> None:
  """Exits with ``code``; without waiting for library threads that a failed operation left behind."""
  sys.stdout.flush()
  sys.stderr.flush()
  waiting = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
  if code and waiting:
    os._exit(code)  # pylint: disable=protected-access
  sys.exit(code)


def error_line(error: BaseException) -> str:
  """The one-line (or few-line) explanation of an error raised by the work of a command."""
  if isinstance(error, FileNotFoundError) and error.filename:
    return f'{error.filename}: {error.strerror or "does not exist"}'
  if isinstance(error, OSError) and error.strerror:
    filename = error.filename or _file_being_written(error)
    where = f'{filename}: ' if filename else ''
    return f'{where}{error.strerror}'
  text = str(error).strip()
  return text or type(error).__name__


def _file_being_written(error: OSError) -> str | None:
  """The innermost open file of the frames that ``error`` came through: Python reports a write() or close() that
  failed (a full disk) without the file's name."""
  for frame, _ in reversed(list(traceback.walk_tb(error.__traceback__))):
    for value in frame.f_locals.values():
      name = getattr(value, 'name', None) if isinstance(value, io.IOBase) else None
      if isinstance(name, (str, bytes, os.PathLike)):
        return os.fsdecode(name)
  return None


# Errors a user can cause and fix: shown as their message alone. Others also name their type.
EXPECTED_ERRORS = (ValueError, OSError, io_checks.WriteError, UsageError)


def call(work: Callable[[], int | None], debug: bool, expected: tuple[type[BaseException], ...] = ()) -> int:
  """Runs ``work()`` and returns its exit code; errors become one line on stderr (tracebacks only if ``debug``)."""
  expected = EXPECTED_ERRORS + tuple(expected)
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, interrupts.raise_terminated)
  try:
    return int(work() or 0)
  except interrupts.Interrupted as e:
    print(str(e), file=sys.stderr)
    return e.exit_code
  except KeyboardInterrupt:
    print('interrupted', file=sys.stderr)
    return EXIT_INTERRUPTED
  except interrupts.Terminated:
    print('terminated', file=sys.stderr)
    return EXIT_TERMINATED
  except SystemExit:
    raise
  except app.UsageError as e:
    print(f'error: {e}', file=sys.stderr)
    return EXIT_USAGE
  except Exception as e:  # pylint: disable=broad-exception-caught
    if debug:
      traceback.print_exc()
      return EXIT_ERROR
    if isinstance(e, expected):
      print(f'error: {error_line(e)}', file=sys.stderr)
      return EXIT_USAGE if isinstance(e, UsageError) else EXIT_ERROR
    print(f'error: {type(e).__name__}: {error_line(e)} (set {io_checks.DEBUG_ENVIRONMENT_VARIABLE}=1 for the '
          'traceback)', file=sys.stderr)
    return EXIT_ERROR


def _asks_for(flag: str, argv: Sequence[str]) -> bool:
  """Whether ``argv`` sets the boolean flag ``flag`` (``--flag`` or ``--flag=true``)."""
  return any(arg in (f'--{flag}', f'--{flag}=true', f'--{flag}=True', f'--{flag}=1') for arg in argv[1:])


CONFIG_HELP_FLAG = 'config_help'


def run(main: Callable[[list[str]], int | None], expected: tuple[type[BaseException], ...] = (),
        config_help: Callable[[], str] | None = None) -> None:
  """Runs an absl ``main(argv)`` with one-line errors (see the module docstring); never returns.

  With ``config_help``, the command takes ``--config_help``: it prints ``config_help()`` and exits 0 before any
  other flag is read (so without the flags a run requires).
  """
  if config_help is not None:
    if CONFIG_HELP_FLAG not in flags.FLAGS:
      # Listed by --help with the flags of the command itself.
      flags.DEFINE_bool(CONFIG_HELP_FLAG, False, 'Print every field of the experiment config (default, allowed '
                        'values, recipe scope, description) and exit.', module_name=sys.argv[0])
    if _asks_for(CONFIG_HELP_FLAG, sys.argv):
      print(config_help())
      _exit(0)

  def guarded(argv: list[str]) -> None:
    _exit(call(lambda: main(argv), debug_requested(sys.argv), expected))

  app.run(guarded, flags_parser=parse_flags)
