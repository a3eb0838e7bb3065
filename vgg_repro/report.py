"""The pipeline's report: Tables 3 to 6 for what was run, and a check of the paper's claims.

Run as the last stage of ``dvc repro`` (``python -m vgg_repro.pipeline report``)
from the metrics files of the ``evaluate`` and ``fuse`` stages; writes

- ``reports/results.json``: every result as a row, and the claims (the format the
  docs render, see ``docs/_ext/vgg_tables.py``);
- ``reports/report.md``: the same in the paper's table layout
  (:func:`vgg_repro.evaluation.render_table`) and the claims check in words;
- ``reports/depth.csv``: top-1 / top-5 error against weight layers (Table 3, S=256),
  the data of ``dvc plots show``'s depth plot.

A claim "holds" when our numbers go the paper's way by the rule stated next to
it; differences smaller than the sampling error of a small validation set say
little, so each of our errors is given with its binomial standard error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from vgg_repro import models, paper
from vgg_repro.evaluation import render_table

__all__ = [
    "CLAIMS",
    "check_claims",
    "load_metrics",
    "main",
    "result_rows",
    "std_error",
    "training_runs",
]

METRICS = Path("metrics")
REPORTS = Path("reports")
ROW_S = {"s256": paper.S256, "s384": paper.S384, "jitter": paper.JITTER}

# The paper's conclusions (Sec. 4) with the rule that decides whether a run agrees.
CLAIMS = {
    "depth": "Depth lowers the error: top-1 error falls from A (11 layers) through B (13) "
    "to D (16) and E (19) (Table 3, S=256, single scale). Rule: the least-squares slope of "
    "top-1 error against weight layers over A, B, D, E is negative and the better of D and "
    "E beats A.",
    "lrn": "Local response normalisation does not help: A-LRN is no better than A "
    "(Table 3). Rule: A-LRN's top-1 error is not lower than A's.",
    "scale_jitter": "Scale jittering at training helps: for C, D and E the jittered net, "
    "tested at the middle scale, beats both fixed-S nets (Table 3). Rule: true for every "
    "one of C, D, E.",
    "multi_scale": "Multi-scale testing helps: three test scales beat one (Table 4 against "
    "Table 3). Rule: lower top-1 error on average over the nets, and for most of them.",
    "dense_multi_crop": "Dense and multi-crop evaluation are complementary: their "
    "combination beats each alone (Table 5, D and E jittered). Rule: true for D and E.",
    "fusion": "Fusing nets helps: averaging the posteriors of D and E beats each net "
    "(Table 6, multi-crop & dense). Rule: the fusion's top-1 error is below both nets'.",
}


def std_error(error_percent: float, n: int) -> float:
    """Binomial standard error of an error rate measured on ``n`` images, in percent.

    >>> round(std_error(20.0, 400), 2)
    2.0
    """
    p = error_percent / 100.0
    return 100.0 * math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))


def load_metrics(folder: Path = METRICS) -> dict[str, dict]:
    """Every metrics file of the evaluate and fuse stages, by stem (``D-jitter``...)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def _scale_label(result: dict) -> str:
    """``S=256``, ``S=[256,512]`` (the values actually used: 37, [37,73] in the miniature)."""
    lo, hi = result["checkpoints"][0].get("train_scale") or (None, None)
    return f"S={lo}" if lo == hi else f"S=[{lo},{hi}]"


def result_rows(metrics: dict[str, dict]) -> list[dict]:
    """The rows of ``results.json``: one per (net, training scale, protocol, test scales)."""
    rows = []
    for stem, entries in metrics.items():
        fusion = stem.startswith("fusion-")
        for result in entries.values():
            archs = [c["arch"] for c in result["checkpoints"]]
            rows.append(
                {
                    "net": "+".join(archs),
                    "train_scale": _scale_label(result),
                    "protocol": f"fusion:{'+'.join(archs)} {result['protocol']}"
                    if fusion
                    else result["protocol"],
                    "test_scales": list(result["scales"]),
                    "top1_error": round(float(result["top1_error"]), 4),
                    "top5_error": round(float(result["top5_error"]), 4),
                }
            )
    return rows


def _err(metrics: dict, stem: str, name: str) -> tuple[float, int] | None:
    entry = metrics.get(stem, {}).get(name)
    return (float(entry["top1_error"]), int(entry.get("n_images", 0))) if entry else None


