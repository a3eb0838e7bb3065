"""Run the default profile with other training seeds, each in a fresh clone.

    python bench/run_seeds.py --seeds 2 3          # then commit reports/seeds/
    python -m vgg_repro.pipeline.seeds reports/seeds/seed-*.json --out reports/seeds/summary.md

For each seed: clone the repository's committed HEAD into a temporary folder, run
``dvc exp run -S profiles.miniature.train.seed=N`` there (the experiment changes
only that clone's workspace, never this one) and copy its ``reports/results.json``
to ``reports/seeds/seed-N.json`` here. Seed 1 is the reference run itself: copy
``reports/results.json`` to ``reports/seeds/seed-1.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_seed(seed: int, out: Path, profile: str = "miniature") -> float:
    """One seed's full run in a fresh clone; returns its wall time in seconds."""
    with tempfile.TemporaryDirectory(prefix=f"vgg-repro-seed{seed}-") as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
        start = time.perf_counter()
        subprocess.run(
            ["dvc", "exp", "run", "-S", f"profiles.{profile}.train.seed={seed}"],
            cwd=repo,
            check=True,
        )
        wall = time.perf_counter() - start
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo / "reports" / "results.json", out / f"seed-{seed}.json")
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "seeds")
    args = parser.parse_args(argv)
    for seed in args.seeds:
        before = os.getloadavg()[0]
        wall = run_seed(seed, args.out)
        after = os.getloadavg()[0]
        print(
            f"seed {seed}: {wall:.1f} s wall (load average {before:.2f} before, {after:.2f} "
            f"after), {args.out / f'seed-{seed}.json'}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
