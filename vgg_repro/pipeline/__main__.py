"""``python -m vgg_repro.pipeline STAGE ...``: any stage by name (``dvc.yaml`` runs the modules).

python -m vgg_repro.pipeline train A s256      # = python -m vgg_repro.pipeline.train A s256
python -m vgg_repro.pipeline pin-data          # = python -m vgg_repro.pipeline.check_data --pin
python -m vgg_repro.pipeline pin-data transfer # the same for the Appendix B data
"""

from __future__ import annotations

import importlib
import sys

from vgg_repro.pipeline.common import run_stage

STAGES = {
    "copy-data": "copy_data",
    "check-data": "check_data",
    "train": "train",
    "evaluate": "evaluate",
    "fuse": "fuse",
    "transfer": "transfer",
    "report": "report",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in (*STAGES, "pin-data"):
        names = ", ".join([*STAGES, "pin-data"])
        print(f"usage: python -m vgg_repro.pipeline STAGE [ARGS]; STAGE is one of {names}")
        return 2
    if argv[0] == "pin-data":
        argv = ["check-data", "--pin", *argv[1:]]
    module = importlib.import_module(f"vgg_repro.pipeline.{STAGES[argv[0]]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    run_stage(sys.argv[1] if len(sys.argv) > 1 else "pipeline", lambda argv: main(argv))
