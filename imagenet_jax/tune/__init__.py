"""Hyperparameter search with Optuna: search spaces (space.py), the tuner's loop (tuner.py), its report and the
SLURM array of tuners; the runs' side (reporting evaluations, pruning) is imagenet_jax/training/trial_pruning.py."""
