"""The tune command's loop: ask the study for a trial, train it as an ordinary run, tell the study how it ended.

Trial N trains in WORKDIR/trial_N with `python -m imagenet_jax.main --config CONFIG --config.KEY=VALUE ...` (the
trial's parameters, then the user's overrides), and reports every evaluation to the study itself, so the pruner
can stop it (imagenet_jax/training/trial_pruning.py). Its value is the metric's last evaluation.

The study lives in the storage, so the tuner may stop at any point: rerun the same command and it first resumes
the trials left running (from their checkpoints: each is an ordinary run), then starts new ones until the study
holds --trials trials. A tuner holds an exclusive lock on WORKDIR/trial_N/tuner.lock while trial N trains (and
so does the trial's process, which it passes the lock to and which stops when its tuner dies), so tuners sharing
a study on one machine never run one trial twice, and a trial whose tuner died is known by its free lock (or
by a lock that names a dead tuner of this host: its process is still saving, and is waited for). Asking
for a trial is serialized by WORKDIR/tuner.lock, so that together they start exactly --trials trials.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

from imagenet_jax.errors import EXIT_PREEMPTED, ConfigError
from imagenet_jax.training.trial_pruning import SPLIT as PRUNED_SPLIT
from imagenet_jax.tune import space as space_lib

WORKDIR_ATTR = "workdir"  # the trial's user attribute naming its run directory
LOG_FILE = "tune_log.txt"  # the trial process's output, in its workdir
LOCK_FILE = "tuner.lock"
STATUS_FILE = "tune_finished.json"  # in a trial's workdir once its training process ended normally


@dataclasses.dataclass(frozen=True)
class Tuning:
    """Everything one tune command line fixes."""

    config: str
    space: str
    trials: int
    study: str
    storage: str
    workdir: str
    sampler: str = "tpe"
    pruner: str = "median"
    metric: str = ""
    seed: int = 0
    overrides: tuple[str, ...] = ()

    def trial_dir(self, number: int) -> str:
        """WORKDIR/trial_N."""
        return os.path.join(self.workdir, f"trial_{number}")


def open_study(tuning: Tuning, search_space: dict, direction: str):
    """The study in the storage (created on first use) with the tuning's sampler and pruner."""
    import optuna

    from imagenet_jax.training.optuna_study import make_pruner, make_sampler, storage_of

    grid = space_lib.grid(search_space) if tuning.sampler == "grid" else {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=tuning.study, storage=storage_of(tuning.storage), load_if_exists=True,
                               direction=direction, sampler=make_sampler(tuning.sampler, tuning.seed, grid),
                               pruner=make_pruner(tuning.pruner))


def metric_and_direction(tuning: Tuning) -> tuple[str, str]:
    """The metric trials report ("" is the config's best_metric, else the main set's top1) and the study's direction."""
    from imagenet_jax.config.files import load_config_file
    from imagenet_jax.core.watched_metric import resolve_mode

    config = load_config_file(tuning.config)
    metric = tuning.metric or config.best_metric or ""
    if metric and (metric.count("/") < 1 or not metric.rpartition("/")[2]):
        raise ConfigError(f"--metric={metric!r} must be \"<set>/<metric>\" as logged (e.g. \"test/top1\").")
    mode = resolve_mode(metric or "main/top1", "auto")
    return metric, "maximize" if mode == "max" else "minimize"


def tune(tuning: Tuning) -> int:
    """Runs trials until the study holds `trials`; 0, or 75 when a trial was preempted (rerun to resume)."""
    import optuna

    from imagenet_jax.config.files import load_config_file

    search_space = space_lib.load_space(tuning.space, load_config_file(tuning.config))
    metric, direction = metric_and_direction(tuning)
    with _trial_lock(tuning.workdir, wait=True):  # tuners starting together would race to create the tables
        study = open_study(tuning, search_space, direction)
        if "config" not in study.user_attrs:  # what `tune report` re-runs the best trial against
            study.set_user_attr("config", tuning.config)
            study.set_user_attr("space", tuning.space)
    code = _resume_orphans(study, tuning, metric)
    if code == EXIT_PREEMPTED:
        return code
    while True:
        with _trial_lock(tuning.workdir, wait=True):  # one tuner at a time counts and asks
            started = [t for t in study.get_trials(deepcopy=False) if t.state != optuna.trial.TrialState.WAITING]
            if len(started) >= tuning.trials:  # enqueued (waiting) trials are next, not yet counted
                break
            trial = study.ask()
            values = space_lib.suggest(trial, search_space)
            lock = _lock(tuning.trial_dir(trial.number), wait=False)  # a new directory: always free
            trial.set_user_attr(WORKDIR_ATTR, tuning.trial_dir(trial.number))
        try:
            print(f"trial {trial.number}: {', '.join(f'{k}={v}' for k, v in values.items())}", flush=True)
            code = _finish(study, tuning, trial.number, values, metric, lock)
        finally:
            os.close(lock)
        if code == EXIT_PREEMPTED:
            return code
    code = _resume_orphans(study, tuning, metric)  # trials whose tuner died while this one worked
    if code == EXIT_PREEMPTED:
        return code
    _print_summary(study)
    return 0


