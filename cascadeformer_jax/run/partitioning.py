"""Data parallelism: one 'data' mesh axis over every device of every process.

The batch is sharded on 'data'; parameters and optimiser state are replicated. ``jax.jit`` with these
shardings is all the parallelism there is: XLA inserts the gradient all-reduce.
"""

import os
from typing import Any

import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

DATA_AXIS = 'data'


def _positive_int(text: str) -> int:
  try:
    return max(int(text), 1)
  except ValueError:
    return 1


def cluster_detected() -> str | None:
  """The cluster manager whose environment describes a multi-process job, or None.

  A SLURM step (``srun``) with several tasks, or an Open MPI launch (``mpirun``) with several ranks: in both
  cases ``jax.distributed.initialize()`` finds the coordinator, process count and process id by itself. A single
  task (``sbatch`` with one task, an interactive allocation) is not a multi-process job.
  """
  env = os.environ
  slurm_step = all(name in env for name in
                   ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS', 'SLURM_PROCID', 'SLURM_LOCALID'))
  if slurm_step and _positive_int(env['SLURM_NTASKS']) > 1:
    return 'slurm'
  if 'OMPI_MCA_orte_hnp_uri' in env and _positive_int(env.get('OMPI_COMM_WORLD_SIZE', '1')) > 1:
    return 'openmpi'
  return None


def maybe_initialize_distributed(coordinator_address: str = '', num_processes: int = 0,
                                 process_id: int = -1, auto: bool = True) -> str | None:
  """Joins a multi-process JAX job when one is configured; returns how it was found, or None.

  In order: the arguments (``--config.distributed.*``), the JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES /
  JAX_PROCESS_ID variables, then (with ``auto``) JAX's own detection of SLURM and Open MPI jobs. On one
  machine several processes can form a job over loopback (CPU collectives through gloo).
  """
  if jax.distributed.is_initialized():
    return 'initialized'
  address = coordinator_address or os.environ.get('JAX_COORDINATOR_ADDRESS', '')
  cluster = None if address else (cluster_detected() if auto else None)
  if not address and not cluster:
    return None
  # Collectives between CPU devices of different processes (no effect on accelerator collectives).
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if cluster:
    jax.distributed.initialize()
    return cluster
  num_processes = num_processes or int(os.environ.get('JAX_NUM_PROCESSES', '1'))
  process_id = process_id if process_id >= 0 else int(os.environ.get('JAX_PROCESS_ID', '0'))
  if not 0 <= process_id < num_processes:
    raise ValueError(f'distributed: process_id {process_id} is not in [0, num_processes={num_processes})')
  jax.distributed.initialize(coordinator_address=address, num_processes=num_processes, process_id=process_id)
  return 'explicit'


def select_devices(num_devices: int = 0) -> list[jax.Device]:
  """The devices of the mesh: all of them (``num_devices`` 0), or the first ``num_devices / processes`` of
  every process, so that every process feeds the same share of the batch."""
  devices = jax.devices()
  if not num_devices or num_devices == len(devices):
    return devices
  processes = jax.process_count()
  if num_devices < 0 or num_devices > len(devices):
    raise ValueError(f'config.mesh.num_devices={num_devices} but this job has {len(devices)} devices '
                     f'({jax.local_device_count()} per process, {processes} process(es)); use at most '
                     f'{len(devices)}, or 0 for all')
  if num_devices % processes:
    raise ValueError(f'config.mesh.num_devices={num_devices} does not divide over the {processes} processes; use '
                     f'a multiple of {processes}')
  per_process = num_devices // processes
  chosen = []
  for process in range(processes):
    chosen += [d for d in devices if d.process_index == process][:per_process]
  return chosen


def make_mesh(num_devices: int = 0) -> Mesh:
  """A 1-D 'data' mesh over all devices, or over ``num_devices`` of them (see `select_devices`)."""
  return Mesh(np.asarray(select_devices(num_devices)), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch_size: int, mesh: Mesh, field: str = 'batch_size') -> None:
  """Raises ValueError naming the batch, the device count and the ways out when the batch does not divide."""
  devices = mesh.devices.size
  if global_batch_size % devices == 0:
    return
  larger = -(-global_batch_size // devices) * devices
  divisors = [n for n in range(devices - 1, 0, -1)
              if global_batch_size % n == 0 and n % jax.process_count() == 0]
  fewer = f', or use {divisors[0]} devices with --config.mesh.num_devices={divisors[0]}' if divisors else ''
  raise ValueError(
      f'{field}: the global batch size {global_batch_size} does not divide over {devices} devices '
      f'({jax.process_count()} process(es)); set a multiple of {devices} (e.g. {field}={larger}, '
      f'{larger // devices} per device; the learning rate may need scaling){fewer}')


def global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles the process-local batches of all processes into global arrays sharded on 'data'."""
  sharding = batch_sharded(mesh)
  return {key: jax.make_array_from_process_local_data(sharding, np.asarray(value))
          for key, value in local_batch.items()}


def run_once(fn, *args, out_shardings=None) -> Any:
  """Jits and runs a function that runs once per run (initialisation), compiled without expensive XLA passes.

  Initialisers are dominated by random-number kernels whose optimisation takes seconds to compile on CPU
  and gains nothing for a single call.
  """
  lowered = jax.jit(fn, out_shardings=out_shardings).lower(*args)
  return lowered.compile(compiler_options={'xla_backend_optimization_level': 0})(*args)


def inference_compiler_options() -> dict[str, str] | None:
  """XLA options for forward-only (evaluation) functions.

  On CPU, XLA fuses each attention block into one YNNPACK kernel that is slower than separate matmuls: turning
  those fusions off made evaluation 1.1-1.8x faster (benchmarks/README.md). Training steps are faster with them.
  """
  if jax.default_backend() == 'cpu':
    return {'xla_cpu_experimental_ynn_fusion_type': ''}
  return None


def put(tree: Any, sharding: jax.sharding.Sharding | Any) -> Any:
  """Places a tree of host or device arrays onto ``sharding`` (one for all leaves, or a matching tree).

  Works when the sharding spans devices of other processes (multi-host), where ``jax.device_put`` of a host
  array cannot: every process passes the same full value and keeps the parts its devices hold. Arrays that
  already have the target sharding are kept as they are; other global arrays are resharded on the devices.
  """
  shardings = (jax.tree.map(lambda _: sharding, tree) if isinstance(sharding, jax.sharding.Sharding)
               else sharding)

  def place(x, target):
    if isinstance(x, jax.Array):
      if x.sharding == target:
        return x
      if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(place(jax.random.key_data(x), target), impl=jax.random.key_impl(x))
      if not x.is_fully_addressable:
        return jax.jit(lambda y: y, out_shardings=target)(x)
    host = np.asarray(x)
    if target.is_fully_addressable:
      return jax.device_put(host, target)
    return jax.make_array_from_callback(host.shape, target, lambda index: host[index])

  return jax.tree.map(place, tree, shardings)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Copies a tree (host arrays, or arrays on any devices) onto every device of the mesh."""
  return put(tree, replicated(mesh))


def host_copy(tree: Any) -> Any:
  """NumPy copies of a tree's arrays on every process, also of global arrays that span other processes' devices
  (replicated ones are read from a local device; sharded ones are gathered)."""

  def fetch(x):
    if not isinstance(x, jax.Array) or x.is_fully_addressable:
      return np.asarray(jax.device_get(x))
    if x.is_fully_replicated:
      return np.asarray(x.addressable_data(0))
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))

  return jax.tree.map(fetch, tree)

