"""Input: datasets (TFDS, image folders), preprocessing ops, and the streams of batches the tasks consume."""
