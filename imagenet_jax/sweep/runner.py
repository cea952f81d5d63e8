"""Runs a paper config's variants (each with one or more seeds) one after another here, or writes cluster jobs.

Each run trains with the normal CLI, `python -m imagenet_jax.main --config FILE:VARIANT --workdir RUN_DIR
OVERRIDES`, so a variant accepts anything main accepts and resumes exactly as main does. With one seed RUN_DIR is
DIR/VARIANT (the config's own seed); with N seeds it is DIR/VARIANT/seed_K with `--config.seed=K`, K = 0..N-1, and
the runs go seed by seed (every variant's seed 0 first), so a sweep stopped early still compares all variants.
DIR/sweep.json records the sweep (file, variants, seeds, overrides) for the report; RUN_DIR/sweep_status.json
marks a finished run, which a rerun skips.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from imagenet_jax.config.files import load_config_file, load_config_module
from imagenet_jax.errors import EXIT_PREEMPTED, ConfigError
from imagenet_jax.sweep.paper import Paper

SWEEP_FILE = "sweep.json"
SWEEP_PREFIX = "sweep:"  # init_from="sweep:NAME": start from the finished variant NAME of the same sweep
STATUS_FILE = "sweep_status.json"
STOPPING_SIGNALS = (-signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP)  # subprocess's codes for runs killed by them


SEED_PREFIX = "seed_"


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One training run of a sweep: a variant, and its seed when the sweep has several."""

    variant: str
    seed: int | None  # None: a one-seed sweep, trained with the variant config's own seed in DIR/VARIANT

    def directory(self, workdir: str) -> str:
        """Where this run trains."""
        if self.seed is None:
            return os.path.join(workdir, self.variant)
        return os.path.join(workdir, self.variant, f"{SEED_PREFIX}{self.seed}")

    @property
    def label(self) -> str:
        """"variant" or "variant/seed_K", for progress lines."""
        return self.variant if self.seed is None else f"{self.variant}/{SEED_PREFIX}{self.seed}"

    def overrides(self) -> list[str]:
        """The seed override of this run ([] for a one-seed sweep)."""
        return [] if self.seed is None else [f"--config.seed={self.seed}"]


def sweep_runs(names: Sequence[str], seeds: int) -> list[SweepRun]:
    """Every (variant, seed) run, seed by seed, variants in the paper's order within a seed."""
    if seeds == 1:
        return [SweepRun(name, None) for name in names]
    return [SweepRun(name, seed) for seed in range(seeds) for name in names]


def load_paper(config_path: str) -> tuple[Paper, dict[str, float | None]]:
    """(PAPER, VARIANTS) of a paper config file, or a ConfigError saying what the file lacks."""
    if not os.path.isfile(config_path):
        raise ConfigError(f"--config={config_path}: no such file.")
    module = load_config_module(config_path)
    paper, variants = getattr(module, "PAPER", None), getattr(module, "VARIANTS", None)
    if not isinstance(paper, Paper) or not isinstance(variants, dict) or not variants:
        raise ConfigError(f"--config={config_path} is not a paper config: it needs PAPER = Paper(...) and a "
                          "VARIANTS dict (see imagenet_jax/sweep/paper.py).")
    if paper.baseline and paper.baseline not in variants:
        raise ConfigError(f"{config_path}: Paper.baseline={paper.baseline!r} is not a variant; variants: "
                          f"{', '.join(variants)}.")
    return paper, variants


def resolve_seeds(paper: Paper, requested: int | None, workdir: str, overrides: Sequence[str]) -> int:
    """The number of seeds to run: --seeds, else the paper's; checked against the sweep already in `workdir`."""
    seeds = paper.seeds if requested is None else requested
    if seeds < 1:
        raise ConfigError(f"--seeds={seeds}: the number of seeds per variant must be >= 1.")
    if seeds > 1 and any(item.split("=")[0] == "--config.seed" for item in overrides):
        raise ConfigError(f"--config.seed and --seeds={seeds} both set the seed: drop --config.seed (the sweep "
                          f"trains seeds 0..{seeds - 1}).")
    recorded = read_json_file(os.path.join(workdir, SWEEP_FILE)).get("seeds")
    if recorded is not None and (recorded == 1) != (seeds == 1):
        raise ConfigError(f"--seeds={seeds}: the sweep in {workdir} was started with {recorded} seed(s), whose runs "
                          f"live in {'DIR/VARIANT' if recorded == 1 else 'DIR/VARIANT/seed_K'}; use another "
                          "--workdir, or the same number of seeds (more seeds than before is fine).")
    return seeds


