"""The command line entry points restart themselves once with tcmalloc preloaded, when it is installed.

XLA:CPU allocates each step's temporaries as large buffers. glibc's malloc serves large blocks with mmap and returns
them to the kernel on free, so every step faults its intermediates in afresh, zero-filled by the kernel: the default
job spent ~30% of its CPU time in the kernel (285k page faults a second). tcmalloc keeps freed memory for reuse:
the default job's train step went from 232 to 179 ms on the 2-core dev VM (BENCHMARKS.md, issue 28). glibc's
tunables cannot fix it (their mmap threshold stops at 32 MB, and thread arenas fall back to mmap anyway).

`make install` installs Debian's libtcmalloc-minimal4; without it the entry points run as they are and say how to
get it. IMAGENET_JAX_TCMALLOC=0 keeps the system allocator. The restart happens before anything heavy is imported,
and the preload is taken out of the environment again, so the subprocesses a run starts (browsers, git) get the
system allocator; our own entry points among them restart themselves the same way.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys

ENV_SWITCH = "IMAGENET_JAX_TCMALLOC"  # "0": keep the system allocator
_ENV_PRELOADED = "IMAGENET_JAX_TCMALLOC_PRELOADED"  # set across the restart: the path, so it happens at most once
LIBRARIES = ("tcmalloc_minimal", "tcmalloc")
INSTALL_HINT = "apt-get install libtcmalloc-minimal4"


def find_tcmalloc() -> str | None:
    """The shared library name of an installed tcmalloc, or None."""
    for name in LIBRARIES:
        found = ctypes.util.find_library(name)
        if found:
            return found
    return None


def tcmalloc_loaded() -> bool:
    """Whether tcmalloc is mapped into this process."""
    try:
        with open("/proc/self/maps") as maps:
            return "tcmalloc" in maps.read()
    except OSError:
        return False


def started_as_entry_point(orig_argv: list[str] | None = None) -> bool:
    """Whether this process was started as `python -m imagenet_jax...` or the `imagenet-jax` console script (not,
    say, a test runner that calls an entry point's main() in-process: it must never be replaced)."""
    args = list(sys.orig_argv if orig_argv is None else orig_argv)[1:]
    if "-m" in args:
        index = args.index("-m")
        return index + 1 < len(args) and args[index + 1].split(".")[0] == "imagenet_jax"
    return bool(args) and os.path.basename(args[0]) == "imagenet-jax"


def _wanted_but_missing(environ) -> bool:
    # Linux, not switched off, and not loaded yet.
    return sys.platform == "linux" and environ.get(ENV_SWITCH, "1") != "0" and not tcmalloc_loaded()


def restart_with_tcmalloc(environ: dict[str, str] | None = None) -> None:
    """Re-executes this command with tcmalloc preloaded (an entry point's process on Linux, tcmalloc installed, not
    switched off, not done yet); after the restart, takes the preload out of os.environ for child processes."""
    environ = os.environ if environ is None else environ
    preloaded = environ.pop(_ENV_PRELOADED, None)
    if preloaded is not None:  # the restarted process: children get the environment as it was
        kept = [entry for entry in environ.get("LD_PRELOAD", "").split(":") if entry and entry != preloaded]
        if kept:
            environ["LD_PRELOAD"] = ":".join(kept)
        else:
            environ.pop("LD_PRELOAD", None)
        return
    if not _wanted_but_missing(environ) or not started_as_entry_point():
        return
    library = find_tcmalloc()
    if library is None:
        return
    preload = ":".join(filter(None, (environ.get("LD_PRELOAD", ""), library)))
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]],
              {**environ, "LD_PRELOAD": preload, _ENV_PRELOADED: library})


def advice() -> str | None:
    """A one-line hint when this Linux process runs without tcmalloc, else None."""
    if not _wanted_but_missing(os.environ):
        return None
    return (f"CPU steps run ~25% slower with glibc's malloc than with tcmalloc ({INSTALL_HINT}; "
            f"imagenet_jax/parallel/allocator.py); {ENV_SWITCH}=0 silences this.")


def report() -> dict:
    """Whether tcmalloc is loaded here and in a child process, and the LD_PRELOAD children see."""
    child = subprocess.run([sys.executable, "-c", "from imagenet_jax.parallel import allocator; "
                            "print(allocator.tcmalloc_loaded())"], capture_output=True, text=True, check=True)
    return {"tcmalloc_loaded": tcmalloc_loaded(), "library": find_tcmalloc(),
            "child_tcmalloc_loaded": child.stdout.strip() == "True", "ld_preload": os.environ.get("LD_PRELOAD", ""),
            "argv": sys.argv[1:]}


if __name__ == "__main__":  # `python -m imagenet_jax.parallel.allocator`: is tcmalloc in use here?
    restart_with_tcmalloc()
    print(json.dumps(report()))
