"""The run environment: matmul precision, PRNG implementation, compilation cache and count, profiling range, banner.

Bottom layer: imports only JAX and the standard library, so that every entry point can set these up before the
first computation. Each ``apply_*`` function changes process-wide JAX settings and must run before the values it
affects are traced (matmul precision, PRNG) or compiled (cache).
"""

import contextlib
import dataclasses
import os
import pathlib
import shutil
import sys
from typing import Iterator, TextIO

import jax

# 'default': the backend's fastest float32 matmul (TF32 on Ampere/Hopper GPUs, one bfloat16 pass on TPUs, full
# float32 on CPUs); 'tensorfloat32': TF32 on GPUs that have it; 'highest': full float32 everywhere.
MATMUL_PRECISIONS = ('default', 'tensorfloat32', 'highest')
# threefry2x32 is JAX's default and splits/folds identically everywhere; the rbg kinds are faster on accelerators
# (and in dropout-heavy CPU steps) but draw different numbers, so results change with them.
PRNG_IMPLS = ('threefry2x32', 'rbg', 'unsafe_rbg')
COMPILATION_CACHE_OFF = 'off'
GPU_INSTALL_COMMAND = "pip install -e '.[cuda12]'  (or '.[cuda13]' with a CUDA 13 driver)"


def apply_matmul_precision(precision: str) -> None:
  """Sets JAX's default precision of float32 matmuls and convolutions (bfloat16 compute is model.dtype)."""
  if precision not in MATMUL_PRECISIONS:
    raise ValueError(f'config.matmul_precision must be one of {MATMUL_PRECISIONS}, got {precision!r}')
  jax.config.update('jax_default_matmul_precision', None if precision == 'default' else precision)


def apply_prng_impl(impl: str) -> None:
  """Sets the PRNG implementation of keys made from seeds from now on (parameter init, dropout, masks)."""
  if impl not in PRNG_IMPLS:
    raise ValueError(f'config.prng_impl must be one of {PRNG_IMPLS}, got {impl!r}')
  jax.config.update('jax_default_prng_impl', impl)


def default_compilation_cache_dir() -> pathlib.Path:
  """``$XDG_CACHE_HOME/cascadeformer_jax/xla``, else ``~/.cache/cascadeformer_jax/xla``."""
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return pathlib.Path(base) / 'cascadeformer_jax' / 'xla'


def setup_compilation_cache(directory: str = '', min_compile_seconds: float = 1.0) -> pathlib.Path | None:
  """Turns on JAX's persistent compilation cache so that a rerun loads compiled steps instead of recompiling.

  Args:
    directory: cache directory; '' = `default_compilation_cache_dir()`, 'off' = no persistent cache.
    min_compile_seconds: only programs that took at least this long to compile are stored.

  Returns:
    The cache directory, or None when turned off.
  """
  if directory == COMPILATION_CACHE_OFF:
    return None
  path = pathlib.Path(os.path.expanduser(directory)) if directory else default_compilation_cache_dir()
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise ValueError(f'config.compilation_cache_dir: cannot create {path} ({e.strerror}); pass another '
                     f"directory or '{COMPILATION_CACHE_OFF}'") from None
  jax.config.update('jax_compilation_cache_dir', str(path))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', float(min_compile_seconds))
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  return path


# JAX's monitoring events: a program obtained for a new input shape or function (compiled by XLA or loaded from the
# persistent compilation cache; JAX times both as the backend compile), and a load from that cache.
BACKEND_COMPILE_EVENT = '/jax/core/compile/backend_compile_duration'
CACHE_HIT_EVENT = '/jax/compilation_cache/cache_hits'


@dataclasses.dataclass
class CompilationCount:
  total: int = 0  # programs obtained: compiled, or loaded from the persistent compilation cache
  loaded: int = 0  # of which loaded from that cache

  @property
  def compiled(self) -> int:
    return self.total - self.loaded


@contextlib.contextmanager
def count_compilations() -> Iterator[CompilationCount]:
  """Counts the programs compiled (or loaded from the persistent cache) in the process while the block runs.

      with runtime.count_compilations() as count:
        ...
      assert count.total == 0
  """
  count = CompilationCount()

  def on_duration(event: str, duration_s: float, **kwargs) -> None:
    del duration_s, kwargs
    if event == BACKEND_COMPILE_EVENT:
      count.total += 1

  def on_event(event: str, **kwargs) -> None:
    del kwargs
    if event == CACHE_HIT_EVENT:
      count.loaded += 1

  jax.monitoring.register_event_duration_secs_listener(on_duration)
  jax.monitoring.register_event_listener(on_event)
  try:
    yield count
  finally:
    jax.monitoring.unregister_event_duration_listener(on_duration)
    jax.monitoring.unregister_event_listener(on_event)