def _fmt(label: str, value: tuple[float, int]) -> str:
    return f"{label} {value[0]:.1f}±{std_error(*value):.1f}"


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def check_claims(metrics: dict[str, dict]) -> list[dict]:
    """Each of the paper's conclusions (:data:`CLAIMS`): whether this run agrees, with numbers.

    Claims whose results were not run are left out.
    """
    claims = []

    def add(cid: str, holds: bool, ours: list[str], ref: list[str]) -> None:
        claims.append(
            {"id": cid, "holds": bool(holds), "ours": "; ".join(ours), "paper": "; ".join(ref)}
        )

    t3, t4, t5, t6 = paper.TABLE3, paper.TABLE4, paper.TABLE5, paper.TABLE6
    single = {k: _err(metrics, k, "single-scale") for k in metrics}
    multi = {k: _err(metrics, k, "multi-scale") for k in metrics}

    deep = [n for n in ("A", "B", "D", "E") if single.get(f"{n}-s256")]
    if len(deep) == 4:
        xs = [models.num_weight_layers(n) for n in deep]
        ys = [single[f"{n}-s256"][0] for n in deep]
        slope = _slope(xs, ys)
        ref = [f"{n} {t3[(n, paper.S256)][0]}" for n in deep]
        ref_slope = _slope(xs, [t3[(n, paper.S256)][0] for n in deep])
        add(
            "depth",
            slope < 0 and min(ys[2:]) < ys[0],
            [_fmt(n, single[f"{n}-s256"]) for n in deep] + [f"slope {slope:+.2f} per layer"],
            ref + [f"slope {ref_slope:+.2f} per layer"],
        )
    if single.get("A-s256") and single.get("A-LRN-s256"):
        a, lrn = single["A-s256"], single["A-LRN-s256"]
        add(
            "lrn",
            lrn[0] >= a[0],
            [_fmt("A", a), _fmt("A-LRN", lrn)],
            [f"A {t3[('A', paper.S256)][0]}", f"A-LRN {t3[('A-LRN', paper.S256)][0]}"],
        )
    nets = [n for n in "CDE" if all(single.get(f"{n}-{r}") for r in ROW_S)]
    if nets:
        ours, ref, ok = [], [], True
        for n in nets:
            e = {r: single[f"{n}-{r}"] for r in ROW_S}
            ok &= e["jitter"][0] < min(e["s256"][0], e["s384"][0])
            ours.append(f"{n}: " + ", ".join(_fmt(r, e[r]) for r in ROW_S))
            ref.append(f"{n}: " + ", ".join(f"{r} {t3[(n, ROW_S[r])][0]}" for r in ROW_S))
        add("scale_jitter", ok, ours, ref)
    pairs = [(k, single[k], multi[k]) for k in metrics if single.get(k) and multi.get(k)]
    if pairs:
        gains = [s[0] - m[0] for _, s, m in pairs]
        better = sum(g > 0 for g in gains)
        mean_gain = sum(gains) / len(gains)
        ref_pairs = [(k, t3[k], t4[k]) for k in t4 if k in t3]
        ref_gain = sum(a[0] - b[0] for _, a, b in ref_pairs) / len(ref_pairs)
        add(
            "multi_scale",
            mean_gain > 0 and better > len(gains) / 2,
            [
                f"multi-scale better for {better} of {len(gains)} nets",
                f"mean top-1 gain {mean_gain:+.2f} points",
            ],
            [
                f"better for {sum(a[0] > b[0] for _, a, b in ref_pairs)} of {len(ref_pairs)} nets",
                f"mean top-1 gain {ref_gain:+.2f} points",
            ],
        )
    protocols = ("multi-scale", "multi-crop", "dense+multi-crop")
    jit = [n for n in "DE" if all(_err(metrics, f"{n}-jitter", p) for p in protocols)]
    if jit:
        ours, ref, ok = [], [], True
        for n in jit:
            e = {p: _err(metrics, f"{n}-jitter", p) for p in protocols}
            ok &= e["dense+multi-crop"][0] < min(e["multi-scale"][0], e["multi-crop"][0])
            ours.append(
                f"{n}: "
                + ", ".join(_fmt(p.replace("multi-scale", "dense"), e[p]) for p in protocols)
            )
            ref.append(
                f"{n}: "
                + ", ".join(
                    f"{p} {t5[(n, p)][0]}" for p in ("dense", "multi-crop", "dense+multi-crop")
                )
            )
        add("dense_multi_crop", ok, ours, ref)
    fused = _err(metrics, "fusion-D+E", "dense+multi-crop")
    members = [_err(metrics, f"{n}-jitter", "dense+multi-crop") for n in "DE"]
    if fused and all(members):
        add(
            "fusion",
            fused[0] < min(m[0] for m in members),
            [_fmt("D+E", fused), _fmt("D", members[0]), _fmt("E", members[1])],
            [
                f"D+E {t6[(('D', 'E'), 'dense+multi-crop')][0]}",
                f"D {t5[('D', 'dense+multi-crop')][0]}",
                f"E {t5[('E', 'dense+multi-crop')][0]}",
            ],
        )
    return claims


def _table(metrics: dict, keys: list[str], names: list[str], title: str) -> str | None:
    results = [metrics[k][n] for k in keys for n in names if n in metrics.get(k, {})]
    return render_table(results, title=title) if results else None


def training_runs(metrics: dict) -> dict:
    """The seeds and environments the evaluated nets were trained with (issue 8).

    Read from the metrics files, which copy them from each ``model.pt``; one
    environment when the whole pipeline ran on one machine.
    """
    seeds, environments = set(), []
    for entries in metrics.values():
        for entry in entries.values():
            for ckpt in entry.get("checkpoints", []):
                if ckpt.get("seed") is not None:
                    seeds.add(int(ckpt["seed"]))
                env = ckpt.get("environment")
                if env and env not in environments:
                    environments.append(env)
    return {"seeds": sorted(seeds), "environments": environments}


