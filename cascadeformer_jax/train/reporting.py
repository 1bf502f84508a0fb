"""Run reporting: metrics.jsonl, TensorBoard event files, a console progress line and PNG curves."""

import json
import math
import pathlib
import sys
import time
from typing import Any, TextIO

import jax

from cascadeformer_jax.run import io_checks


class MetricWriter:
  """Appends metrics to ``metrics.jsonl`` and TensorBoard event files (process 0 only)."""

  def __init__(self, workdir: pathlib.Path, tensorboard: bool = True):
    self._active = jax.process_index() == 0
    self._path = pathlib.Path(workdir) / 'metrics.jsonl'
    self._tensorboard = None
    if self._active and tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tensorboard = SummaryWriter(str(pathlib.Path(workdir) / 'tensorboard'), flush_secs=30)

  def write(self, stage: str, step: int, metrics: dict[str, Any], **context) -> None:
    if not self._active:
      return
    values = {name: _to_python(value) for name, value in metrics.items()}
    record = {'stage': stage, 'step': int(step), **context, **values, 'time': round(time.time(), 3)}
    with io_checks.checked_write('metrics file', self._path), self._path.open('a') as f:
      f.write(json.dumps(record) + '\n')
    if self._tensorboard is not None:
      for name, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
          self._tensorboard.add_scalar(f'{stage}/{name}', value, int(step))

  def forget_after(self, stages: tuple[str, ...], step: int) -> None:
    """Drops the records of ``stages`` after ``step``: a resumed stage redoes those steps and logs them again."""
    if not self._active or not self._path.exists():
      return
    lines = self._path.read_text().splitlines()
    kept = [line for line in lines if line.strip() and not _after(json.loads(line), stages, step)]
    if len(kept) != len([line for line in lines if line.strip()]):
      staging = self._path.with_name(self._path.name + '.tmp')
      with io_checks.checked_write('metrics file', self._path):
        staging.write_text(''.join(line + '\n' for line in kept))
        staging.replace(self._path)

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()


def _after(record: dict[str, Any], stages: tuple[str, ...], step: int) -> bool:
  return record.get('stage') in stages and int(record.get('step', 0)) > step


def _to_python(value: Any) -> Any:
  if hasattr(value, 'item'):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


