"""What a training run is made of, below the loop that assembles them (imagenet_jax/experiment): the optimizer and
schedules, the classification step and its options (mixing, distillation, adversarial training, transfer),
checkpoints, metrics logging, throughput, profiling, early stopping and the non-finite policy."""
