"""Golden values: what training computes today, recorded bit for bit, so a redesign can prove it changed nothing.

Each scenario trains in fresh subprocesses of the command line (`python -m imagenet_jax.main`, through
`_command` below: the one place to change if the command line changes) on Fashion-MNIST, on the CPU with one
device, and compares every number of `<workdir>/metrics.jsonl` (train and eval lines, wall-clock fields
dropped: DROPPED_KEYS) and the checkpoint steps kept in `<workdir>/checkpoints/` with tests/golden/<scenario>.json,
exactly (JSON floats round-trip bit for bit; values are compared as their JSON text, so 0 vs 0.0 differs too):

- default.json: configs/default.py as it is, for its first 60 steps: train lines every 10 steps, evals of the full
  test set at steps 30 and 60.
- vgg_dense.json: configs/ablations/fashion_mnist.py:vgg_bn (vgg_small with BN and dropout) with 32-unit FC layers
  (config.model_options.classifier_width), 30 steps, and a VGG dense-evaluation set (multicrop, mode=dense, at
  Q=28 and Q=36, each with its mirror) next to the plain one, on 100 test images at steps 15 and 30.
- distill.json: a teacher trained by the test (configs/default.py, 10 steps), then configs/distill.py's student
  taught by that workdir for 30 steps; both runs' lines.
- resumed.json: the default config on small batches, 40 steps; recorded uninterrupted. The test runs it again,
  sends SIGTERM once step 10 is logged (the run saves and exits 75), reruns the same command, and requires the
  resumed run's metrics.jsonl to equal the recorded uninterrupted one.

Bit-exactness is a property of the machine as well as the code. XLA's CPU numbers depend on the number of cores
the process may use (its thread pool splits reductions by it: the same run on 1 core instead of 2 differs from
the first logged step on, in the 7th digit), so every run here is pinned to CORES cores (CPU affinity, inherited by
the training process); they also depend on the CPU (the same code on CI's Intel Xeon and AMD EPYC VMs differs in
the 7th digit of the first loss) and the jax/jaxlib version. So each file holds one recording per machine
(`recordings`, each with its `recorded_on`), and a test compares:

- bit for bit with the recording of this machine (same CPU model, instruction set, cores used, Python, jax and
  jaxlib), when there is one: any change of any number fails;
- otherwise with every recording, within ACROSS_MACHINES: the run's shape (steps, splits, epochs, learning rates,
  example counts, checkpoints) exactly, its losses, gradient norms and accuracies within the bounds that
  rounding alone moves them (measured: the same code on 1 core instead of 2, the module's constants). It passes
  with a warning that asks for this machine's recording. A changed recipe, schedule, augmentation or data order
  moves them by far more.

Recording (say so in the commit):

    IMAGENET_JAX_RECORD_GOLDEN=1 python -m pytest -p no:randomly -n 0 tests/test_unchanged_behaviour.py

runs every scenario twice in fresh workdirs (and, for resumed.json, the SIGTERM-and-resume run as well) and, only
if all of them agree bit for bit, writes files holding this machine's recording alone: for an intended change of
numbers, which makes every other machine's recording stale. IMAGENET_JAX_RECORD_GOLDEN=add keeps the other
machines' recordings and adds (or replaces) this machine's, after checking that it agrees with each of them within
ACROSS_MACHINES: for a machine kind CI may run on, with unchanged numbers. Without the variable the tests compare,
and a mismatch names the first differing line and each differing key.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, read_metrics

GOLDEN_DIR = Path(REPO) / "tests" / "golden"
RECORD_MODE = os.environ.get("IMAGENET_JAX_RECORD_GOLDEN", "").strip().lower()
if RECORD_MODE not in ("", "0", "1", "add"):
    raise ValueError(f"IMAGENET_JAX_RECORD_GOLDEN={RECORD_MODE!r}: use 1 (this machine's recording replaces all) "
                     "or add (this machine's recording joins the others')")
RECORD = RECORD_MODE in ("1", "add")
# Wall-clock and machine-load dependent keys of metrics.jsonl train lines, left out of every comparison:
# steps_per_second, images_per_second, eta_seconds, elapsed_seconds (timing of the window / run);
# data_wait_fraction (share of the window's wall time spent waiting for input); model_tflops_per_second (FLOPs
# per image times images/s) and mfu (that against a peak measured by a matmul probe on CPU). Everything else
# (step, split, epoch, loss, top1, top5, grad_norm, learning_rate, skipped_steps; eval lines' num_examples,
# best_top1, best_step) is compared exactly.
DROPPED_KEYS = frozenset({"steps_per_second", "images_per_second", "eta_seconds", "elapsed_seconds",
                          "data_wait_fraction", "model_tflops_per_second", "mfu"})
# One CPU device, whatever this process or CI sets: the device count is part of the recorded behaviour.
# Where a machine has no recording of its own: how far rounding alone moves each key (any other key must be equal).
# Measured as the same code on 1 core instead of 2, against the 2-core recordings: at most 1.6% of an eval loss,
# 1.5% of a gradient norm and 0.02 of an accuracy (4 of 200 test images of the distill teacher after 10 steps, whose
# batches of 64 at learning rate 0.1 amplify rounding fastest). The bounds are about 3x those. Measured on the
# default scenario, they catch label_smoothing=0.05 (step 20), no flip augmentation (step 30) and another seed
# (the eval at step 30), and any change of learning rate, epoch or count at once; a weight decay of 1e-3 instead of
# 5e-4 moves 60 steps less than rounding does: only a recording of the machine itself catches that.
ACROSS_MACHINES = {"loss": ("relative", 0.05), "grad_norm": ("relative", 0.05), "top1": ("absolute", 0.06),
                   "top5": ("absolute", 0.06), "best_top1": ("absolute", 0.06)}
DEVICE_ENV = {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
CORES = 2  # usable cores of every training process (the default config's 2-core target; see the docstring)
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "asimd", "sve")
DATA_DIR = "{data_dir}"  # placeholders in recorded overrides, filled in per session
TEACHER = "{teacher_workdir}"

DEFAULT_JOB = ["--config.num_train_steps=60", "--config.log_every_steps=10", "--config.eval_every_steps=30"]
# LR 0.5 without warmup, not the recipe's 0.02 after 0.1 epochs, so the weights move more in 30 steps; the loss
# stays near ln(10) anyway (VGG's N(0, 0.01) classifier needs hundreds of steps), the bits are what is compared.
VGG_DENSE = [
    "--config.model_options.classifier_width=32", "--config.num_train_steps=30", "--config.batch_size=32",
    "--config.schedule.warmup_epochs=0", "--config.learning_rate=0.5", "--config.eval_split=test[:100]",
    "--config.log_every_steps=5", "--config.eval_every_steps=15", "--config.write_report=False",
    "--eval=dense=multicrop,mode=dense,scales=(28,36)"]
# Below, warmup_epochs=0: the default's 0.5 epochs of warmup would keep the learning rate near 0 in these short runs.
TEACHER_RUN = ["--config.num_train_steps=10", "--config.batch_size=64", "--config.schedule.warmup_epochs=0",
               "--config.eval_split=test[:200]", "--config.log_every_steps=5", "--config.write_report=False"]
STUDENT_RUN = [f"--config.distill.teacher={TEACHER}", "--config.num_train_steps=30", "--config.batch_size=64",
               "--config.schedule.warmup_epochs=0", "--config.eval_split=test[:200]", "--config.log_every_steps=10",
               "--config.eval_every_steps=15", "--config.write_report=False"]
RESUMED = ["--config.num_train_steps=40", "--config.batch_size=64", "--config.schedule.warmup_epochs=0",
           "--config.eval_split=test[:200]", "--config.log_every_steps=5", "--config.eval_every_steps=20",
           "--config.checkpoint_every_steps=1000", "--config.write_report=False"]
SIGTERM_AFTER_STEP = 10  # a logged step far enough from the last (40) that the signal always lands in the run
EXIT_PREEMPTED = 75


def _command(config: str, workdir: str, overrides: list[str]) -> list[str]:
    """The command line that trains `config` in `workdir`."""
    return [sys.executable, "-m", "imagenet_jax.main", f"--config={config}", f"--workdir={workdir}",
            "--config.data_dir=" + DATA_DIR, *overrides]


def _filled(command: list[str], values: dict[str, str]) -> list[str]:
    """`command` with the placeholders of `values` replaced."""
    filled = []
    for argument in command:
        for placeholder, value in values.items():
            argument = argument.replace(placeholder, value)
        filled.append(argument)
    return filled


def _env() -> dict[str, str]:
    """The subprocess environment: this package first on the path, one CPU device."""
    return {**os.environ, "PYTHONPATH": REPO, **DEVICE_ENV}


def _start(command: list[str], **kwargs) -> subprocess.Popen:
    """Starts `command` as recorded runs were: env as _env, on CORES of the cores this process may use (a child
    inherits the affinity of the thread that starts it, so it is set around the start, not in a preexec_fn)."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < CORES:
        pytest.fail(f"the golden values were computed on {CORES} cores; this process may use {len(available)}")
    os.sched_setaffinity(0, available[:CORES])
    try:
        return subprocess.Popen(command, cwd=REPO, env=_env(), text=True, **kwargs)
    finally:
        os.sched_setaffinity(0, available)


