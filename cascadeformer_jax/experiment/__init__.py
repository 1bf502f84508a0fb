"""A run of an experiment config: its mode chains the stages and evaluations (`runner.run`)."""