@dataclasses.dataclass(frozen=True)
class ProfileRange:
  """Steps ``start`` (inclusive) to ``stop`` (exclusive) of ``stage`` ('' = the first stage the run trains),
  counted from 0 like the stage's step counter before the step runs."""

  start: int
  stop: int
  stage: str = ''

  def check_within(self, total_steps: int, stage: str) -> None:
    if self.stop > total_steps:
      raise ValueError(f'config.profile_steps={self.start}:{self.stop} is outside the {stage} stage, which has '
                       f'{total_steps} steps (0:{total_steps}); choose a range inside it')


def parse_profile_steps(spec: str, stages: tuple[str, ...] = ('pretrain', 'finetune')) -> ProfileRange | None:
  """Parses ``config.profile_steps``: '' (off), 'a:b' or '<stage>:a:b' with 0 <= a < b."""
  if not spec:
    return None
  parts = spec.split(':')
  stage = ''
  if len(parts) == 3:
    stage, parts = parts[0], parts[1:]
    if stage not in stages:
      raise ValueError(f'config.profile_steps={spec!r}: unknown stage {stage!r}; expected one of {stages}')
  error = (f"config.profile_steps={spec!r} must be 'a:b' or '<stage>:a:b' with integer steps 0 <= a < b "
           "(e.g. '10:15')")
  if len(parts) != 2:
    raise ValueError(error)
  try:
    start, stop = int(parts[0]), int(parts[1])
  except ValueError:
    raise ValueError(error) from None
  if not 0 <= start < stop:
    raise ValueError(error)
  return ProfileRange(start, stop, stage)


def nvidia_gpu_visible() -> bool:
  """Whether the machine shows an NVIDIA driver (``/proc/driver/nvidia``) or ``nvidia-smi``."""
  return os.path.isdir('/proc/driver/nvidia') or shutil.which('nvidia-smi') is not None


def describe_devices() -> dict[str, object]:
  """Backend, device kind and counts of this JAX job."""
  devices = jax.devices()
  return {
      'backend': jax.default_backend(),
      'device_kind': devices[0].device_kind,
      'device_count': len(devices),
      'local_device_count': jax.local_device_count(),
      'process_count': jax.process_count(),
      'process_index': jax.process_index(),
      'jax_version': jax.__version__,
  }


def startup_banner(extra: dict[str, object] | None = None, gpu_visible: bool | None = None) -> tuple[str, str | None]:
  """(one-line description of the devices, a warning or None).

  The warning is for machines with NVIDIA GPUs where JAX runs on the CPU (a CPU-only jaxlib, or a CUDA plugin
  that does not match it), the case in which training silently takes hours instead of minutes.
  """
  info = describe_devices()
  line = (f"devices: {info['device_count']} x {info['device_kind']} ({info['backend']}), "
          f"{info['process_count']} process(es), {info['local_device_count']} local; jax {info['jax_version']}")
  if extra:
    line += '; ' + ', '.join(f'{k} {v}' for k, v in extra.items())
  gpu_visible = nvidia_gpu_visible() if gpu_visible is None else gpu_visible
  warning = None
  cpu_requested = os.environ.get('JAX_PLATFORMS', '').strip().lower() == 'cpu'
  if gpu_visible and info['backend'] == 'cpu' and not cpu_requested:
    warning = ('warning: this machine has NVIDIA GPUs but JAX runs on the CPU (no CUDA-enabled jaxlib, or '
               f'a CUDA plugin that does not match it). Install the CUDA build: {GPU_INSTALL_COMMAND}')
  return line, warning


def print_banner(extra: dict[str, object] | None = None, stream: TextIO | None = None) -> None:
  """Prints the banner (and the GPU warning) once per job, from process 0."""
  if jax.process_index() != 0:
    return
  stream = stream or sys.stdout
  line, warning = startup_banner(extra)
  print(line, file=stream, flush=True)
  if warning:
    print(warning, file=sys.stderr, flush=True)