def _train(config: str, workdir: str, overrides: list[str], values: dict[str, str]) -> None:
    """Trains `config` in `workdir` to the end in a fresh process; fails with the log's tail if it fails."""
    command = _filled(_command(config, workdir, overrides), values)
    process = _start(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, f"{' '.join(command)} exited {process.returncode}:\n{stderr[-3000:]}"


def _trajectory(workdir: str) -> list[dict]:
    """The lines of `workdir`'s metrics.jsonl without DROPPED_KEYS."""
    return [{key: value for key, value in line.items() if key not in DROPPED_KEYS} for line in read_metrics(workdir)]


def _checkpoint_steps(workdir: str) -> list[int]:
    """The steps of the checkpoints kept in `workdir`/checkpoints."""
    return sorted(int(name) for name in os.listdir(os.path.join(workdir, "checkpoints")) if name.isdigit())


def _record_of_run(config: str, workdir: str, overrides: list[str]) -> dict:
    """What is recorded of one finished run: its config and overrides (placeholders kept), lines, checkpoints."""
    return {"config": config, "overrides": overrides, "lines": _trajectory(workdir),
            "checkpoints": _checkpoint_steps(workdir)}


def _machine() -> dict:
    """Where the numbers were computed: what XLA's CPU code depends on."""
    info = {}
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())  # the first processor's
    flags = set(info.get("flags", info.get("Features", "")).split())
    return {"cpu": info.get("model name", platform.processor()), "machine": platform.machine(),
            "isa": [flag for flag in ISA_FLAGS if flag in flags], "cores_used": CORES,
            "cores_available": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "jax": metadata.version("jax"), "jaxlib": metadata.version("jaxlib")}