def _environment_lines(runs: dict) -> list[str]:
    seeds = ", ".join(str(s) for s in runs["seeds"]) or "not recorded"
    lines = ["## Environment", "", f"Training seed: {seeds}.", ""]
    for env in runs["environments"]:
        lines += [f"Trained on {env.get('system')} {env.get('machine')} with:", ""]
        lines += ["| library | version |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(env.get("versions", {}).items())]
        lines.append("")
    return lines


def render_markdown(profile: str, info: dict, metrics: dict, claims: list[dict]) -> str:
    """``report.md``: the tables in the paper's layout and the claims check."""
    rows = [k for k in metrics if not k.startswith("fusion-")]
    jitter = [k for k in rows if k in ("D-jitter", "E-jitter")]
    evaluated = [e.get("n_images") for entries in metrics.values() for e in entries.values()]
    n_val = max((n for n in evaluated if n), default=(info.get("images") or {}).get("val"))
    lines = [
        f"# Results of the `{profile}` profile",
        "",
        f"Data: `{info.get('source') or info.get('root')}`, {len(info.get('classes') or [])} "
        f"classes, {n_val} validation images evaluated (md5 `{info.get('md5')}`). Top-1 and top-5 "
        "error in percent; the paper's numbers (ImageNet) are shown only for runs on "
        "1000 classes at the paper's width.",
        "",
    ]
    for text in (
        _table(metrics, rows, ["single-scale"], "Table 3: one test scale (dense)"),
        _table(metrics, rows, ["multi-scale"], "Table 4: three test scales (dense)"),
        _table(
            metrics,
            jitter,
            ["multi-scale", "multi-crop", "dense+multi-crop"],
            "Table 5: dense, multi-crop, both (jittered S)",
        ),
        _table(
            metrics,
            ["fusion-D+E"],
            ["dense", "multi-crop", "dense+multi-crop"],
            "Table 6: fusion of D and E (jittered S)",
        ),
    ):
        if text:
            lines += [text, ""]
    lines += [
        "## The paper's claims",
        "",
        "| claim | holds here | ours (top-1 %) | paper |",
        "|---|---|---|---|",
    ]
    for c in claims:
        lines.append(
            f"| {c['id']} | {'yes' if c['holds'] else 'no'} | {c['ours']} | {c['paper']} |"
        )
    lines += ["", "Rules (± is the binomial standard error of our estimate):", ""]
    lines += [f"- **{c['id']}**: {CLAIMS[c['id']]}" for c in claims]
    if profile != "paper":
        lines += [
            "",
            f"The `{profile}` profile is a miniature, not ImageNet: narrow nets, "
            "32-pixel crops, synthetic shapes and minutes of CPU training. Agreement "
            "or disagreement here says how the paper's recipe behaves at this scale, "
            "not whether the paper is right.",
        ]
    lines += ["", *_environment_lines(training_runs(metrics))]
    return "\n".join(lines).rstrip("\n") + "\n"


def depth_rows(metrics: dict) -> list[dict]:
    """Table 3's S=256 single-scale errors against the number of weight layers."""
    out = []
    for net in ("A", "A-LRN", "B", "C", "D", "E"):
        entry = metrics.get(f"{net}-s256", {}).get("single-scale")
        if entry:
            out.append(
                {
                    "net": net,
                    "weight_layers": models.num_weight_layers(net),
                    "top1_error": round(entry["top1_error"], 4),
                    "top5_error": round(entry["top5_error"], 4),
                }
            )
    return sorted(out, key=lambda r: (r["weight_layers"], r["net"]))


def main(profile: str, settings: dict | None = None) -> dict:
    """Write ``reports/results.json``, ``reports/report.md`` and ``reports/depth.csv``."""
    info = json.loads((Path("models") / "data.json").read_text())
    metrics = load_metrics()
    claims = check_claims(metrics)
    first = next(iter(metrics.values()), {})
    num_classes = next(iter(first.values()), {}).get("num_classes", len(info.get("classes", [])))
    results = {
        "profile": profile,
        "dataset": Path(info.get("source") or info.get("root", "")).name,
        "num_classes": int(num_classes),
        "rows": result_rows(metrics),
        "claims": claims,
        "training": training_runs(metrics),
    }
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (REPORTS / "report.md").write_text(render_markdown(profile, info, metrics, claims))
    depth = depth_rows(metrics)
    csv = ["net,weight_layers,top1_error,top5_error"]
    csv += [f"{r['net']},{r['weight_layers']},{r['top1_error']},{r['top5_error']}" for r in depth]
    (REPORTS / "depth.csv").write_text("\n".join(csv) + "\n")
    for c in claims:
        print(f"claim {c['id']}: {'holds' if c['holds'] else 'does not hold'} ({c['ours']})")
    return results