def choose_variants(variants: dict[str, float | None], requested: Sequence[str]) -> list[str]:
    """The requested variants in the paper's order (all when none are requested); unknown names are an error."""
    unknown = [name for name in requested if name not in variants]
    if unknown:
        raise ConfigError(f"--variants: {', '.join(unknown)} not in the paper config; variants: "
                          f"{', '.join(variants)}.")
    return [name for name in variants if not requested or name in requested]


def initialized_from(config_path: str, variant: str) -> str:
    """The variant this one starts from (its config's init_from="sweep:NAME"), or ""."""
    init_from = load_config_file(f"{config_path}:{variant}").init_from
    return init_from[len(SWEEP_PREFIX):] if init_from.startswith(SWEEP_PREFIX) else ""


def main_command(config_path: str, run: SweepRun, workdir: str, overrides: Sequence[str]) -> list[str]:
    """The `python -m imagenet_jax.main` command line that trains one run (user overrides last: they win)."""
    parent = initialized_from(config_path, run.variant)
    init_from = [f"--config.init_from={SweepRun(parent, run.seed).directory(workdir)}"] if parent else []
    return [sys.executable, "-m", "imagenet_jax.main", f"--config={config_path}:{run.variant}",
            f"--workdir={run.directory(workdir)}", *init_from, *run.overrides(), *overrides]


def write_sweep_file(workdir: str, config_path: str, names: Sequence[str], overrides: Sequence[str],
                     seeds: int = 1) -> None:
    """Records what the sweep runs, for the report and for reruns."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, SWEEP_FILE), "w") as stream:
        json.dump({"config": config_path, "variants": list(names), "seeds": seeds, "overrides": list(overrides)},
                  stream, indent=2)


def is_finished(workdir: str, run: SweepRun | str) -> bool:
    """True when the run (a SweepRun, or a variant of a one-seed sweep) trained to its last step earlier."""
    run = SweepRun(run, None) if isinstance(run, str) else run
    return read_json_file(os.path.join(run.directory(workdir), STATUS_FILE)).get("status") == "finished"


def plan_sweep(config_path: str, workdir: str, requested: Sequence[str], overrides: Sequence[str],
               seeds: int | None) -> list[SweepRun]:
    """Checks the paper config, the variants and the seeds, records them in DIR/sweep.json; returns the runs."""
    paper, variants = load_paper(config_path)
    names = choose_variants(variants, requested)
    seeds = resolve_seeds(paper, seeds, workdir, overrides)
    write_sweep_file(workdir, config_path, names, overrides, seeds)
    return sweep_runs(names, seeds)


def run_sweep(config_path: str, workdir: str, requested: Sequence[str] = (), overrides: Sequence[str] = (),
              seeds: int | None = None) -> int:
    """Trains each run in turn (skipping finished ones); returns 0, 75 when preempted, else 1 on failures."""
    runs = plan_sweep(config_path, workdir, requested, overrides, seeds)
    failed = []
    for index, run in enumerate(runs, 1):
        directory = run.directory(workdir)
        if is_finished(workdir, run):
            print(f"[{index}/{len(runs)}] {run.label}: finished earlier, skipped", flush=True)
            continue
        parent = initialized_from(config_path, run.variant)
        if parent and not is_finished(workdir, SweepRun(parent, run.seed)):
            failed.append(run.label)
            print(f"{run.label}: starts from variant {parent!r}, which has not finished in {workdir}: run it first "
                  f"(--variants {parent},{run.variant})", flush=True)
            continue
        print(f"[{index}/{len(runs)}] {run.label}: training in {directory}", flush=True)
        os.makedirs(directory, exist_ok=True)
        started = time.monotonic()
        with open(os.path.join(directory, "sweep_log.txt"), "a") as log:
            code = subprocess.call(main_command(config_path, run, workdir, overrides), stdout=log,
                                   stderr=subprocess.STDOUT)
        seconds = time.monotonic() - started
        if code == EXIT_PREEMPTED:
            print(f"{run.label}: preempted after a checkpoint; rerun the same sweep command to resume", flush=True)
            return EXIT_PREEMPTED
        if code in STOPPING_SIGNALS:
            # Killed before it could save (e.g. SIGTERM while starting): the user is stopping the sweep, not
            # reporting a broken variant, so stop here rather than go on to the next run.
            print(f"{run.label}: stopped by signal {-code} before its first checkpoint; rerun the same sweep "
                  "command to resume", flush=True)
            return EXIT_PREEMPTED
        if code != 0:
            failed.append(run.label)
            print(f"{run.label}: failed with exit code {code}; last lines of its log:\n{_tail(directory)}",
                  flush=True)
            continue
        with open(os.path.join(directory, STATUS_FILE), "w") as stream:
            json.dump({"status": "finished", "seconds_this_invocation": seconds}, stream)
        print(f"{run.label}: finished in {seconds:.0f} s", flush=True)
    if failed:
        print(f"runs that failed: {', '.join(failed)} (their logs: RUN_DIR/sweep_log.txt)", flush=True)
        return 1
    return 0


def emit_commands(config_path: str, workdir: str, requested: Sequence[str], overrides: Sequence[str],
                  seeds: int | None = None) -> str:
    """One shell command per run, for running them anywhere by hand."""
    lines = [shlex.join(["python", *main_command(config_path, run, workdir, overrides)[1:]])
             for run in plan_sweep(config_path, workdir, requested, overrides, seeds)]
    return "\n".join(lines) + "\n"


def emit_slurm(config_path: str, workdir: str, requested: Sequence[str], overrides: Sequence[str],
               seeds: int | None = None) -> str:
    """A SLURM job-array script: one array task per run, requeued on preemption (main exits 75 after saving)."""
    runs = plan_sweep(config_path, workdir, requested, overrides, seeds)
    stem = os.path.splitext(os.path.basename(config_path))[0]
    override_text = " ".join(shlex.quote(item) for item in overrides)
    parents = {run.variant: initialized_from(config_path, run.variant) for run in runs if run.seed in (None, 0)}
    # A variant that starts from another must wait for it: then run the array one task at a time, in order.
    throttle = "%1" if any(parents.values()) else ""

    def bash_array(items) -> str:
        return " ".join(shlex.quote(item) for item in items)

    init_from = [SweepRun(parents[run.variant], run.seed).directory(workdir) if parents[run.variant] else ""
                 for run in runs]
    return f"""#!/bin/bash
