"""Results in the layout of the paper's Tables 3 to 6, with the paper's numbers beside ours.

:func:`render_table` takes the metrics dicts that ``vgg-repro evaluate`` writes
(``json.load`` of its ``--output`` files, or :func:`vgg_repro.evaluation.evaluate_folder`'s
return values) and returns a Markdown table: one row per result, sorted like the
paper (configuration, then training scale S, then test scales Q, then protocol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vgg_repro import paper
from vgg_repro.models import CFGS

__all__ = ["format_scale", "render_table"]

# The paper's names for the protocols (Table 5).
_PROTOCOL_NAMES = {
    "dense": "dense",
    "multi-crop": "multi-crop",
    "dense+multi-crop": "multi-crop & dense",
}


def format_scale(train_scale: Sequence[int] | None) -> str:
    """A training scale in the paper's notation.

    >>> format_scale([256, 256]), format_scale([256, 512]), format_scale(None)
    ('256', '[256;512]', '?')
    """
    if not train_scale:
        return "?"
    lo, hi = train_scale
    return str(lo) if lo == hi else f"[{lo};{hi}]"


def _joined(values: list[str]) -> str:
    return values[0] if len(set(values)) == 1 else " / ".join(values)


def _net_name(ckpt: Mapping) -> str:
    width = ckpt.get("width", 1.0)
    name = ckpt["arch"] if width in (None, 1.0) else f"{ckpt['arch']} (width {width:g})"
    return f"{name} (torchvision)" if str(ckpt.get("path", "")).startswith("torchvision:") else name


def _sort_key(result: Mapping) -> tuple:
    ckpts = result["checkpoints"]
    order = list(CFGS)
    return (
        len(ckpts),
        [order.index(c["arch"]) if c["arch"] in order else len(order) for c in ckpts],
        [tuple(c.get("train_scale") or (0, 0)) for c in ckpts],
        len(result["scales"]),
        list(_PROTOCOL_NAMES).index(result["protocol"])
        if result["protocol"] in _PROTOCOL_NAMES
        else 9,
    )


def render_table(
    results: Sequence[Mapping],
    *,
    paper_numbers: bool | None = None,
    title: str | None = None,
) -> str:
    """Results as a Markdown table in the paper's layout (Tables 3 to 6).

    Columns: ConvNet config. (``D+E`` for a fusion), train S, test Q, method,
    top-1 and top-5 val. error (%); with ``paper_numbers`` also the paper's
    figures and the table they come from, where the paper has that setting
    (see :func:`vgg_repro.paper.lookup`).

    Args:
        results: metrics dicts with keys ``checkpoints`` (each with ``arch``,
            ``width``, ``train_scale``, ``test_scales``), ``protocol``,
            ``scales``, ``top1_error``, ``top5_error``, ``num_classes``.
        paper_numbers: show the paper's numbers; default: when every result is
            on 1000 classes (ImageNet).
        title: an optional first line.

    Returns:
        The table, lines joined by newlines (no trailing newline).

    >>> r = {"checkpoints": [{"arch": "D", "width": 1.0, "train_scale": [256, 512],
    ...      "test_scales": [384]}], "protocol": "dense", "scales": [384],
    ...      "top1_error": 25.71, "top5_error": 8.04, "num_classes": 1000}
    >>> print(render_table([r]))
    | ConvNet config. | train (S) | test (Q) | method | top-1 err. (%) | top-5 err. (%) | paper top-1 | paper top-5 | paper table |
    |---|---|---|---|---|---|---|---|---|
    | D | [256;512] | 384 | dense | 25.7 | 8.0 | 25.6 | 8.1 | Table 3 |
    """  # noqa: E501
    if paper_numbers is None:
        paper_numbers = bool(results) and all(r.get("num_classes") == 1000 for r in results)
    header = ["ConvNet config.", "train (S)", "test (Q)", "method"]
    header += ["top-1 err. (%)", "top-5 err. (%)"]
    if paper_numbers:
        header += ["paper top-1", "paper top-5", "paper table"]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in sorted(results, key=_sort_key):
        ckpts = result["checkpoints"]
        test = [c.get("test_scales") or result["scales"] for c in ckpts]
        row = [
            "+".join(_net_name(c) for c in ckpts),
            _joined([format_scale(c.get("train_scale")) for c in ckpts]),
            _joined([",".join(str(q) for q in qs) for qs in test]),
            _PROTOCOL_NAMES.get(result["protocol"], result["protocol"]),
            f"{result['top1_error']:.1f}",
            f"{result['top5_error']:.1f}",
        ]
        if paper_numbers:
            found = None
            if all(c.get("width", 1.0) in (None, 1.0) for c in ckpts):
                found = paper.lookup(
                    [c["arch"] for c in ckpts],
                    [tuple(c["train_scale"]) if c.get("train_scale") else None for c in ckpts],
                    result["protocol"],
                    test,
                )
            row += (
                [f"{found.top1:.1f}", f"{found.top5:.1f}", found.table] if found else ["", "", ""]
            )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