def _canonical(value) -> str:
    """`value` as JSON text: equal texts are equal bits for floats (and 0 differs from 0.0)."""
    return json.dumps(value, sort_keys=True)


def _first_difference(recorded: list[dict], current: list[dict]) -> str | None:
    """None if the lines are identical, else the first differing line and each of its differing keys."""
    for index, (want, got) in enumerate(zip(recorded, current)):
        if _canonical(want) != _canonical(got):
            absent = "<absent>"
            keys = [key for key in [*want, *(key for key in got if key not in want)]
                    if _canonical(want.get(key, absent)) != _canonical(got.get(key, absent))]
            details = "\n".join(f"    {key}: recorded {want.get(key, absent)!r}, now {got.get(key, absent)!r}"
                                for key in keys)
            return (f"line {index + 1} of metrics.jsonl (step {want.get('step')}, split {want.get('split')!r}) "
                    f"differs in {keys}:\n{details}\n  recorded: {_canonical(want)}\n  now:      {_canonical(got)}")
    if len(recorded) != len(current):
        extra = current[len(recorded)] if len(current) > len(recorded) else None
        missing = recorded[len(current)] if len(recorded) > len(current) else None
        return (f"{len(current)} lines instead of the recorded {len(recorded)}; first "
                + (f"missing line: {_canonical(missing)}" if missing else f"extra line: {_canonical(extra)}"))
    return None


