"""The reference run's three training seeds, side by side (not a DVC stage)::

    python -m vgg_repro.pipeline.seeds reports/seeds/seed-*.json --out reports/seeds/summary.md

The paired tests of the report (:mod:`vgg_repro.pipeline.claims`) measure how sure a
verdict is over the validation images, not over training noise: another seed, or
another machine's floating point, trains other nets. Each input file is the
``reports/results.json`` of one full run of the default profile, made by
``dvc exp run -S profiles.miniature.train.seed=N`` (``bench/run_seeds.py`` runs
them). A verdict is called significant here only when it holds, with the same
sign, in every seed; each error is given with its seed-to-seed spread.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from vgg_repro.errors import ConfigError
from vgg_repro.files import write_text
from vgg_repro.pipeline.common import run_stage, write_json

__all__ = ["NOT_RUN", "combine_verdicts", "error_spread", "main", "render_summary", "summarise"]

NOT_RUN = "not run"


def combine_verdicts(verdicts: list[str]) -> str:
    """The verdict over seeds: a significant one only when every seed gives it.

    >>> combine_verdicts(["agrees", "agrees", "agrees"])
    'agrees'
    >>> combine_verdicts(["agrees", "inconclusive", "agrees"])
    'inconclusive'
    >>> combine_verdicts(["disagrees"] * 3)
    'disagrees'
    >>> combine_verdicts(["agrees", "not run", "agrees"])
    'inconclusive'
    """
    if verdicts and all(v == verdicts[0] for v in verdicts) and verdicts[0] != "inconclusive":
        return verdicts[0]
    return "inconclusive"


def error_spread(errors: list[float]) -> dict:
    """Mean, smallest, largest and sample standard deviation of errors over seeds.

    >>> error_spread([10.0, 12.0, 14.0])
    {'mean': 12.0, 'min': 10.0, 'max': 14.0, 'std': 2.0}
    """
    std = statistics.stdev(errors) if len(errors) > 1 else 0.0
    return {
        "mean": round(statistics.fmean(errors), 4),
        "min": min(errors),
        "max": max(errors),
        "std": round(std, 4),
    }


def _row_key(row: dict) -> str:
    return f"{'+'.join(row['nets'])} {row['row']} {row['setting']}"


def summarise(runs: dict[str, dict]) -> dict:
    """Claims and errors of several runs (name -> results.json), seed by seed.

    Raises:
        ConfigError: fewer than two runs, or runs of different profiles.
    """
    if len(runs) < 2:
        raise ConfigError(f"need the results of at least two seeds, got {len(runs)}")
    profiles = {r.get("profile") for r in runs.values()}
    if len(profiles) != 1:
        raise ConfigError(f"the runs are of different profiles: {sorted(map(str, profiles))}")
    names = list(runs)
    claim_ids = list(dict.fromkeys(c["id"] for r in runs.values() for c in r["claims"]))
    claims = []
    for cid in claim_ids:
        # A run made before a claim existed has no verdict on it: "not run", which is
        # not a verdict that holds in every seed.
        verdicts = [
            next((c["verdict"] for c in runs[n]["claims"] if c["id"] == cid), NOT_RUN)
            for n in names
        ]
        claims.append({"id": cid, "verdicts": verdicts, "verdict": combine_verdicts(verdicts)})
    rows = {}
    for n in names:
        for row in runs[n]["rows"]:
            rows.setdefault(_row_key(row), {})[n] = float(row["top1_error"])
    errors = [
        {"row": key, "top1_error": by_run, **error_spread(list(by_run.values()))}
        for key, by_run in rows.items()
        if len(by_run) == len(names)
    ]
    return {"profile": profiles.pop(), "runs": names, "claims": claims, "errors": errors}


def render_summary(summary: dict) -> str:
    """The summary as Markdown: the claims table, then the errors with their spread."""
    names = summary["runs"]
    lines = [f"# {len(names)} training seeds of the `{summary['profile']}` profile", ""]
    lines += ["| claim | " + " | ".join(names) + " | over the seeds |"]
    lines += ["|---" * (len(names) + 2) + "|"]
    for c in summary["claims"]:
        lines.append(f"| {c['id']} | " + " | ".join(c["verdicts"]) + f" | {c['verdict']} |")
    lines += [
        "",
        "A claim agrees or disagrees over the seeds only when every seed's paired test "
        "gives that verdict; otherwise it is inconclusive.",
        "",
        "| row | " + " | ".join(names) + " | mean | spread (max - min) |",
        "|---" * (len(names) + 3) + "|",
    ]
    for e in summary["errors"]:
        values = " | ".join(f"{e['top1_error'][n]:.1f}" for n in names)
        lines.append(f"| {e['row']} | {values} | {e['mean']:.1f} | {e['max'] - e['min']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m vgg_repro.pipeline.seeds RESULTS.json ... --out SUMMARY.md``."""
    parser = argparse.ArgumentParser(prog="python -m vgg_repro.pipeline.seeds")
    parser.add_argument("results", nargs="+", type=Path, help="results.json of each seed")
    parser.add_argument("--out", type=Path, required=True, help="Markdown summary to write")
    args = parser.parse_args(argv)
    runs = {}
    for path in args.results:
        try:
            runs[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot read the results file {path}: {err}") from None
    summary = summarise(runs)
    write_json(args.out.with_suffix(".json"), summary)
    write_text(args.out, render_summary(summary))
    for c in summary["claims"]:
        print(f"claim {c['id']}: {c['verdict']} ({', '.join(c['verdicts'])})")
    return 0


if __name__ == "__main__":
    run_stage("seeds", main)
