"""tune --emit slurm: a SLURM array whose tasks are tuners sharing one study, like the sweep's job arrays.

Each task runs the same tune command; together they start --trials trials (each tuner asks for trials until the
study holds that many, so surplus tasks end at once). A task preempted with SIGTERM saves its trial's checkpoint,
exits 75 and is requeued; its rerun resumes that trial (its lock is free). The storage must be reachable from
every node (a server database for many nodes; SQLite only where the nodes share a filesystem that supports
locks), and WORKDIR must be on a shared filesystem.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence


def write_sbatch(tuning, argv: Sequence[str]) -> str:
    """Writes WORKDIR/tune.sbatch and returns its path."""
    command = _without_emit(list(argv))
    tasks = tuning.trials
    text = f"""#!/bin/bash
# {tasks} tuner tasks sharing the study {tuning.study!r} in {tuning.storage}; `sbatch` this file, then
# `python -m imagenet_jax tune report --study {tuning.study} --storage {tuning.storage} --workdir {tuning.workdir}`.
#SBATCH --job-name=tune-{tuning.study}
#SBATCH --array=0-{tasks - 1}
#SBATCH --nodes=1 --ntasks-per-node=1
#SBATCH --signal=TERM@120 --requeue
#SBATCH --output={tuning.workdir}/slurm-%A_%a.out
srun python -m imagenet_jax tune {shlex.join(command)}
code=$?
# 75: a trial was preempted after saving a checkpoint; requeue so this tuner resumes it.
if [ $code -eq 75 ]; then scontrol requeue "$SLURM_ARRAY_JOB_ID"_"$SLURM_ARRAY_TASK_ID"; fi
exit $code
"""
    os.makedirs(tuning.workdir, exist_ok=True)
    path = os.path.join(tuning.workdir, "tune.sbatch")
    with open(path, "w") as stream:
        stream.write(text)
    return path


def _without_emit(argv: list[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--emit":
            skip = True
        elif not item.startswith("--emit="):
            out.append(item)
    return out
