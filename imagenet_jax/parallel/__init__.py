"""Device mesh, shardings and assembly of global batches from per-process data."""