def _same_machine(recorded_on: dict, machine: dict) -> bool:
    """Whether a recording was made where this machine computes the same bits (all but the cores available)."""
    return all(recorded_on.get(key) == value for key, value in machine.items() if key != "cores_available")


def _within(key: str, want, got) -> bool:
    """Whether `got` agrees with `want` for `key` within ACROSS_MACHINES (exactly for the run's shape)."""
    if key in ACROSS_MACHINES:
        kind, bound = ACROSS_MACHINES[key]
        if isinstance(want, (int, float)) and isinstance(got, (int, float)):
            scale = abs(want) if kind == "relative" else 1.0
            return abs(got - want) <= bound * scale
    return _canonical(want) == _canonical(got)


def _first_difference_across_machines(recorded: list[dict], current: list[dict]) -> str | None:
    """None if the lines agree within ACROSS_MACHINES, else the first line that does not and its keys."""
    if len(recorded) != len(current):
        return f"{len(current)} lines instead of the recorded {len(recorded)}"
    for index, (want, got) in enumerate(zip(recorded, current)):
        absent = "<absent>"
        keys = [key for key in [*want, *(key for key in got if key not in want)]
                if not _within(key, want.get(key, absent), got.get(key, absent))]
        if keys:
            details = "\n".join(f"    {key}: recorded {want.get(key, absent)!r}, now {got.get(key, absent)!r} "
                                f"(bound {ACROSS_MACHINES.get(key, ('exact', 0))})" for key in keys)
            return (f"line {index + 1} of metrics.jsonl (step {want.get('step')}, split {want.get('split')!r}) "
                    f"differs beyond rounding in {keys}:\n{details}")
    return None


def _golden_path(scenario: str) -> Path:
    """tests/golden/<scenario>.json."""
    return GOLDEN_DIR / f"{scenario}.json"


def _recordings(scenario: str) -> list[dict]:
    """The recordings ({recorded_on, runs}) of `scenario`, one per machine."""
    path = _golden_path(scenario)
    assert path.exists(), f"{path} is missing: record it with IMAGENET_JAX_RECORD_GOLDEN=1 (module docstring)"
    return json.loads(path.read_text())["recordings"]


def _this_machines(recordings: list[dict]) -> dict | None:
    """The recording made on a machine like this one, if any."""
    machine = _machine()
    return next((recording for recording in recordings if _same_machine(recording["recorded_on"], machine)), None)


def _check_runs(path: Path, recording: dict, runs: dict[str, dict], exact: bool) -> None:
    """Fails naming the first difference between `runs` and one recording: bit for bit, or across machines."""
    where = f"(recorded on {recording['recorded_on']}; this machine: {_machine()})"
    recorded_runs = recording["runs"]
    assert set(recorded_runs) == set(runs), f"{path}: runs {sorted(recorded_runs)}, this test has {sorted(runs)}"
    for name, run in runs.items():
        recorded = recorded_runs[name]
        scenario_now = [run["config"], *run["overrides"]]
        assert [recorded["config"], *recorded["overrides"]] == scenario_now, (
            f"{path} [{name}]: the test's config or overrides changed since recording:\n  recorded: "
            f"{[recorded['config'], *recorded['overrides']]}\n  now:      {scenario_now}\n"
            "re-record only if the scenario is meant to change")
        compare = _first_difference if exact else _first_difference_across_machines
        difference = compare(recorded["lines"], run["lines"])
        assert difference is None, f"{path} [{name}]: {difference}\n{where}"
        if "checkpoints" in run:
            assert recorded["checkpoints"] == run["checkpoints"], (
                f"{path} [{name}]: checkpoints kept at steps {run['checkpoints']}, recorded "
                f"{recorded['checkpoints']}\n{where}")


