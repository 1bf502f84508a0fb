"""The input-pipeline benchmark runs, measures and prints its table."""

import sys

from benchmarks import input_pipeline


def test_measure_reports_throughput_and_cpu_of_the_process_tree():
  startup, clips_per_s, main_cpu_us, tree_cpu_us = input_pipeline.measure('n_ucla', 4, 0, 0, 16, None, 2)
  assert startup > 0 and clips_per_s > 0 and main_cpu_us > 0
  # Without worker processes the tree is this process alone (both clocks tick in 1/100 s steps here).
  assert tree_cpu_us is not None and abs(tree_cpu_us - main_cpu_us) < 0.5 * main_cpu_us + 1e6 * 0.02 / 64


def test_table(monkeypatch, capsys):
  monkeypatch.setattr(sys, 'argv', ['input_pipeline', '--datasets=ntu60_xsub', '--workers=0', '--clips=64',
                                    '--warmup_clips=64', '--step_time_ms=ntu60_xsub=1000000'])
  input_pipeline.main()
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].startswith('CPU: ') and 'in-memory synthetic clips' in lines[0]
  row = [cell.strip() for cell in lines[-1].strip('|').split('|')]
  assert row[:4] == ['ntu60_xsub', '64', '0', '1'] and float(row[5]) > 0 and row[-1] == 'yes'
