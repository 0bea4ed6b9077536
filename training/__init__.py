"""The training engine below train.py: the Trainer's step and loop (trainer.py), what a run does
around its steps as hooks (hooks.py), checkpoints (checkpoints.py)."""
