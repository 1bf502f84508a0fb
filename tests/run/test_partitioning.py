"""Meshes, parameter placement, batch checks, distributed start-up and checkpoints across device counts."""

import os
import pathlib
import subprocess
import sys

import jax
import pytest

from cascadeformer_jax.run import partitioning

pytestmark = pytest.mark.cost(15)  # seconds on 2 cores, roughly: the suite starts long files first

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _device_check(devices: int, *args) -> str:
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}', JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-m', 'tests.run.device_checks', *map(str, args)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout.strip().splitlines()[-1]


def test_placement_and_checkpoints_across_device_counts(tmp_path):
  """Placement checks on 4 devices; checkpoints written on 1 device restore on 4 and the other way round; a
  model directory written from 4 devices loads on 1."""
  one, four, model = tmp_path / 'one', tmp_path / 'four', tmp_path / 'model'
  _device_check(1, 'save', one)
  assert _device_check(4, 'placement', 'restore', one, 'save', four, 'save_model', model) == '4 devices: ok'
  assert _device_check(1, 'restore', four, 'load_model', model) == '1 devices: ok'


_CLUSTER_VARIABLES = ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS', 'SLURM_PROCID', 'SLURM_LOCALID',
                      'SLURM_STEP_NUM_TASKS', 'OMPI_MCA_orte_hnp_uri', 'OMPI_COMM_WORLD_SIZE',
                      'JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID')


@pytest.fixture
def fake_distributed(monkeypatch):
  """Records jax.distributed.initialize calls instead of making them; clears cluster variables."""
  for name in _CLUSTER_VARIABLES:
    monkeypatch.delenv(name, raising=False)
  calls = []
  monkeypatch.setattr(partitioning.jax.distributed, 'is_initialized', lambda: False)
  monkeypatch.setattr(partitioning.jax.distributed, 'initialize', lambda **kwargs: calls.append(kwargs))
  real_update = jax.config.update
  monkeypatch.setattr(partitioning.jax.config, 'update', lambda name, value: (
      calls.append({'config': (name, value)}) if name == 'jax_cpu_collectives_implementation'
      else real_update(name, value)))
  return calls


def test_no_distributed_job_without_configuration(fake_distributed, monkeypatch):
  assert partitioning.maybe_initialize_distributed() is None
  # One SLURM task (a plain sbatch script) is not a job of several processes.
  monkeypatch.setenv('SLURM_JOB_ID', '7')
  monkeypatch.setenv('SLURM_STEP_NODELIST', 'node1')
  monkeypatch.setenv('SLURM_NTASKS', '1')
  monkeypatch.setenv('SLURM_PROCID', '0')
  monkeypatch.setenv('SLURM_LOCALID', '0')
  assert partitioning.maybe_initialize_distributed() is None
  assert not fake_distributed


def test_slurm_and_openmpi_jobs_are_detected(fake_distributed, monkeypatch):
  for name, value in (('SLURM_JOB_ID', '7'), ('SLURM_STEP_NODELIST', 'node[1-2]'), ('SLURM_NTASKS', '2'),
                      ('SLURM_PROCID', '1'), ('SLURM_LOCALID', '0')):
    monkeypatch.setenv(name, value)
  assert partitioning.maybe_initialize_distributed() == 'slurm'
  assert fake_distributed[-1] == {}  # JAX's own detection finds the coordinator and the process id.
  assert partitioning.maybe_initialize_distributed(auto=False) is None
  for name in _CLUSTER_VARIABLES:
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setenv('OMPI_MCA_orte_hnp_uri', '1531576320.0;tcp://10.0.0.1:34911')
  monkeypatch.setenv('OMPI_COMM_WORLD_SIZE', '4')
  assert partitioning.maybe_initialize_distributed() == 'openmpi'


def test_explicit_flags_win_over_environment(fake_distributed, monkeypatch):
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', '10.0.0.9:1234')
  monkeypatch.setenv('JAX_NUM_PROCESSES', '3')
  monkeypatch.setenv('JAX_PROCESS_ID', '2')
  assert partitioning.maybe_initialize_distributed() == 'explicit'
  assert fake_distributed[-1] == {'coordinator_address': '10.0.0.9:1234', 'num_processes': 3, 'process_id': 2}
  assert {'config': ('jax_cpu_collectives_implementation', 'gloo')} in fake_distributed
  partitioning.maybe_initialize_distributed('127.0.0.1:99', 2, 0)
  assert fake_distributed[-1] == {'coordinator_address': '127.0.0.1:99', 'num_processes': 2, 'process_id': 0}
  with pytest.raises(ValueError, match='process_id 5 is not in'):
    partitioning.maybe_initialize_distributed('127.0.0.1:99', 2, 5)


def test_batch_check_on_one_device():
  mesh = partitioning.make_mesh()
  partitioning.check_batch_size(3, mesh)
  with pytest.raises(ValueError, match='num_devices=2 but this job has 1 devices'):
    partitioning.make_mesh(2)
