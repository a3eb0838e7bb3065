"""Wall time of the project's main job, `dvc repro`, from a fresh clone.

Clones the repository (its committed HEAD) into a temporary folder, optionally
switches the profile (by editing params.yaml there), pins the run to ``--cores``
CPU cores (2 by default: the budget is "10 minutes on a 2-core CPU"), runs
``dvc repro`` and writes what it measured as JSON::

    python bench/bench_repro.py                         # miniature, 2 cores
    python bench/bench_repro.py --profile smoke --output /tmp/smoke.json
    python bench/bench_repro.py --keep /tmp/repro-run   # keep the clone to inspect

The file records the wall time, the stages that ran with the seconds of each, the
machine (CPU count, the cores used, the load average before and after: other work
on a shared machine slows the run) and the versions. This is a benchmark, not a test: it asserts
nothing and exits with ``dvc repro``'s status.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def set_profile(repo: Path, profile: str) -> None:
    """Point params.yaml's ``profile:`` at another profile (what `-S profile=...` does)."""
    params = repo / "params.yaml"
    text, n = re.subn(r"(?m)^profile:\s*\S+", f"profile: {profile}", params.read_text())
    if n != 1:
        raise SystemExit(f"{params} has no top-level 'profile:' line")
    params.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="repository to clone")
    parser.add_argument("--profile", default=None, help="profile (default: params.yaml's)")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores to run on (0: all)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "repro.json")
    parser.add_argument("--keep", type=Path, default=None, help="clone here and keep it")
    args = parser.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="vgg-repro-bench-")) / "repo"
    if work.exists():
        shutil.rmtree(work)
    subprocess.run(["git", "clone", "--quiet", str(args.repo), str(work)], check=True)
    if args.profile:
        set_profile(work, args.profile)
    cores = sorted(os.sched_getaffinity(0))
    if args.cores:
        cores = cores[: args.cores]
    env = dict(os.environ, DVC_NO_ANALYTICS="1")

    def pin() -> None:
        os.sched_setaffinity(0, cores)

    load_before = os.getloadavg()
    start = time.perf_counter()
    # dvc's output is read as it comes, so that each stage gets the seconds from its
    # "Running stage" line to the next one (its command and DVC's bookkeeping after it).
    proc = subprocess.Popen(
        ["dvc", "repro"],
        cwd=work,
        env=env,
        preexec_fn=pin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines, ran, began = [], [], []
    for line in proc.stdout:
        lines.append(line)
        stage = re.search(r"Running stage '([^']+)'", line)
        if stage:
            ran.append(stage[1])
            began.append(time.perf_counter())
    proc.wait()
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    log = "".join(lines)
    ends = began[1:] + [start + wall]
    seconds = {name: round(end - at, 1) for name, at, end in zip(ran, began, ends, strict=True)}
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True
    ).stdout.strip()
    profile = (
        args.profile or re.search(r"(?m)^profile:\s*(\S+)", (work / "params.yaml").read_text())[1]
    )
    versions = {}
    for mod in ("torch", "pytorch_lightning", "dvc"):
        out = subprocess.run(
            [sys.executable, "-c", f"import {mod}; print({mod}.__version__)"],
            capture_output=True,
            text=True,
        )
        versions[mod] = out.stdout.strip()
    result = {
        "command": "dvc repro",
        "profile": profile,
        "returncode": proc.returncode,
        "wall_seconds": round(wall, 1),
        "stages_run": len(ran),
        "stages": ran,
        "stage_seconds": seconds,
        "before_first_stage_seconds": round((began[0] if began else start + wall) - start, 1),
        "cores_used": len(cores),
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "versions": versions,
        "commit": commit,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("profile", "returncode", "wall_seconds", "stages_run", "loadavg_after")
            }
        )
    )
    if proc.returncode:
        print(log[-4000:], file=sys.stderr)
    if not args.keep:
        shutil.rmtree(work.parent, ignore_errors=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
