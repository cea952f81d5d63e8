"""Training: state, optimizer, jit-compiled steps, checkpoints, logging and the loop that ties them."""
