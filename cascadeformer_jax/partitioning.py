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


def maybe_initialize_distributed(coordinator_address: str = '', num_processes: int = 0,
                                 process_id: int = -1) -> None:
  """Joins a multi-process JAX job when one is configured (arguments or JAX_COORDINATOR_ADDRESS etc.).

  On one machine several processes can form a job over loopback (CPU collectives through gloo).
  """
  address = coordinator_address or os.environ.get('JAX_COORDINATOR_ADDRESS', '')
  if not address:
    return
  num_processes = num_processes or int(os.environ.get('JAX_NUM_PROCESSES', '1'))
  process_id = process_id if process_id >= 0 else int(os.environ.get('JAX_PROCESS_ID', '0'))
  # Collectives between CPU devices of different processes (no effect on accelerator collectives).
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address=address, num_processes=num_processes, process_id=process_id)


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
  devices = mesh.devices.size
  if global_batch_size % devices:
    raise ValueError(f'the global batch size {global_batch_size} does not divide over {devices} devices '
                     f'({jax.process_count()} process(es)); use a multiple of {devices}')


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


def replicate(tree: Any, mesh: Mesh) -> Any:
  sharding = replicated(mesh)
  return jax.tree.map(lambda x: jax.device_put(x, sharding), tree)
