"""The training loop's parts below train.py: one step (step.py) and checkpoints
(checkpoints.py)."""