def _check_against_golden(scenario: str, runs: dict[str, dict]) -> None:
    """Compares `runs` with tests/golden/<scenario>.json: bit for bit with this machine's recording if there is
    one, else within ACROSS_MACHINES with every recording (and warns that this machine has none)."""
    path, recordings = _golden_path(scenario), _recordings(scenario)
    own = _this_machines(recordings)
    if own is not None:
        _check_runs(path, own, runs, exact=True)
        return
    for recording in recordings:
        _check_runs(path, recording, runs, exact=False)
    warnings.warn(f"{path}: no recording for this machine ({_machine()}); compared within ACROSS_MACHINES only. "
                  "Record it with IMAGENET_JAX_RECORD_GOLDEN=add (module docstring) to compare bit for bit.",
                  stacklevel=2)


def _write_golden(scenario: str, runs: dict[str, dict]) -> None:
    """Writes this machine's recording to tests/golden/<scenario>.json: alone (mode 1), or (mode add) next to
    the other machines' recordings once `runs` agrees with each of them within ACROSS_MACHINES."""
    path, machine = _golden_path(scenario), _machine()
    others = []
    if RECORD_MODE == "add" and path.exists():
        others = [recording for recording in _recordings(scenario)
                  if not _same_machine(recording["recorded_on"], machine)]
        for recording in others:
            _check_runs(path, recording, runs, exact=False)
    GOLDEN_DIR.mkdir(exist_ok=True)
    document = {"scenario": scenario, "dropped_keys": sorted(DROPPED_KEYS),
                "recordings": [*others, {"recorded_on": machine, "runs": runs}]}
    path.write_text(json.dumps(document, indent=1) + "\n")


def _record_or_compare(scenario: str, scenario_runs, tmp_path: Path) -> None:
    """Compares one execution of `scenario_runs(root)` (-> {run name: record}) with the golden file; when
    recording, executes it twice in fresh directories and writes the file only if both agree exactly."""
    first = scenario_runs(tmp_path / "first")
    if not RECORD:
        _check_against_golden(scenario, first)
        return
    second = scenario_runs(tmp_path / "second")
    for name in first:
        difference = _first_difference(first[name]["lines"], second[name]["lines"])
        assert difference is None, f"{scenario} [{name}] is not reproducible run to run: {difference}"
        assert first[name].get("checkpoints") == second[name].get("checkpoints")
    _write_golden(scenario, first)


def test_a_machine_with_its_own_recording_is_compared_bit_for_bit(monkeypatch):
    """The recording of this machine is chosen (whatever its cores available), and then one last bit fails."""
    here = {**_machine(), "cores_available": 64}
    elsewhere = {**here, "cpu": "Another CPU"}
    monkeypatch.setattr(sys.modules[__name__], "_machine", lambda: here)
    line = {"step": 10, "split": "train", "loss": 2.25, "learning_rate": 0.1}
    recording = {"recorded_on": here, "runs": {"run": {"config": "c", "overrides": [], "lines": [line]}}}
    assert _this_machines([{**recording, "recorded_on": elsewhere}, recording]) is recording
    assert _this_machines([{**recording, "recorded_on": elsewhere}]) is None
    run = {"config": "c", "overrides": [], "lines": [{**line, "loss": float(np.nextafter(2.25, 3.0))}]}
    with pytest.raises(AssertionError, match=r"differs in \['loss'\]"):
        _check_runs(Path("golden.json"), recording, {"run": run}, exact=True)
    _check_runs(Path("golden.json"), recording, {"run": run}, exact=False)


