"""Model files: model directories (Orbax parameters + architecture), the published PyTorch checkpoints and their
conversion without PyTorch, and the one resolver of every place a model can come from."""
