"""Checks that need a given number of (fake CPU) devices, run as a script by tests/run/test_partitioning.py.

    python -m tests.run.device_checks [placement] [save DIR] [restore DIR] ...

placement: meshes, parameter placement, batch checks and device prefetch; save: a stage checkpoint written on
this job's devices; restore: a checkpoint restored onto this job's mesh and compared with the saved values;
save_model / load_model: the same for a model directory.
The commands run in order; '<N> devices: ok' is the last line printed when every check passed.
"""

import pathlib
import sys

import jax
import numpy as np
import optax

from cascadeformer_jax.checkpoints import checkpoint_io
from cascadeformer_jax.train import prefetch
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.train import checkpointing
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.train import steps

MODEL = ModelConfig(variant='1.0', layout='ntu', num_joints=5, coords=3, d_model=8, num_heads=2, num_layers=1,
                    num_classes=4, pos_len=8, ffn_dim=8)


def _host_state() -> dict:
  rng = np.random.default_rng(0)
  params = {'dense': {'kernel': rng.standard_normal((5, 3)).astype(np.float32),
                      'bias': rng.standard_normal(3).astype(np.float32)},
            'embedding': rng.standard_normal((7, 2)).astype(np.float32)}
  return jax.device_get(steps.init_state(params, optax.adam(1e-3)))


def placement() -> None:
  mesh = partitioning.make_mesh()
  assert mesh.devices.size == 4, mesh
  host = {'w': np.arange(6, dtype=np.float32).reshape(2, 3), 'b': np.float32(2.0)}
  replicated = partitioning.replicate(host, mesh)
  assert replicated['w'].sharding == partitioning.replicated(mesh)
  assert len(replicated['w'].addressable_shards) == 4
  np.testing.assert_array_equal(np.asarray(replicated['w']), host['w'])
  # Arrays on one device, or sharded differently, are moved onto the target sharding.
  single = jax.device_put(host['w'], jax.devices()[2])
  assert partitioning.replicate({'w': single}, mesh)['w'].sharding == partitioning.replicated(mesh)
  sharded = partitioning.put(np.arange(8, dtype=np.float32), partitioning.batch_sharded(mesh))
  assert sharded.addressable_shards[1].data.shape == (2,)
  again = partitioning.replicate(sharded, mesh)
  np.testing.assert_array_equal(np.asarray(again), np.arange(8))
  # Already placed arrays are returned as they are.
  assert partitioning.replicate(replicated, mesh)['w'] is replicated['w']

  # Fewer devices: the first two.
  small = partitioning.make_mesh(2)
  assert list(small.devices.flat) == jax.devices()[:2]
  for bad, words in ((5, ['num_devices=5', '4 devices']), (-1, ['num_devices=-1'])):
    try:
      partitioning.make_mesh(bad)
    except ValueError as e:
      assert all(w in str(e) for w in words), e
    else:
      raise AssertionError(f'num_devices={bad} accepted')

  # A batch that does not divide over the devices names both numbers and the ways out.
  partitioning.check_batch_size(8, mesh)
  try:
    partitioning.check_batch_size(6, mesh, 'config.finetune.batch_size')
  except ValueError as e:
    message = str(e)
    for words in ('config.finetune.batch_size', ' 6 ', '4 devices', 'multiple of 4', '=8',
                  '--config.mesh.num_devices=3'):
      assert words in message, (words, message)
  else:
    raise AssertionError('batch 6 on 4 devices accepted')

  # The prefetcher hands out global batches sharded over the mesh, in order.
  batches = iter([{'x': np.full((4, 2), i, np.float32), 'valid': np.ones(4, bool)} for i in range(5)])
  with prefetch.DevicePrefetcher(batches, lambda batch: partitioning.global_batch(batch, mesh)) as it:
    got = list(it)
  assert [int(b['x'][0, 0]) for b in got] == list(range(5))
  assert got[0]['x'].sharding == got[0]['valid'].sharding == partitioning.batch_sharded(mesh)


def save(directory: str) -> None:
  mesh = partitioning.make_mesh()
  state = partitioning.replicate(_host_state(), mesh)
  checkpointer = checkpointing.StageCheckpointer(pathlib.Path(directory))
  checkpointer.save(3, state, {'step': 3}, {'stage': 'finetune', 'model': MODEL.to_dict(), 'step': 3})
  checkpointer.close()


def restore(directory: str) -> None:
  mesh = partitioning.make_mesh()
  expected = _host_state()
  target = checkpointing.abstract_like(partitioning.replicate(expected, mesh))  # as the trainer restores
  checkpointer = checkpointing.StageCheckpointer(pathlib.Path(directory))
  state, data_state, meta = checkpointer.restore(target, MODEL, 'finetune')
  checkpointer.close()
  assert data_state == {'step': 3} and meta['step'] == 3
  for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(state), jax.tree.leaves(expected)):
    assert got.sharding == partitioning.replicated(mesh), (path, got.sharding)
    np.testing.assert_array_equal(np.asarray(got), want, err_msg=jax.tree_util.keystr(path))
  assert type(state['opt_state'][0]).__name__ == 'ScaleByAdamState'


def _model_params() -> dict:
  abstract = checkpoint_io.abstract_params(checkpoint_io.CLASSIFIER, MODEL)
  leaves, treedef = jax.tree.flatten(abstract)
  rng = np.random.default_rng(1)
  return jax.tree.unflatten(treedef, [rng.standard_normal(x.shape).astype(x.dtype) for x in leaves])


def save_model(directory: str) -> None:
  """A model directory written from parameters replicated over this job's devices (as a conversion may)."""
  params = partitioning.replicate(_model_params(), partitioning.make_mesh())
  checkpoint_io.save_model_dir(directory, MODEL, {checkpoint_io.CLASSIFIER: params})


def load_model(directory: str) -> None:
  _, params = checkpoint_io.load_model_dir(directory, checkpoint_io.CLASSIFIER)
  for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(_model_params())):
    assert got.sharding == jax.sharding.SingleDeviceSharding(jax.devices()[0]), (path, got.sharding)
    np.testing.assert_array_equal(np.asarray(got), want, err_msg=jax.tree_util.keystr(path))
  mesh = partitioning.make_mesh()
  _, params = checkpoint_io.load_model_dir(directory, checkpoint_io.CLASSIFIER,
                                           sharding=partitioning.replicated(mesh))
  assert all(x.sharding == partitioning.replicated(mesh) for x in jax.tree.leaves(params))


def main(argv) -> None:
  commands = {'placement': (placement, 0), 'save': (save, 1), 'restore': (restore, 1),
              'save_model': (save_model, 1), 'load_model': (load_model, 1)}
  arguments = argv[1:]
  while arguments:
    if arguments[0] not in commands:
      raise SystemExit(f'unknown command {arguments[0]}')
    function, count = commands[arguments[0]]
    function(*arguments[1:1 + count])
    arguments = arguments[1 + count:]
  print(f'{jax.device_count()} devices: ok')


if __name__ == '__main__':
  main(sys.argv)
