"""The train command's flags, defined once as absl flags (ml_collections' --config FILE[:VARIANT] and its
--config.KEY=VALUE overrides are absl flags): imagenet_jax.main reads them; `train --help` lists them.

Importing this module defines them on absl's global FLAGS; `define(FlagValues())` defines them anywhere else (the
tests parse README command lines with it, leaving the global flags alone).
"""

from __future__ import annotations

from absl import flags
from ml_collections import config_flags

from imagenet_jax.cli.shared import WORKDIR as SHARED_WORKDIR

WORKDIR_DEFAULT = "runs/<config name> (runs/<name>/<variant> for FILE.py:VARIANT) under the current directory"


HELP = {
    "config": "the config file, FILE.py or FILE.py:VARIANT (configs/); --config.KEY=VALUE overrides any key of it "
              "(imagenet_jax/config/base.py)",
    "workdir": f"{SHARED_WORKDIR.help} and TensorBoard logs; default {WORKDIR_DEFAULT}",
    "eval": "an eval set added to config.evals, NAME=TYPE[,key=value...] (repeatable), e.g. "
            "minival=classification,holdout=10000 or test_per_class=per_class; types: evaluate --list",
    "coordinator_address": "host:port of process 0 (multi-process runs)",
    "num_processes": "number of processes (multi-process runs)",
    "process_id": "this process's index (multi-process runs)",
    "distributed": "initialize jax.distributed: 'auto' when the flags above are given or a multi-process SLURM job "
                   "or TPU pod is detected (JAX then finds coordinator and ranks itself)",
}


def define(flag_values: flags.FlagValues, sys_argv: list[str] | None = None) -> dict[str, flags.FlagHolder]:
    """Defines the train flags on `flag_values`; `sys_argv`: the command line the --config.KEY overrides are read
    from (ml_collections reads sys.argv by default). Returns {name: holder}, in the order --help lists them."""
    holders = [
        config_flags.DEFINE_config_file("config", None, HELP["config"], flag_values=flag_values, lock_config=True,
                                        sys_argv=sys_argv),
        flags.DEFINE_string(SHARED_WORKDIR.name, None, HELP["workdir"], flag_values=flag_values),
        flags.DEFINE_multi_string("eval", [], HELP["eval"], flag_values=flag_values),
        flags.DEFINE_string("coordinator_address", None, HELP["coordinator_address"], flag_values=flag_values),
        flags.DEFINE_integer("num_processes", None, HELP["num_processes"], flag_values=flag_values),
        flags.DEFINE_integer("process_id", None, HELP["process_id"], flag_values=flag_values),
        flags.DEFINE_enum("distributed", "auto", ["auto", "on", "off"], HELP["distributed"], flag_values=flag_values),
    ]
    return {holder.name: holder for holder in holders}


TRAIN_FLAGS = define(flags.FLAGS)
CONFIG = TRAIN_FLAGS["config"]
WORKDIR = TRAIN_FLAGS["workdir"]
EVALS = TRAIN_FLAGS["eval"]
COORDINATOR = TRAIN_FLAGS["coordinator_address"]
NUM_PROCESSES = TRAIN_FLAGS["num_processes"]
PROCESS_ID = TRAIN_FLAGS["process_id"]
DISTRIBUTED = TRAIN_FLAGS["distributed"]
