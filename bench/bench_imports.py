"""What a stage pays before it computes anything: the interpreter and its imports.

    python bench/bench_imports.py                  # 3 runs of each, the median
    python bench/bench_imports.py --runs 5 --out /tmp/imports.json

Every stage of ``dvc repro`` is a new Python process. This times, in fresh
processes, ``python -c "import M"`` for the modules the stages start with (an
evaluation stage: torch; a training stage: the training CLI, which imports
Lightning) and for the libraries that Lightning's import pulls in through
torchmetrics, and prints each as seconds and as a multiple of the bare interpreter
(``python -c pass``) in the same run. This is a benchmark: it asserts nothing.
Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODULES = (
    "torch",
    "torchvision",
    "scipy.signal",
    "torchmetrics",
    "pytorch_lightning",
    "sklearn.svm",
    "vgg_repro.evaluation.runner",
    "vgg_repro.training.cli",
)


def seconds(statement: str, runs: int) -> float:
    """Median wall time of ``python -c statement`` in a fresh process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    bare = seconds("pass", args.runs)
    result = {"python -c pass": {"seconds": round(bare, 3), "times_bare": 1.0}}
    for module in MODULES:
        s = seconds(f"import {module}", args.runs)
        result[f"import {module}"] = {"seconds": round(s, 3), "times_bare": round(s / bare, 1)}
    for name, figures in result.items():
        print(f"{name}: {figures['seconds']:.2f} s ({figures['times_bare']:g} x bare)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
