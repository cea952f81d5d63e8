"""The run: the task-agnostic training loop (loop.py) and the up-front check of a whole config (validate.py),
above every component they put together."""
