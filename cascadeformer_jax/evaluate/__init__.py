"""Evaluation: predictions over a split and classification metrics."""
