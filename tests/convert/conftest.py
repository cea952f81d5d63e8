"""Lets the torchvision and Keras parity tests share one process."""

import sys

# torch imports its optional GPU compiler `triton` lazily, and loading libtriton after TensorFlow segfaults (both
# ship LLVM). These CPU parity tests never need triton: a None entry makes `import triton` raise ImportError,
# which torch treats as "triton not installed".
sys.modules.setdefault("triton", None)
