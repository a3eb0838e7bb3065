"""How much a rerun on another CPU can change the numbers: net A under other kernels.

Floating point sums depend on the order of their terms, so the same code, data and
seed give other weights where torch runs other kernels: another vector instruction
family (an older CPU gets SSE4.1 code where this one gets AVX2) or another number of
threads. On one machine this retrains the miniature's net A (stage ``train_scratch@A``
then ``evaluate@A-s256``) three ways in a finished reference run's folder
(``bench/bench_repro.py --keep DIR``):

    python bench/kernel_families.py DIR --output /tmp/kernels.json

- ``baseline``: as the reference run (it should reproduce the ``model.pt`` that
  ``dvc.lock`` records, bit for bit);
- ``sse41``: ATen's default kernels, oneDNN and MKL limited to SSE4.1/4.2, as on a CPU
  without AVX;
- ``one-thread``: one intra-op thread instead of the machine's.

Prints, for each, the model's hash, the top-1 errors, and against the baseline the
images whose prediction changed and an exact McNemar test of the difference. A
measurement, not a test; the folder's net A and its metrics end as the last variant's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from scipy.stats import binomtest

VARIANTS = {
    "baseline": {},
    "sse41": {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    },
    "one-thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}
PROTOCOLS = ("single-scale", "multi-scale")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _locked_md5(run: Path, out: str) -> str | None:
    """The md5 that the run's dvc.lock records for an output: the reference run's."""
    stages = (yaml.safe_load((run / "dvc.lock").read_text()) or {}).get("stages", {})
    for stage in stages.values():
        for entry in stage.get("outs", []):
            if entry.get("path") == out:
                return entry.get("md5")
    return None


def _predictions(run: Path) -> dict:
    post = run / "posteriors" / "A-s256"
    return {p: np.load(post / f"{p}.npy").argmax(1) for p in PROTOCOLS} | {
        "labels": np.load(post / "labels.npy")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a finished reference run (bench_repro --keep)")
    parser.add_argument("--output", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    model = args.run / "models" / "A" / "s256" / "model.pt"
    reference = _locked_md5(args.run, "models/A/s256/model.pt")
    results, base = {"reference_model": reference}, None
    for name, env in VARIANTS.items():
        for module in ("train", "evaluate"):
            subprocess.run(
                [sys.executable, "-m", f"vgg_repro.pipeline.{module}", "A", "s256"],
                cwd=args.run, env=os.environ | env, check=True, capture_output=True,
            )  # fmt: skip
        pred = _predictions(args.run)
        row = {"env": env, "model": _md5(model)}
        for p in PROTOCOLS:
            right = pred[p] == pred["labels"]
            row[f"{p} top-1 error"] = round(100 * (1 - right.mean()), 2)
            if base is not None:
                was = base[p] == base["labels"]
                lost, gained = int((was & ~right).sum()), int((~was & right).sum())
                row[f"{p} changed"] = int((pred[p] != base[p]).sum())
                row[f"{p} McNemar p"] = (
                    binomtest(lost, lost + gained, 0.5).pvalue if lost + gained else 1.0
                )
        base = base or pred
        results[name] = row
        print(name, json.dumps(row), flush=True)
    print(f"images: {len(base['labels'])}; baseline reproduces dvc.lock's model.pt: "
          f"{results['baseline']['model'] == reference}")  # fmt: skip
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
