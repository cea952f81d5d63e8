"""The default job's search space (`python -m imagenet_jax tune --config configs/default.py --space
configs/search/default.py ...`): the knobs RESULTS.md's ablations found to matter on Fashion-MNIST, around the
shipped values (learning rate 0.1 at batch 256, weight decay 5e-4, no label smoothing, 0.5 warmup epochs)."""


def get_space() -> dict:
    """{config key: distribution}; see imagenet_jax/tune/space.py for the distributions and their options."""
    return {
        "learning_rate": {"distribution": "log_uniform", "low": 0.02, "high": 0.8, "grid": (0.05, 0.1, 0.2, 0.4)},
        "weight_decay": {"distribution": "log_uniform", "low": 5e-5, "high": 5e-3, "grid": (1e-4, 5e-4, 2e-3)},
        "label_smoothing": {"distribution": "uniform", "low": 0.0, "high": 0.2, "grid": (0.0, 0.1)},
        "schedule.warmup_epochs": {"distribution": "uniform", "low": 0.0, "high": 1.0, "grid": (0.0, 0.5)},
    }
