"""Errors meant for the person running a job: the CLI prints them as one line, without a traceback."""


class UserFacingError(Exception):
    """An error whose message says what is wrong and how to fix it."""


class ConfigError(UserFacingError):
    """A config value is unknown, inconsistent or out of range; the message names the key."""


class DatasetNotPreparedError(UserFacingError):
    """The dataset is not in `data_dir` and cannot be prepared here; the message says how."""


class CheckpointError(UserFacingError):
    """No checkpoint in the workdir could be restored, or the workdir cannot hold one."""
