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


def test_bench_perf_measures_everything_on_a_cpu(tmp_path):
    out = tmp_path / "perf.json"
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, str(ROOT / "bench" / "bench_perf.py"), "--device", "cpu"]
    proc = subprocess.run(
        [*cmd, "--steps", "2", "--out", str(out)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["torch"] and report["setting"]["width"] == 0.0625
    runs = [report["train"][k] for k in ("A", "D", "E", "reference_fp32_eager")]
    runs += [report[k] for k in ("input_pipeline", "input_pipeline_prepared")]
    runs.append(report["input_pipeline_device_decode"])
    runs += [r[p] for r in report["eval"].values() for p in ("dense", "multi_crop")]
    for r in runs:
        assert math.isfinite(r["images_per_s"]) and r["images_per_s"] > 0
    assert sorted(report["eval"], key=int) == ["37", "55", "73"]
    for line in ("input pipeline, JPEG decoded on cpu", "dense / multi-crop at Q=73"):
        assert line in proc.stdout
