"""Errors meant for the person running a job: the CLI prints them as one line, without a traceback."""

# EX_TEMPFAIL: training saved a checkpoint on SIGTERM/SIGINT; rerun the same command to resume. Defined here, the
# lowest layer, for the front door (cli/command.py) and for what runs training in a subprocess (sweep, tune).
EXIT_PREEMPTED = 75


class UserFacingError(Exception):
    """An error whose message says what is wrong and how to fix it."""


class ConfigError(UserFacingError):
    """A config value is unknown, inconsistent or out of range; the message names the key."""


class DatasetNotPreparedError(UserFacingError):
    """The dataset is not in `data_dir` and cannot be prepared here; the message says how."""


class CheckpointError(UserFacingError):
    """No checkpoint in the workdir could be restored, or the workdir cannot hold one."""
