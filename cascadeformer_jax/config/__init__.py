"""Experiment configs: loading config files, building their model part, and the allowed values of every field."""