def _resume_orphans(study, tuning: Tuning, metric: str) -> int:
    """Finishes every running trial whose tuner is gone (its lock free, or held only by its stopping process)."""
    import optuna

    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if WORKDIR_ATTR not in frozen.user_attrs:
            continue  # being created by another tuner this instant
        directory = tuning.trial_dir(frozen.number)
        lock = _lock(directory, wait=False)
        if lock is None and _owner_is_gone(directory):
            # Its tuner died; its training process got SIGTERM and is saving a checkpoint: wait for it to exit.
            lock = _lock(directory, wait=True)
        if lock is None:
            continue  # another live tuner runs it
        try:
            print(f"trial {frozen.number}: resuming in {directory}", flush=True)
            code = _finish(study, tuning, frozen.number, frozen.params, metric, lock)
        finally:
            os.close(lock)
        if code == EXIT_PREEMPTED:
            return code
    return 0


def _owner_is_gone(directory: str) -> bool:
    """True when the trial's lock names a tuner process of this host that no longer exists."""
    try:
        with open(os.path.join(directory, LOCK_FILE)) as stream:
            host, pid = stream.read().split()
    except (OSError, ValueError):
        return False
    if host != socket.gethostname():
        return False  # another machine's tuner: its liveness is not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _finish(study, tuning: Tuning, number: int, values: dict, metric: str, lock: int) -> int:
    """Trains (or resumes) trial `number` and tells the study how it ended; the trial's exit code."""
    import optuna

    directory = tuning.trial_dir(number)
    state, value = _outcome(directory, metric)
    code = 0
    if state is None:  # not finished yet: train, or resume from its checkpoint
        code = _train(tuning, number, values, metric, lock)
        if code == EXIT_PREEMPTED:
            print(f"trial {number}: preempted after a checkpoint; rerun the same tune command to resume", flush=True)
            return code
        state, value = _outcome(directory, metric) if code == 0 else ("fail", None)
    if state == "pruned":
        study.tell(number, state=optuna.trial.TrialState.PRUNED)
    elif state == "complete" and value is not None:
        study.tell(number, value)
    else:
        study.tell(number, state=optuna.trial.TrialState.FAIL)
        print(f"trial {number}: failed (exit code {code}); its log: {os.path.join(directory, LOG_FILE)}", flush=True)
        return code
    print(f"trial {number}: {state}" + (f", {value:.4f}" if value is not None and state == "complete" else ""),
          flush=True)
    return code


def _outcome(directory: str, metric: str) -> tuple[str | None, float | None]:
    """("pruned", None), ("complete", last value of the metric), or (None, None) while the run has not finished."""
    from imagenet_jax.storage.files import read_json_lines
    from imagenet_jax.storage.layout import RunLayout

    metrics = RunLayout.of(directory).metrics
    if not metrics.exists():
        return None, None
    lines = read_json_lines(metrics)  # a torn last line (a kill mid-write) is left out, not a crash
    if any(line.get("split") == PRUNED_SPLIT and line.get("pruned") for line in lines):
        return "pruned", None
    if not os.path.exists(os.path.join(directory, STATUS_FILE)):  # written when its process ended with 0
        return None, None
    return "complete", _last_value(lines, metric)


def _last_value(lines: list[dict], metric: str) -> float | None:
    evals = [line for line in lines if line.get("split") not in ("train", PRUNED_SPLIT)]
    if not evals:
        return None
    split, _, key = metric.rpartition("/") if metric else (evals[0]["split"], "", "top1")
    values = [line[key] for line in evals if line.get("split") == split and key in line]
    return float(values[-1]) if values else None


def _train(tuning: Tuning, number: int, values: dict, metric: str, lock: int) -> int:
    directory = tuning.trial_dir(number)
    command = [sys.executable, "-m", "imagenet_jax.main", f"--config={tuning.config}", f"--workdir={directory}",
               *space_lib.overrides(values), f"--config.tune.storage={tuning.storage}",
               f"--config.tune.study={tuning.study}", f"--config.tune.trial={number}",
               f"--config.tune.pruner={tuning.pruner}", f"--config.tune.metric={metric}", *tuning.overrides]
    with open(os.path.join(directory, LOG_FILE), "a") as log:
        # The lock travels with the trial (pass_fds): it stays held until both processes are gone, and the trial
        # gets SIGTERM (save, exit 75) when its tuner dies, so no other tuner resumes it while it still runs.
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, pass_fds=(lock,),
                               preexec_fn=_terminate_with_parent)
    if code == 0:
        with open(os.path.join(directory, STATUS_FILE), "w") as stream:
            json.dump({"status": "finished"}, stream)
    return code


def _terminate_with_parent() -> None:
    import ctypes

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _lock(directory: str, wait: bool) -> int | None:
    """The fd of an exclusive flock on DIRECTORY/tuner.lock, or None when another process holds it (wait False)."""
    os.makedirs(directory, exist_ok=True)
    descriptor = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(descriptor)
        return None
    os.ftruncate(descriptor, 0)  # who holds it: read by _owner_is_gone
    os.pwrite(descriptor, f"{socket.gethostname()} {os.getpid()}\n".encode(), 0)
    return descriptor


@contextlib.contextmanager
def _trial_lock(directory: str, wait: bool) -> Iterator[int | None]:
    """_lock as a context: released (closed) on leaving."""
    descriptor = _lock(directory, wait)
    try:
        yield descriptor
    finally:
        if descriptor is not None:
            os.close(descriptor)


def _print_summary(study) -> None:
    import optuna

    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    counts = {state.name.lower(): sum(t.state == state for t in study.get_trials(deepcopy=False))
              for state in optuna.trial.TrialState}
    print("trials: " + ", ".join(f"{count} {state}" for state, count in counts.items() if count), flush=True)
    if done:
        best = study.best_trial
        print(f"best: trial {best.number}, value {best.value:.4f}: "
              f"{' '.join(space_lib.overrides(best.params))}", flush=True)
