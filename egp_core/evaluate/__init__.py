"""Evaluation: one prompt over a dataset, across models, graded (datasets, graders, stats, runner)."""