def test_across_machines_rounding_passes_and_a_changed_shape_or_metric_fails():
    """Within ACROSS_MACHINES: losses to 5% relative, accuracies to 0.06; steps, rates and counts exactly."""
    want = {"step": 30, "split": "test", "loss": 2.0, "top1": 0.5, "num_examples": 200, "learning_rate": 0.1}
    assert _first_difference_across_machines([want], [{**want, "loss": 2.09, "top1": 0.55}]) is None
    for changed, key in [({"loss": 2.11}, "loss"), ({"top1": 0.57}, "top1"), ({"num_examples": 199}, "num_examples"),
                         ({"learning_rate": 0.1000001}, "learning_rate"), ({"split": "train"}, "split"),
                         ({"grad_norm": 1.0}, "grad_norm")]:
        difference = _first_difference_across_machines([want], [{**want, **changed}])
        assert difference is not None and f"['{key}']" in difference, (changed, difference)
    assert "2 lines instead of the recorded 1" in _first_difference_across_machines([want], [want, want])


def test_recording_mode_add_keeps_other_machines_and_mode_1_replaces_them(tmp_path, monkeypatch):
    """add: this machine's recording joins another machine's if within ACROSS_MACHINES, else nothing is written;
    1: this machine's recording alone."""
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "GOLDEN_DIR", tmp_path)
    line = {"step": 10, "split": "train", "loss": 2.25, "learning_rate": 0.1}
    elsewhere = {**_machine(), "cpu": "Another CPU"}
    document = {"scenario": "s", "dropped_keys": [], "recordings": [
        {"recorded_on": elsewhere, "runs": {"run": {"config": "c", "overrides": [], "lines": [line]}}}]}
    (tmp_path / "s.json").write_text(json.dumps(document))
    monkeypatch.setattr(module, "RECORD_MODE", "add")
    with pytest.raises(AssertionError, match="differs beyond rounding"):
        _write_golden("s", {"run": {"config": "c", "overrides": [], "lines": [{**line, "loss": 3.0}]}})
    assert json.loads((tmp_path / "s.json").read_text()) == document
    _write_golden("s", {"run": {"config": "c", "overrides": [], "lines": [{**line, "loss": 2.2500001}]}})
    machines = [recording["recorded_on"] for recording in _recordings("s")]
    assert machines == [elsewhere, _machine()]
    monkeypatch.setattr(module, "RECORD_MODE", "1")
    _write_golden("s", {"run": {"config": "c", "overrides": [], "lines": [line]}})
    assert [recording["recorded_on"] for recording in _recordings("s")] == [_machine()]


@pytest.mark.slow
def test_default_job_first_60_steps_equal_the_recorded_metrics(tmp_path, fashion_mnist_dir):
    """configs/default.py unchanged but for its length and logging: train lines, evals at 30 and 60, checkpoints."""
    def runs(root: Path) -> dict[str, dict]:
        workdir = str(root / "default")
        _train("configs/default.py", workdir, DEFAULT_JOB, {DATA_DIR: fashion_mnist_dir})
        return {"default": _record_of_run("configs/default.py", workdir, DEFAULT_JOB)}

    _record_or_compare("default", runs, tmp_path)


@pytest.mark.slow
def test_vgg_run_with_dense_evaluation_equals_the_recorded_metrics(tmp_path, fashion_mnist_dir):
    """A tiny vgg_small with BN: train lines and its plain and dense (Q=28, 36) eval lines."""
    config = "configs/ablations/fashion_mnist.py:vgg_bn"

    def runs(root: Path) -> dict[str, dict]:
        workdir = str(root / "vgg")
        _train(config, workdir, VGG_DENSE, {DATA_DIR: fashion_mnist_dir})
        return {"vgg_dense": _record_of_run(config, workdir, VGG_DENSE)}

    _record_or_compare("vgg_dense", runs, tmp_path)


