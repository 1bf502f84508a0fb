"""A few pretraining and fine-tuning steps on a fixed global batch, on however many devices/processes exist.

Run as a script by tests/train/test_parallel.py: writes the final parameters of both stages to an .npz file.
    python -m tests.train.parallel_worker OUT.npz [COORDINATOR NUM_PROCESSES PROCESS_ID]
"""

import sys

import jax
import numpy as np

from cascadeformer_jax.config import configuration
from cascadeformer_jax.run import partitioning
from cascadeformer_jax.train import prefetch
from cascadeformer_jax.run import runtime
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import MaskedPretrainer
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.train import optim
from cascadeformer_jax.train import steps

GLOBAL_BATCH = 8
MODEL = ModelConfig(variant='1.1', layout='ntu', num_joints=5, coords=3, d_model=20, num_heads=4, num_layers=1,
                    num_classes=4, pos_len=16, ffn_dim=32)


def global_batch() -> dict[str, np.ndarray]:
  rng = np.random.default_rng(0)
  return {'skeleton': rng.standard_normal((GLOBAL_BATCH, 12, 5, 3)).astype(np.float32),
          'label': rng.integers(0, 4, GLOBAL_BATCH).astype(np.int32)}


def run_stage(module, make_step, stage, mesh, local_batch):
  replicated = partitioning.replicated(mesh)
  x = np.zeros((1, 12, 5, 3), np.float32)
  # Initialised on this process's first device, then copied from the host onto every device of the job.
  host_params = jax.device_get(jax.jit(lambda k: module.init(k, x)['params'])(jax.random.key(1)))
  params = partitioning.replicate(host_params, mesh)
  optimizer, schedule = optim.make_optimizer(stage, 10, params)
  state = jax.jit(lambda p: steps.init_state(p, optimizer), out_shardings=replicated)(params)
  step = jax.jit(make_step(module, optimizer, schedule, stage), donate_argnums=(0,),
                 in_shardings=(replicated, partitioning.batch_sharded(mesh), replicated),
                 out_shardings=(replicated, replicated))
  batches = prefetch.DevicePrefetcher(iter([local_batch] * 3), lambda batch: partitioning.global_batch(batch, mesh),
                                      size=2)
  for batch in batches:
    state, _ = step(state, batch, jax.random.key(2))
  batches.close()
  return jax.tree_util.tree_leaves_with_path(jax.device_get(state['params']))


def main(argv):
  runtime.setup_compilation_cache()  # as the trainer does: a rerun of the test loads the compiled steps
  if len(argv) > 2:
    partitioning.maybe_initialize_distributed(argv[2], int(argv[3]), int(argv[4]))
  mesh = partitioning.make_mesh()
  full = global_batch()
  local = GLOBAL_BATCH // jax.process_count()
  start = jax.process_index() * local
  local_batch = {k: v[start:start + local] for k, v in full.items()}
  stage = configuration.stage_config(optimizer='adamw', lr=1e-3, weight_decay=1e-2, mask_ratio=0.3)
  arrays = {}
  for name, module, make_step in (('pretrain', MaskedPretrainer(MODEL), steps.make_pretrain_step),
                                  ('finetune', CascadeClassifier(MODEL), steps.make_finetune_step)):
    for path, value in run_stage(module, make_step, stage, mesh, local_batch):
      arrays[f'{name}{jax.tree_util.keystr(path)}'] = np.asarray(value)
  arrays['device_count'] = np.asarray(jax.device_count())
  np.savez(argv[1], **arrays)


if __name__ == '__main__':
  main(sys.argv)
