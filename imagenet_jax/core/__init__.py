"""The pieces every layer above may share: losses, top-k accuracy, image normalization, the train state and
its weight average, and the watched metric of early stopping and best checkpoints."""
