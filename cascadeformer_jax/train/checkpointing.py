"""Orbax checkpoints of a training stage: model state, data-iterator state and progress, saved together.

Layout of a stage directory (``<workdir>/<stage>/``)::

    checkpoints/<step>/{state,data,meta}   the last ``keep`` checkpoints (asynchronous saves)
    checkpoints/<step>.corrupt             a checkpoint that could not be restored, kept aside (Orbax skips it)
    best/                                  model directory of the best validation epoch (if selection is on)
    final/                                 model directory written when the stage completes
"""

import pathlib
from typing import Any, NamedTuple

import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp

from cascadeformer_jax.run import io_checks
from cascadeformer_jax.models import ModelConfig


io_checks.drain_orbax_event_loops()

SET_ASIDE_SUFFIX = '.corrupt'


class ResumeError(ValueError):
  """A work directory holds checkpoints that do not belong to this run's config."""


class SetAside(NamedTuple):
  """A checkpoint that could not be restored and was moved out of Orbax's sight."""

  step: int
  path: pathlib.Path  # where it is now
  file: pathlib.Path  # the file that could not be read (the checkpoint folder if the error does not say)
  reason: str

  def message(self) -> str:
    return (f'checkpoint of step {self.step} cannot be restored: {self.file}: {self.reason}; kept aside as '
            f'{self.path}')


class Restored(NamedTuple):
  state: Any
  data_state: dict[str, Any]
  meta: dict[str, Any]


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
    # Orbax waits for the previous save before it starts this one; waiting here first reports a failure of the
    # previous save under that save's step, not this one's.
    self._watch.wait()
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

  def restore_latest_intact(self, abstract_state: Any, model_config: ModelConfig,
                            stage: str) -> tuple[Restored | None, list[SetAside]]:
    """Restores the newest checkpoint that can be read; each newer one whose files are truncated, damaged or
    missing is moved aside (renamed ``<step>.corrupt``, never deleted) so that later saves and resumes skip it.

    Returns the restored checkpoint (None if none could be read) and the checkpoints set aside, newest first.
    Every process calls it and all of them go on from the same step: a checkpoint that fails on any process is
    set aside for all. A checkpoint of another model raises ResumeError, as `restore` does.
    """
    set_aside = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        restored, damage = Restored(*self.restore(abstract_state, model_config, stage, step)), None
      except ResumeError:
        raise
      except Exception as e:  # pylint: disable=broad-exception-caught
        damage = io_checks.unreadable_file(e, self.directory / str(step))
        if damage is None:
          raise
        restored = None
      if io_checks.all_processes_succeeded(damage is None):
        return restored, set_aside
      file, reason = damage or (self.directory / str(step), 'could not be restored by another process')
      set_aside.append(SetAside(step, self._set_aside(step), file, reason))
    return None, set_aside

  def _set_aside(self, step: int) -> pathlib.Path:
    """Renames the folder of ``step`` to a free non-numeric name (process 0) and makes every process forget it."""
    folder = self.directory / str(step)
    aside = folder.with_name(folder.name + SET_ASIDE_SUFFIX)
    number = 1
    while aside.exists():
      number += 1
      aside = folder.with_name(f'{folder.name}{SET_ASIDE_SUFFIX}-{number}')
    multihost_utils.sync_global_devices(f'set_aside_checkpoint:{folder}')
    if jax.process_index() == 0:
      folder.rename(aside)
    multihost_utils.sync_global_devices(f'set_aside_checkpoint_done:{folder}')
    self._manager.reload()
    return aside

  def wait(self) -> None:
    self._watch.wait()

  def close(self, report_errors: bool = True) -> None:
    """Waits for the last save and closes. ``report_errors=False`` (closing after another failure, which is the
    one to report) drops a failure of the save or of the close, such as the same full disk again."""
    failure = None
    try:
      self._watch.wait()
    except Exception as e:  # pylint: disable=broad-exception-caught
      failure = e
    try:
      with io_checks.checked_write('checkpoint folder', self.directory):
        self._manager.close()  # Waits for Orbax's last metadata write, which can fail too.
    except Exception as e:  # pylint: disable=broad-exception-caught
      failure = failure or e
    if failure is not None and report_errors:
      raise failure


def abstract_like(tree: Any) -> Any:
  """Shape/dtype/sharding structs of a (sharded) tree, the restore target Orbax needs."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
