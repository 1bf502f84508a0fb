"""Training: masking, losses, steps, loops and checkpoints."""
