"""curves.png on hand-made metrics: every curve visible and named by its split, the legend clear of the curves, and
the selected epoch marked."""

import json

import matplotlib.pyplot as plt

from cascadeformer_jax.train import reporting

ACCURACY = [0.3, 0.6, 0.9, 0.8]


def _records():
  records = [{'stage': stage, 'step': step, 'loss': 1 / step} for stage in ('pretrain', 'finetune')
             for step in range(1, 41)]
  for epoch, accuracy in enumerate(ACCURACY, start=1):
    records.append({'stage': 'pretrain_eval', 'step': 10 * epoch, 'epoch': epoch, 'split': 'holdout',
                    'val_masked_mse': [0.5, 0.3, 0.35, 0.3][epoch - 1], 'val_count': 12})
    # A balanced hold-out: the mean class accuracy equals the accuracy; top-5 is 1 throughout.
    records.append({'stage': 'finetune_eval', 'step': 10 * epoch, 'epoch': epoch, 'split': 'holdout',
                    'val_accuracy': accuracy, 'val_mean_class_accuracy': accuracy, 'val_top5': 1.0,
                    'val_loss': 1.5 / epoch, 'val_count': 12})
  return records


def _lines(figure, title):
  """{label: line} of the stage plot titled ``title`` and its twin axis."""
  position = next(axis for axis in figure.axes if axis.get_title() == title).get_position().bounds
  return {line.get_label(): line for axis in figure.axes if axis.get_position().bounds == position
          for line in axis.get_lines()}


def test_curves_show_every_curve_name_the_split_and_mark_the_selected_epoch():
  figure = reporting.curves_figure(_records(), selected={'finetune': True})
  try:
    lines = _lines(figure, 'finetune')
    assert not [label for label in lines if 'val' in label]  # the hold-out is called so
    accuracy, mean_class = lines['holdout accuracy'], lines['holdout mean class accuracy']
    assert list(accuracy.get_ydata()) == list(mean_class.get_ydata()) == ACCURACY
    # Identical curves, told apart by their style, so that neither hides the other.
    assert (accuracy.get_linestyle(), accuracy.get_marker()) != (mean_class.get_linestyle(), mean_class.get_marker())
    assert 'holdout top-5' in lines and 'holdout loss' in lines and 'train loss' in lines
    # The selected epoch: the first highest hold-out accuracy (epoch 3); pretraining's lowest error (epoch 2 first).
    star = lines['selected: epoch 3 (holdout accuracy 0.9)']
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([30], [0.9])
    assert 'best: epoch 2 (holdout masked mse 0.3)' in _lines(figure, 'pretrain')
    # The legends lie outside every plotting area (below it), so they cover no curve.
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legends = [axis.get_legend() for axis in figure.axes if axis.get_legend() is not None]
    assert len(legends) == 2
    for legend in legends:
      assert not any(legend.get_window_extent(renderer).overlaps(axis.bbox) for axis in figure.axes)
  finally:
    plt.close(figure)


def test_plot_curves_reads_the_selection_from_the_work_directory(tmp_path, monkeypatch):
  drawn = []
  curves_figure = reporting.curves_figure
  monkeypatch.setattr(reporting, 'curves_figure', lambda *args: drawn.append(curves_figure(*args)) or drawn[-1])
  (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(record) + '\n' for record in _records()))
  (tmp_path / 'config.json').write_text(json.dumps({'finetune': {'select_best': 'holdout'}}))
  assert reporting.plot_curves(tmp_path) == tmp_path / 'curves.png' and (tmp_path / 'curves.png').stat().st_size
  assert 'selected: epoch 3 (holdout accuracy 0.9)' in _lines(drawn[-1], 'finetune')
  assert reporting.plot_curves(tmp_path / 'empty') is None