# One array task per run (variant and seed) of {config_path}; `sbatch` this file, then
# `python -m imagenet_jax.sweep report {workdir}` once they are done.
#SBATCH --job-name=sweep-{stem}
#SBATCH --array=0-{len(runs) - 1}{throttle}
#SBATCH --nodes=1 --ntasks-per-node=1
#SBATCH --signal=TERM@120 --requeue
#SBATCH --output={workdir}/slurm-%A_%a.out
VARIANTS=({bash_array(run.variant for run in runs)})
RUN_DIRS=({bash_array(run.directory(workdir) for run in runs)})
SEEDS=({bash_array("" if run.seed is None else f"--config.seed={run.seed}" for run in runs)})
INIT_FROM=({bash_array(init_from)})
VARIANT=${{VARIANTS[$SLURM_ARRAY_TASK_ID]}}
EXTRA=()
if [ -n "${{SEEDS[$SLURM_ARRAY_TASK_ID]}}" ]; then EXTRA+=("${{SEEDS[$SLURM_ARRAY_TASK_ID]}}"); fi
if [ -n "${{INIT_FROM[$SLURM_ARRAY_TASK_ID]}}" ]; then
  EXTRA+=(--config.init_from="${{INIT_FROM[$SLURM_ARRAY_TASK_ID]}}")
fi
srun python -m imagenet_jax.main --config={shlex.quote(config_path)}:"$VARIANT" \\
    --workdir="${{RUN_DIRS[$SLURM_ARRAY_TASK_ID]}}" "${{EXTRA[@]}}" {override_text}
code=$?
# 75: preempted after saving a checkpoint; requeue so the run resumes where it stopped.
if [ $code -eq 75 ]; then scontrol requeue "$SLURM_ARRAY_JOB_ID"_"$SLURM_ARRAY_TASK_ID"; fi
exit $code
"""


def read_sweep_file(workdir: str) -> dict:
    """DIR/sweep.json, or a ConfigError saying how to start the sweep."""
    if not os.path.exists(os.path.join(workdir, SWEEP_FILE)):
        raise ConfigError(f"{workdir} has no {SWEEP_FILE}: run `python -m imagenet_jax sweep --config FILE "
                          f"--workdir {workdir}` first.")
    return read_json_file(os.path.join(workdir, SWEEP_FILE))


def read_json_file(path: str) -> dict:
    """A JSON file's object, or {} when the file does not exist (a run or sweep not started yet)."""
    if not os.path.exists(path):
        return {}
    with open(path) as stream:
        return json.load(stream)


def _tail(directory: str, lines: int = 15) -> str:
    with open(os.path.join(directory, "sweep_log.txt")) as stream:
        return "".join(stream.readlines()[-lines:])
