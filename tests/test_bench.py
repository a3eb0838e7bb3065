"""Issue 7: the benchmark script keeps working on a CPU (its small version).

Only that it runs and reports every measurement: timings are the script's output,
never asserted (these machines are shared and noisy).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Issue 18: the GPU machine has torch, torchvision, pillow, numpy, tqdm and no dvc, dvclive
# or jsonargparse; bench_perf.py runs there from the source tree, and needs no Lightning.
ABSENT = ("dvc", "dvclive", "jsonargparse", "pytorch_lightning", "lightning", "torchmetrics")
RUN_WITHOUT = """
import runpy, sys
absent = set(sys.argv[1].split(","))
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in absent:
            raise ModuleNotFoundError(f"No module named {name!r} (absent here)", name=name)
sys.meta_path.insert(0, Absent())
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_bench_perf_measures_everything_on_a_cpu(tmp_path):
    out = tmp_path / "perf.json"
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
    script = str(ROOT / "bench" / "bench_perf.py")
    cmd = [sys.executable, "-c", RUN_WITHOUT, ",".join(ABSENT), script, "--device", "cpu"]
    proc = subprocess.run(
        [*cmd, "--steps", "2", "--out", str(out)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["torch"] and report["setting"]["width"] == 0.0625
    assert report["complete"] is True and report["fast_path"] == []  # all CUDA-only
    runs = [report["train"][k] for k in ("A", "D", "E", "reference_fp32_eager")]
    runs += [report[k] for k in ("input_pipeline", "input_pipeline_prepared")]
    runs.append(report["input_pipeline_device_decode"])
    runs += [r[p] for r in report["eval"].values() for p in ("dense", "multi_crop")]
    for r in runs:
        assert math.isfinite(r["images_per_s"]) and r["images_per_s"] > 0
    assert sorted(report["eval"], key=int) == ["37", "55", "73"]
    for line in ("input pipeline, JPEG decoded on cpu", "dense / multi-crop at Q=73"):
        assert line in proc.stdout
    assert "train D fast path:" in proc.stderr  # each measurement as it comes


def test_the_absent_packages_are_absent_in_that_run(tmp_path):
    """The check above can fail: importing one of them there is an error."""
    script = tmp_path / "uses_dvclive.py"
    script.write_text("import numpy\nfrom dvclive.lightning import DVCLiveLogger\n")
    cmd = [sys.executable, "-c", RUN_WITHOUT, ",".join(ABSENT), str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode != 0 and "No module named 'dvclive' (absent here)" in proc.stderr


def test_gpu_run_script_parses_and_refuses_a_missing_outdir():
    script = ROOT / "bench" / "gpu_run.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage: bash bench/gpu_run.sh OUTDIR" in proc.stderr
