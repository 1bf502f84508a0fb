"""Orbax checkpoints of a training stage: model state, data-iterator state and progress, saved together.

Layout of a stage directory (``<workdir>/<stage>/``)::

    checkpoints/<step>/{state,data,meta}   the last ``keep`` checkpoints (asynchronous saves)
    best/                                  model directory of the best validation epoch (if selection is on)
    final/                                 model directory written when the stage completes
"""

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from cascadeformer_jax.run import io_checks
from cascadeformer_jax.models import ModelConfig


class ResumeError(ValueError):
  """A work directory holds checkpoints that do not belong to this run's config."""


class StageCheckpointer:
  """Saves and restores ``{state, data-iterator state, meta}`` of one stage.

  Saves are asynchronous; a failed one raises io_checks.WriteError (naming the checkpoint and the reason) at the
  next `poll()`, `save()` or `wait()`, so call `poll()` after every training step.
  """

  def __init__(self, directory: pathlib.Path, keep: int = 2):
    self.directory = pathlib.Path(directory).absolute()
    options = ocp.CheckpointManagerOptions(max_to_keep=max(int(keep), 1), create=True)
    with io_checks.checked_write('checkpoint folder', self.directory):
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    self._watch = io_checks.AsyncSaveWatch(self._manager, self.directory)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, data_state: dict[str, Any], meta: dict[str, Any]) -> None:
    self._watch.poll()
    with io_checks.checked_write('checkpoint', self.directory / str(step)):
      self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state), meta=ocp.args.JsonSave(meta)),
                         force=True)
    self._watch.saved(step)

  def poll(self) -> None:
    """Raises io_checks.WriteError if an asynchronous save has failed (never waits for one in progress)."""
    self._watch.poll()

  def restore(self, abstract_state: Any, model_config: ModelConfig, stage: str,
              step: int | None = None) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Restores (state, data-iterator state, meta); checks that the model config is the stored one."""
    step = self.latest_step() if step is None else step
    meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
    stored_model = meta.get('model')
    if meta.get('stage') != stage or stored_model != model_config.to_dict():
      changed = sorted(k for k in model_config.to_dict() if (stored_model or {}).get(k) != model_config.to_dict()[k])
      raise ResumeError(
          f'{self.directory} holds {meta.get("stage")} checkpoints of a different model (fields {changed} '
          'differ); use another --config.workdir, or delete the directory to start over')
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored['state'], restored['data'], meta

  def wait(self) -> None:
    self._watch.wait()

  def close(self) -> None:
    try:
      self._watch.wait()
    finally:
      self._manager.close()


def abstract_like(tree: Any) -> Any:
  """Shape/dtype/sharding structs of a (sharded) tree, the restore target Orbax needs."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