@pytest.mark.slow
def test_distilled_student_and_its_teacher_equal_the_recorded_metrics(tmp_path, fashion_mnist_dir):
    """A 10-step default-config teacher, then configs/distill.py's student taught by its workdir for 30 steps."""
    def runs(root: Path) -> dict[str, dict]:
        teacher, student = str(root / "teacher"), str(root / "student")
        values = {DATA_DIR: fashion_mnist_dir, TEACHER: teacher}
        _train("configs/default.py", teacher, TEACHER_RUN, values)
        _train("configs/distill.py", student, STUDENT_RUN, values)
        return {"teacher": _record_of_run("configs/default.py", teacher, TEACHER_RUN),
                "student": _record_of_run("configs/distill.py", student, STUDENT_RUN)}

    _record_or_compare("distill", runs, tmp_path)


def _logged_steps(workdir: str) -> list[int]:
    """The steps of the complete lines of `workdir`/metrics.jsonl so far (the run may be writing one)."""
    try:
        with open(os.path.join(workdir, "metrics.jsonl")) as stream:
            text = stream.read()
    except FileNotFoundError:
        return []
    return [json.loads(line)["step"] for line in text.split("\n")[:-1] if line.strip()]


def _preempted_and_resumed(workdir: str, data_dir: str) -> tuple[int, list[dict], list[dict]]:
    """Runs RESUMED, sends SIGTERM once step SIGTERM_AFTER_STEP is logged (the run saves and exits 75), then reruns
    the same command to the end: (the step it stopped at, the lines before the rerun, the lines after it)."""
    command = _filled(_command("configs/default.py", workdir, RESUMED), {DATA_DIR: data_dir})
    process = _start(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not any(step >= SIGTERM_AFTER_STEP for step in _logged_steps(workdir)):
        assert process.poll() is None, f"the run ended before step {SIGTERM_AFTER_STEP}:\n{process.stderr.read()}"
        assert time.monotonic() < deadline, f"step {SIGTERM_AFTER_STEP} was not logged within 10 minutes"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == EXIT_PREEMPTED, f"SIGTERM gave exit {process.returncode}:\n{stderr[-3000:]}"
    stopped_at = _checkpoint_steps(workdir)[-1]
    assert SIGTERM_AFTER_STEP <= stopped_at < 40, f"preempted at step {stopped_at}: nothing left to resume"
    before = _trajectory(workdir)
    _train("configs/default.py", workdir, RESUMED, {DATA_DIR: data_dir})
    return stopped_at, before, _trajectory(workdir)


@pytest.mark.slow
def test_run_preempted_by_sigterm_resumes_to_the_recorded_uninterrupted_metrics(tmp_path, fashion_mnist_dir):
    """SIGTERM mid-run saves and exits 75; rerunning ends with the recorded uninterrupted run's lines exactly."""
    config, values = "configs/default.py", {DATA_DIR: fashion_mnist_dir}
    own = None if RECORD else _this_machines(_recordings("resumed"))
    if own is not None:
        recorded = own["runs"]["uninterrupted"]
    else:  # recording, or no recording of this machine: the uninterrupted run here is what resuming must equal
        records = []
        for attempt in ("first", "second") if RECORD else ("first",):
            workdir = str(tmp_path / attempt)
            _train(config, workdir, RESUMED, values)
            records.append(_record_of_run(config, workdir, RESUMED))
        if RECORD:
            difference = _first_difference(records[0]["lines"], records[1]["lines"])
            assert difference is None, f"resumed [uninterrupted] is not reproducible run to run: {difference}"
        recorded = records[0]
    stopped_at, before, after = _preempted_and_resumed(str(tmp_path / "preempted"), fashion_mnist_dir)
    difference = _first_difference(recorded["lines"][:len(before)], before)
    assert difference is None, f"{_golden_path('resumed')}: before SIGTERM (stopped at {stopped_at}): {difference}"
    resumed = {"config": config, "overrides": RESUMED, "lines": after}  # its checkpoints add the stop step's
    difference = _first_difference(recorded["lines"], after)
    assert difference is None, f"resumed at step {stopped_at} differs from the uninterrupted run: {difference}"
    if RECORD:
        _write_golden("resumed", {"uninterrupted": recorded})
    else:
        _check_against_golden("resumed", {"uninterrupted": resumed})
