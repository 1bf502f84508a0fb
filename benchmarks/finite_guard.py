"""Finite-update guard benchmark: the conditional ('cond') against the select ('select') form of the step.

The training steps skip an update whose loss or gradients are not finite (train/steps.py). 'cond' wraps the
update in a conditional on a device value; 'select' always computes the update and keeps the old values with
an elementwise select (no conditional, so no device-to-host round trip on GPUs). This times both forms of the
fine-tuning step on the default backend, interleaved, prints a markdown table and the largest difference between
the states both forms end in (they compute the same update; XLA may fuse it differently).

  python -m benchmarks.finite_guard                               # a small model, B=16, T=32
  python -m benchmarks.finite_guard --d_model=256 --layers=4 --batch=32 --frames=64    # N-UCLA-sized
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from benchmarks import common
from cascadeformer_jax.config.configuration import stage_config
from cascadeformer_jax.models import CascadeClassifier
from cascadeformer_jax.models import ModelConfig
from cascadeformer_jax.train import optim
from cascadeformer_jax.train import steps as steps_lib


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--d_model', type=int, default=64)
  parser.add_argument('--layers', type=int, default=2)
  parser.add_argument('--batch', type=int, default=16)
  parser.add_argument('--frames', type=int, default=32)
  parser.add_argument('--blocks', type=int, default=6)
  parser.add_argument('--steps_per_block', type=int, default=5)
  args = parser.parse_args(argv)

  model_config = ModelConfig(variant='1.0', layout='ntu', num_joints=25, coords=3, d_model=args.d_model,
                             num_heads=8, num_layers=args.layers, num_classes=60, pos_len=args.frames,
                             ffn_dim=4 * args.d_model)
  model = CascadeClassifier(model_config)
  rng = np.random.default_rng(0)
  batch = {'skeleton': rng.standard_normal((args.batch, args.frames, 25, 3)).astype(np.float32),
           'label': rng.integers(0, 60, args.batch).astype(np.int32)}
  params = jax.jit(model.init)(jax.random.key(0), batch['skeleton'][:1])['params']
  stage = stage_config(optimizer='adamw', lr=1e-4, weight_decay=1e-2)
  optimizer, schedule = optim.make_optimizer(stage, 100, params)

  runners, compile_s, states = {}, {}, {}
  for guard in ('cond', 'select'):
    step = jax.jit(steps_lib.make_finetune_step(model, optimizer, schedule, stage, finite_guard=guard),
                   donate_argnums=(0,))
    state = jax.jit(lambda p: steps_lib.init_state(p, optimizer))(params)
    started = time.perf_counter()
    compiled = step.lower(state, batch, jax.random.key(1)).compile()
    compile_s[guard] = time.perf_counter() - started
    states[guard] = compiled(state, batch, jax.random.key(1))[0]  # Warm-up.

    def run(guard=guard, compiled=compiled):
      states[guard], metrics = compiled(states[guard], batch, jax.random.key(1))
      jax.block_until_ready(metrics['loss'])

    runners[guard] = run
  times = common.interleaved_times(runners, args.blocks, args.steps_per_block)
  # Both forms ran the same steps on the same batch: their states agree up to how XLA fused the update.
  pairs = list(zip(jax.tree.leaves(jax.device_get(states['cond'])), jax.tree.leaves(jax.device_get(states['select']))))
  identical = all(np.array_equal(a, b) for a, b in pairs)
  difference = max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))
                   for a, b in pairs)
  info = common.machine_info()
  rows = []
  for guard, values in times.items():
    summary = common.summarize(values)
    rows.append({'guard': guard, 'compile_s': compile_s[guard], 'median_ms': summary['median_ms'],
                 'iqr_ms': summary['q3_ms'] - summary['q1_ms'], 'steps': summary['count']})
  print(f"{info['date']}  {info['host_cpu']} ({info['cpu_count']} cores), backend {info['jax_backend']} "
        f"({info['jax_device']}), jax {info['jax']}, load {info['load_average_1min']:.1f}")
  print(f'fine-tuning step, d_model={args.d_model}, {args.layers}+{args.layers} layers, B={args.batch}, '
        f'T={args.frames}')
  print(common.markdown_table(rows, (('guard', 'guard'), ('compile_s', 'compile s'), ('median_ms', 'ms/step'),
                                     ('iqr_ms', 'IQR ms'), ('steps', 'steps'))))
  print(f'final states of both forms bit-identical: {identical} (largest difference {difference:.3g})')


if __name__ == '__main__':
  main()