def read_metrics(workdir: pathlib.Path) -> list[dict[str, Any]]:
  path = pathlib.Path(workdir) / 'metrics.jsonl'
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Progress:
  """One status line: stage, epoch, step, loss, lr, clips/s (compile step excluded) and ETA.

  On a terminal the line is redrawn in place; otherwise a line is printed every ``interval`` seconds.
  """

  def __init__(self, stage: str, total_steps: int, batch_size: int, start_step: int = 0,
                 stream: TextIO | None = None, interval: float = 15.0, enabled: bool = True):
    self._stage, self._total, self._batch = stage, total_steps, batch_size
    self._stream = stream or sys.stderr
    self._tty = hasattr(self._stream, 'isatty') and self._stream.isatty()
    self._interval = interval
    self._enabled = enabled and jax.process_index() == 0
    self._first_step = start_step
    self._timer_start = None
    self._timer_step = start_step
    self._last_print = 0.0

  def update(self, step: int, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
    now = time.time()
    if self._timer_start is None:  # The first step includes compilation: start timing after it.
      self._timer_start, self._timer_step = now, step
      clips_per_second, eta = float('nan'), ''
    else:
      elapsed = now - self._timer_start
      done = step - self._timer_step
      clips_per_second = done * self._batch / elapsed if elapsed > 0 else float('nan')
      eta = _duration((self._total - step) * elapsed / done) if done else ''
    self.last_clips_per_second = clips_per_second
    if not self._enabled:
      return
    if not self._tty and now - self._last_print < self._interval and step < self._total:
      return
    self._last_print = now
    parts = [f'[{self._stage}] epoch {epoch + 1}/{epochs}', f'step {step}/{self._total}']
    parts += [f'{name} {value:.4g}' for name, value in metrics.items()]
    if math.isfinite(clips_per_second):
      parts.append(f'{clips_per_second:.0f} clips/s')
    if eta:
      parts.append(f'ETA {eta}')
    line = '  '.join(parts)
    if self._tty:
      self._stream.write('\r' + line.ljust(110)[:160])
    else:
      self._stream.write(line + '\n')
    self._stream.flush()

  def message(self, text: str) -> None:
    if not self._enabled:
      return
    if self._tty:
      self._stream.write('\n')
    self._stream.write(text + '\n')
    self._stream.flush()

  def close(self) -> None:
    if self._enabled and self._tty:
      self._stream.write('\n')
      self._stream.flush()


def _duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  if seconds >= 3600:
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
  return f'{seconds // 60}m{seconds % 60:02d}s'


def _metric_label(split: str, key: str) -> str:
  """'val_top5' of the hold-out -> 'holdout top-5': evaluations during training name the split they ran on."""
  name = key[len('val_'):].replace('top5', 'top-5').replace('_', ' ')
  return f'{split} {name}'


def best_evaluation(evaluations: list[dict[str, Any]]) -> tuple[dict[str, Any], str] | None:
  """The evaluation a stage's model selection keeps (the first highest accuracy, else the first lowest error, as the
  trainer selects) and the metric it was chosen by; None without evaluations."""
  def has(record, key):
    return isinstance(record.get(key), (int, float))

  if any(has(r, 'val_accuracy') for r in evaluations):
    scored = [r for r in evaluations if has(r, 'val_accuracy')]
    return max(scored, key=lambda r: r['val_accuracy']), 'val_accuracy'
  errors = sorted({k for r in evaluations for k in r if k.startswith('val_') and k not in ('val_count', 'val_loss')
                   and has(r, k)})
  if not errors:
    return None
  scored = [r for r in evaluations if has(r, errors[0])]
  return min(scored, key=lambda r: r[errors[0]]), errors[0]


# Evaluation curves that can coincide get different styles: on a balanced split the mean class accuracy equals the
# accuracy, so it is drawn thin and dashed over the thick accuracy line.
_CURVE_STYLES = {
    'val_accuracy': dict(linestyle='-', marker='o', linewidth=3, markersize=7),
    'val_mean_class_accuracy': dict(linestyle='--', marker='x', linewidth=1.5, markersize=8),
    'val_top5': dict(linestyle='-.', marker='^', linewidth=1.5, markersize=6),
}


def curves_figure(records: list[dict[str, Any]], selected: dict[str, bool] | None = None):
  """The figure of `plot_curves` (matplotlib, Agg), or None without training records.

  Per stage: the training loss and the evaluation error(s) on the left axis, the evaluation accuracies on the right
  one, every evaluation named by its split; the best evaluation marked (as "selected" where ``selected[stage]``:
  the stage keeps that epoch's model). Lines that may coincide (accuracy and mean class accuracy on a balanced
  split) differ in style, and the legend sits below the plot, clear of the curves.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  stages = [s for s in ('pretrain', 'finetune') if any(r['stage'] == s for r in records)]
  if not stages:
    return None
  figure, axes = plt.subplots(1, len(stages), figsize=(6.5 * len(stages), 5.2), squeeze=False)
  for axis, stage in zip(axes[0], stages):
    colors = iter(plt.rcParams['axes.prop_cycle'].by_key()['color'][1:] * 4)
    train = [r for r in records if r['stage'] == stage and isinstance(r.get('loss'), (int, float))]
    axis.plot([r['step'] for r in train], [r['loss'] for r in train], label='train loss', color='tab:blue')
    axis.set_xlabel('step')
    axis.set_ylabel('loss')
    axis.set_title(stage)
    evaluations = [r for r in records if r['stage'] == f'{stage}_eval']
    split = next((r['split'] for r in evaluations if r.get('split')), 'evaluation')
    names = sorted({k for r in evaluations for k, v in r.items()
                    if k.startswith('val_') and k != 'val_count' and isinstance(v, (int, float))})
    rates = [name for name in names if 'accuracy' in name or name == 'val_top5']
    twin = axis.twinx() if rates else None
    for key in names:
      points = [(r['step'], r[key]) for r in evaluations if isinstance(r.get(key), (int, float))]
      target = twin if key in rates else axis
      target.plot(*zip(*points), label=_metric_label(split, key), color=next(colors),
                  **_CURVE_STYLES.get(key, _CURVE_STYLES['val_accuracy']))
    best = best_evaluation(evaluations)
    if best is not None:
      record, key = best
      verb = 'selected' if (selected or {}).get(stage) else 'best'
      target = twin if key in rates else axis
      target.axvline(record['step'], color='0.5', linestyle=':', linewidth=1)
      target.plot([record['step']], [record[key]], linestyle='none', marker='*', markersize=16, color='gold',
                  markeredgecolor='black', zorder=5,
                  label=f'{verb}: epoch {record.get("epoch", "?")} ({_metric_label(split, key)} {record[key]:.4g})')
    if twin is not None:
      twin.set_ylabel('accuracy')
      twin.set_ylim(0, 1.02)
    handles, labels = axis.get_legend_handles_labels()
    if twin is not None:
      more_handles, more_labels = twin.get_legend_handles_labels()
      handles, labels = handles + more_handles, labels + more_labels
    axis.legend(handles, labels, loc='upper center', bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize='small',
                frameon=False)
  figure.tight_layout()
  return figure


def plot_curves(workdir: pathlib.Path) -> pathlib.Path | None:
  """Writes ``curves.png``: training loss per stage and evaluation accuracy/loss over epochs (`curves_figure`)."""
  records = read_metrics(workdir)
  config_file = pathlib.Path(workdir) / 'config.json'
  selected = {}
  if config_file.is_file():
    config = json.loads(config_file.read_text())
    selected = {stage: config.get(stage, {}).get('select_best', 'last') != 'last' for stage in ('pretrain', 'finetune')}
  figure = curves_figure(records, selected) if records else None
  if figure is None:
    return None
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(workdir) / 'curves.png'
  figure.savefig(path, dpi=100, bbox_inches='tight')
  plt.close(figure)
  return path
