"""Pages generated from the code and the data, in both languages.

Directives (used by the content pages):

``.. vgg-networks-table::``
    Table 1 of the paper from :data:`vgg_repro.models.CFGS`, with the parameters
    (:func:`~vgg_repro.models.count_parameters`) and multiply-accumulates
    (:func:`~vgg_repro.models.count_macs`) of each configuration, counted on
    meta-device models (:func:`~vgg_repro.models.build_meta`), never typed.
``.. vgg-results::``
    ``reports/results.json`` (the pipeline's reference run): our errors beside the
    paper's (looked up once, by the report stage) and the claims check, whose
    statements and rules come from :data:`vgg_repro.pipeline.claims.CLAIMS`, the table
    the report uses too. The file's fields are typed (lists of nets, ``[lo, hi]``
    scales, evidence as numbers): nothing here parses text. Without the file, a
    sentence says that no reference run has been recorded yet.
``.. vgg-glossary::``
    The Sphinx glossary (``:term:`` targets) from ``docs/glossary.tsv``, in the
    language of the build: on Arabic pages the Arabic term and definition, with the
    English names as extra terms so that ``:term:`English name``` resolves in both.
``.. vgg-terminology::``
    The translators' terminology table (English, Arabic, accepted variants).

Only stable text becomes a gettext message: column headers, row labels and the claim
statements and rules (one each per claim id). Generated numbers, names and notation are marked
non-translatable, so a new count or a new run never leaves a stale msgid behind; the
glossary entries are translated by the glossary file itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective
from vgg_arabic import ltr_run

from vgg_repro.evaluation.tables import format_scale
from vgg_repro.i18n import Term, load_glossary, normalize_arabic
from vgg_repro.pipeline.claims import (
    CLAIMS,
    EVIDENCE_SENTENCES,
    evidence_notation,
    evidence_sentence,
)

# --------------------------------------------------------------------------- node helpers


def _text(directive: SphinxDirective, text: str) -> nodes.paragraph:
    """A translatable paragraph: it becomes a msgid of the page's catalogue."""
    if "`" in text:  # inline markup: parse it as the translation will be parsed
        parsed = directive.parse_text_to_nodes(text)
        if len(parsed) == 1 and isinstance(parsed[0], nodes.paragraph):
            return parsed[0]
    para = nodes.paragraph(text, text)
    para.source, para.line = directive.get_source_info()
    return para


def _data(text: str, *classes: str) -> nodes.paragraph:
    """A generated value: shown as is in every language, never a msgid."""
    para = nodes.paragraph(text, text, classes=["notranslate", *classes])
    para["translatable"] = False
    return para


def _literal(text: str) -> nodes.paragraph:
    """An identifier (a protocol name as the CLI spells it), shown as code."""
    para = nodes.paragraph("", "", nodes.literal(text, text), classes=["notranslate"])
    para["translatable"] = False
    return para


def _claim_statement(directive: SphinxDirective, claim_id: str) -> nodes.paragraph:
    """A claim as the claims table states it (translated), or its id if it is unknown."""
    for claim in CLAIMS:
        if claim.id == claim_id:
            return _text(directive, claim.statement)
    return _literal(claim_id)


def _freeze(node: nodes.Node) -> None:
    """Mark a generated subtree non-translatable (nested_parse gives it a source)."""
    for child in node.findall(nodes.TextElement):
        child["translatable"] = False


def _title(directive: SphinxDirective, text: str) -> nodes.title:
    """A translatable table caption."""
    title = nodes.title(text, text)
    title.source, title.line = directive.get_source_info()
    return title


def _table(
    title: nodes.title | None,
    header: list[nodes.Node],
    rows: Iterable[list[nodes.Node]],
    classes: Iterable[str] = (),
    widths: list[int] | None = None,
) -> nodes.table:
    table = nodes.table(classes=["vgg-table", *classes])
    if title is not None:
        table += title
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in widths or [1] * len(header):
        group += nodes.colspec(colwidth=width)
    thead = nodes.thead()
    group += thead
    thead += _row(header)
    tbody = nodes.tbody()
    group += tbody
    for cells in rows:
        tbody += _row(cells)
    return table


def _row(cells: list[nodes.Node]) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        if "vgg-number" in cell.get("classes", []):
            entry["classes"].append("vgg-number")
        entry += cell
        row += entry
    return row


# --------------------------------------------------------------------------- Table 1


class NetworksTable(SphinxDirective):
    """Table 1: the six configurations, their layers, parameters and MACs."""

    has_content = False
    option_spec = {"image-size": int, "num-classes": int}

    def run(self) -> list[nodes.Node]:
        from vgg_repro import models

        image_size = self.options.get("image-size", 224)
        num_classes = self.options.get("num-classes", 1000)
        names = list(models.CFGS)
        aliases = {v: k for k, v in models.ALIASES.items()}
        params, macs, blocks = {}, {}, {}
        for name in names:
            net = models.build_meta(name, num_classes=num_classes)
            params[name] = models.count_parameters(net)
            macs[name] = models.count_macs(net, image_size)
            blocks[name] = _blocks(models.CFGS[name])
        rows: list[list[nodes.Node]] = [
            [_text(self, "Alias")] + [_data(aliases.get(n, "-"), "vgg-ltr") for n in names],
            [_text(self, "Weight layers")]
            + [_data(str(models.num_weight_layers(n)), "vgg-number") for n in names],
        ]
        for i in range(max(len(b) for b in blocks.values())):
            label = _text(self, f"Block {i + 1}")
            rows.append([label] + [_layers(blocks[n][i]) for n in names])
        head = [f"FC-{models.FC_WIDTH}", f"FC-{models.FC_WIDTH}", f"FC-{num_classes}", "soft-max"]
        rows.append([_text(self, "Classifier")] + [_layers(head) for _ in names])
        rows.append(
            [_text(self, "Parameters")] + [_data(f"{params[n]:,}", "vgg-number") for n in names]
        )
        rows.append(
            [_text(self, "Multiply-accumulates (GMACs)")]
            + [_data(f"{macs[n] / 1e9:.2f}", "vgg-number") for n in names]
        )
        title = _title(
            self,
            "Table 1 of the paper, generated from the code: parameters for 1000 classes, "
            "multiply-accumulates of one forward pass of a 224x224 image.",
        )
        if (image_size, num_classes) != (224, 1000):
            title = None  # the caption's numbers would be wrong
        header = [_text(self, "Configuration")] + [_data(n, "vgg-ltr") for n in names]
        return [_table(title, header, rows, classes=["vgg-networks"])]


def _blocks(cfg: list[str]) -> list[list[str]]:
    """Split a configuration at its max-pools; each block ends with its ``maxpool``.

    >>> _blocks(["conv3-64", "maxpool", "conv3-128", "maxpool"])
    [['conv3-64', 'maxpool'], ['conv3-128', 'maxpool']]
    """
    blocks, current = [], []
    for layer in cfg:
        current.append(layer)
        if layer in ("maxpool", "M"):
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _layers(layers: list[str]) -> nodes.Node:
    block = nodes.line_block(classes=["notranslate", "vgg-ltr", "vgg-layers"])
    for layer in layers:
        line = nodes.line(layer, layer)
        line["translatable"] = False
        block += line
    return block


# --------------------------------------------------------------------------- results


def _format_scales(scales: Iterable[Any]) -> str:
    return ", ".join(str(s) for s in scales)


def _paper_figure(row: dict[str, Any]) -> tuple[str, str, str]:
    """The paper's (top-1, top-5, table number) for a results row, or dashes."""
    found = row.get("paper")
    if not found:
        return "-", "-", "-"
    # "Table 4" -> "4": the number under a translated "Paper table" header.
    table = str(found["table"]).split()[-1]
    return f"{found['top1_error']:.1f}", f"{found['top5_error']:.1f}", table


class Results(SphinxDirective):
    """Our results beside the paper's, and the claims check, from reports/results.json."""

    has_content = False
    optional_arguments = 1  # path, relative to the docs folder; default vgg_results_path

    def run(self) -> list[nodes.Node]:
        path = Path(self.arguments[0]) if self.arguments else Path(self.config.vgg_results_path)
        if not path.is_absolute():
            path = Path(self.env.srcdir) / path
        self.env.note_dependency(str(path))
        if not path.is_file():
            return [
                _text(
                    self,
                    "No reference run has been recorded yet: the tables appear here once the "
                    "pipeline has run and ``reports/results.json`` is committed.",
                )
            ] + self._claims({})
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise self.error(f"{path}: not valid JSON ({err})") from err
        out: list[nodes.Node] = [self._summary(data)]
        header = [
            _text(self, h)
            for h in (
                "Network",
                "Training scale",
                "Protocol",
                "Test scales",
                "Top-1 error (%)",
                "Top-5 error (%)",
                "Paper top-1 (%)",
                "Paper top-5 (%)",
                "Paper table",
            )
        ]
        rows = []
        for row in data.get("rows", []):
            p1, p5, table = _paper_figure(row)
            rows.append(
                [
                    _data("+".join(row.get("nets", [])), "vgg-ltr"),
                    _data(format_scale(row.get("train_scale")), "vgg-ltr"),
                    _literal(str(row.get("protocol", ""))),
                    _data(_format_scales(row.get("test_scales", [])), "vgg-number"),
                    _data(f"{float(row['top1_error']):.1f}", "vgg-number"),
                    _data(f"{float(row['top5_error']):.1f}", "vgg-number"),
                    _data(p1, "vgg-number"),
                    _data(p5, "vgg-number"),
                    _data(table, "vgg-number"),
                ]
            )
        title = _title(self, "Top-1 and top-5 error of our reference run beside the paper's.")
        out.append(_table(title, header, rows, classes=["vgg-results"]))
        out += self._claims({c.get("id"): c for c in data.get("claims", [])})
        return out + self._training(data.get("rows_trained") or [])

    def _training(self, trained: list[dict[str, Any]]) -> list[nodes.Node]:
        if not trained:
            return []
        header = [
            _text(self, h)
            for h in (
                "Row",
                "Epochs",
                "Rate decreases",
                "Stopped by its plateau",
                "Top-1 error (%)",
            )
        ]
        rows = []
        for t in trained:
            plateau = {True: "yes", False: "no"}.get(t.get("plateau"), "-")
            top1 = t.get("single_scale_top1")
            rows.append(
                [
                    _literal(str(t.get("row", ""))),
                    _data(str(t.get("epochs", "-")), "vgg-number"),
                    _data(str(t.get("lr_decreases", "-")), "vgg-number"),
                    _text(self, plateau),
                    _data("-" if top1 is None else f"{float(top1):.1f}", "vgg-number"),
                ]
            )
        title = _title(self, "How long each row of Table 3 trained in our reference run.")
        return [_table(title, header, rows, classes=["vgg-training"])]

    def _summary(self, data: dict[str, Any]) -> nodes.Node:
        fields = nodes.field_list(classes=["vgg-results-summary"])
        labels = (("Profile", "profile"), ("Dataset", "dataset"), ("Classes", "num_classes"))
        for label, key in labels:
            name = nodes.field_name(label, label)
            name.source, name.line = self.get_source_info()
            body = nodes.field_body()
            # The profile and the dataset as params.yaml names them, the classes a count.
            value = str(data.get(key, "-"))
            body += _data(value, "vgg-number") if key == "num_classes" else _literal(value)
            fields += nodes.field("", name, body)
        return fields

    def _evidence(self, items: list[dict[str, Any]]) -> nodes.container:
        """One line per item: an error or a comparison as notation, its label in code
        (the rows and protocols as the pipeline spells them); a slope, a gain or a count
        as a translatable sentence whose fields :class:`FillFields` fills in."""
        box = nodes.container(classes=["vgg-evidence"])
        for item in items:
            sentence = evidence_sentence(item)
            if sentence is None:
                label, value = evidence_notation(item)
                para = nodes.paragraph("", "", nodes.literal(label, label), nodes.Text(" " + value))
                para["classes"] += ["notranslate", "vgg-ltr"]
                para["translatable"] = False
            else:
                key, fields = sentence
                para = _text(self, EVIDENCE_SENTENCES[key])
                para["vgg_fields"] = fields
            box += para
        return box

    def _claims(self, claims: dict[str, dict[str, Any]]) -> list[nodes.Node]:
        header = [_text(self, h) for h in ("Claim of the paper", "Verdict", "Ours", "Paper")]
        rows = []
        for claim in CLAIMS:
            result = claims.get(claim.id)
            if result is None:
                verdict = _text(self, "not measured yet")
            else:
                verdict = _text(self, result["verdict"])  # agrees, disagrees, inconclusive
            rows.append(
                [
                    _text(self, claim.statement),
                    verdict,
                    self._evidence(result["ours"]) if result else _data("-"),
                    self._evidence(result["paper"]) if result else _data("-"),
                ]
            )
        title = _title(self, "The paper's claims, checked against our reference run.")
        table = _table(title, header, rows, classes=["vgg-claims"], widths=[6, 1, 3, 3])
        rules = nodes.bullet_list(classes=["vgg-claim-rules"])
        for claim in CLAIMS:
            item = nodes.list_item()
            item += _text(self, claim.rule)
            rules += item
        legend = _text(
            self,
            "In the evidence, a label names a row or a test protocol as the pipeline "
            "spells it: ``s256`` and ``s384`` are nets trained at a fixed scale S, "
            "``jitter`` the nets trained with scale jittering, ``dense``, ``multi-crop`` "
            "and ``dense+multi-crop`` (``both``) the test protocols, ``pixels`` the raw "
            "pixels of the transfer baseline. ``D − C`` is D's error minus C's, in "
            "points, with its interval (95%) and its p-value; ± is one standard error.",
        )
        intro = _text(
            self,
            "How our run decides each claim, in the order of the table. Each comparison "
            "is paired, on the same validation images: the difference in top-1 error "
            "(points), its 95% bootstrap interval and the p-value of the exact McNemar "
            "test, or of the bootstrap for a slope or a mean. A claim agrees or disagrees "
            "with the paper only when its comparisons are significant at 0.05; otherwise "
            "it is inconclusive.",
        )
        return [table, legend, intro, rules]


class Seeds(SphinxDirective):
    """The reference run's seeds side by side, from reports/seeds/summary.json."""

    has_content = False
    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        default = Path(self.config.vgg_results_path).parent / "seeds" / "summary.json"
        path = Path(self.arguments[0]) if self.arguments else default
        if not path.is_absolute():
            path = Path(self.env.srcdir) / path
        self.env.note_dependency(str(path))
        if not path.is_file():
            return [_text(self, "No run with other seeds has been recorded yet.")]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise self.error(f"{path}: not valid JSON ({err})") from err
        runs = list(data.get("runs", []))
        header = [_text(self, "Claim of the paper")]
        header += [_data(n, "vgg-ltr") for n in runs] + [_text(self, "Over the seeds")]
        rows = [
            [_claim_statement(self, c["id"])]
            + [_text(self, v) for v in c["verdicts"]]
            + [_text(self, c["verdict"])]
            for c in data.get("claims", [])
        ]
        title = _title(self, "The claims' verdicts in each seed of the reference run.")
        out = [_table(title, header, rows, classes=["vgg-seeds"])]
        header = [_text(self, "Row")] + [_data(n, "vgg-ltr") for n in runs]
        header += [_text(self, "Mean"), _text(self, "Spread (max - min)")]
        rows = [
            [_literal(e["row"])]
            + [_data(f"{e['top1_error'][n]:.1f}", "vgg-number") for n in runs]
            + [_data(f"{e['mean']:.1f}", "vgg-number")]
            + [_data(f"{e['max'] - e['min']:.1f}", "vgg-number")]
            for e in data.get("errors", [])
        ]
        title = _title(self, "Top-1 error (%) of each result in each seed.")
        return out + [_table(title, header, rows, classes=["vgg-seeds"])]


class Transfer(SphinxDirective):
    """Table 11 of our reference run (Appendix B), from reports/results.json."""

    has_content = False
    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        path = Path(self.arguments[0]) if self.arguments else Path(self.config.vgg_results_path)
        if not path.is_absolute():
            path = Path(self.env.srcdir) / path
        self.env.note_dependency(str(path))
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, json.JSONDecodeError) as err:
            raise self.error(f"{path}: not valid JSON ({err})") from err
        rows_in = data.get("transfer") or []
        if not rows_in:
            return [_text(self, "No run of the transfer stage has been recorded yet.")]
        header = [
            _text(self, h)
            for h in (
                "Descriptor",
                "Dimensions",
                "Ours (%)",
                "VOC-2007 (mAP, %)",
                "VOC-2012 (mAP, %)",
                "Caltech-101 (%)",
                "Caltech-256 (%)",
            )
        ]
        datasets = ("VOC-2007", "VOC-2012", "Caltech-101", "Caltech-256")
        rows = []
        for r in rows_in:
            name = r.get("descriptor", "")
            if name == "pixels":
                label = _text(self, "raw pixels")
            else:
                label = _data(name.replace("+", " & "), "vgg-ltr")
            se = r.get("std_error")
            ours = f"{float(r['value']):.1f}" + ("" if se is None else f" ± {float(se):.1f}")
            ref = r.get("paper") or {}
            rows.append(
                [label, _data(str(r.get("dim", "-")), "vgg-number"), _data(ours, "vgg-number")]
                + [_data(f"{ref[d]:.1f}" if d in ref else "-", "vgg-number") for d in datasets]
            )
        title = _title(
            self, "Linear classifiers on the fixed descriptors of our nets, beside the paper's."
        )
        return [_table(title, header, rows, classes=["vgg-transfer"])]


def write_samples(app: Sphinx) -> None:
    """Draw the picture grid of the miniature's validation images (``builder-inited``).

    Written into ``docs/_generated/`` (not in git) from the committed data, so the
    data page always shows the data that is committed; the page includes it with
    ``.. figure:: _generated/miniature-samples.png``.
    """
    from vgg_repro.data.synth import sample_grid

    root = Path(app.srcdir).parent / "data" / "miniature"
    out = Path(app.srcdir) / "_generated" / "miniature-samples.png"
    if not (root / "val").is_dir():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    sample_grid(root).save(tmp)
    tmp.replace(out)


# --------------------------------------------------------------------------- glossary


def _glossary_terms(directive: SphinxDirective) -> list[Term]:
    path = Path(directive.config.vgg_glossary_path)
    directive.env.note_dependency(str(path))
    try:
        return load_glossary(path)
    except ValueError as err:
        raise directive.error(str(err)) from err


def _is_arabic_build(directive: SphinxDirective) -> bool:
    return (directive.config.language or "en").split("_")[0] == "ar"


class Glossary(SphinxDirective):
    """The site glossary, generated from docs/glossary.tsv in the build's language."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        terms = _glossary_terms(self)
        arabic = _is_arabic_build(self)
        if arabic:
            terms = sorted(terms, key=lambda t: normalize_arabic(t.ar))
        else:
            terms = sorted(terms, key=lambda t: t.headword.casefold())
        lines = [".. glossary::", ""]
        for term in terms:
            names = [term.ar, *term.en] if arabic else list(term.en)
            for name in dict.fromkeys(names):  # ImageNet is its own Arabic term
                lines.append(f"   {name}")
            definition = term.definition_ar if arabic else term.definition_en
            lines.append(f"      {definition}")
            lines.append("")
        container = nodes.container(classes=["vgg-glossary"])
        self.state.nested_parse(StringList(lines, source="glossary.tsv"), 0, container)
        _freeze(container)
        for term_node in container.findall(nodes.term):
            if arabic and re.search(r"[A-Za-z]", term_node.astext()):
                term_node["classes"].append("vgg-ltr")
        return container.children


class Terminology(SphinxDirective):
    """The terminology table of the translator's guide."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        terms = sorted(_glossary_terms(self), key=lambda t: t.headword.casefold())
        headings = ("English", "Arabic", "Accepted variants", "Not this term")
        header = [_text(self, h) for h in headings]
        rows = [
            [
                _data(", ".join(t.en), "vgg-en"),
                _data(t.ar, "vgg-ar"),
                _data("، ".join(t.variants) if t.variants else "-", "vgg-ar"),
                _data("، ".join(t.unrelated) if t.unrelated else "-", "vgg-ar"),
            ]
            for t in terms
        ]
        table = _table(None, header, rows, classes=["vgg-terminology"], widths=[3, 3, 4, 3])
        return [table]


_FIELD = re.compile(r"\{([a-z_]+)\}")


class FillFields(SphinxPostTransform):
    """Fill the fields of the generated sentences (``{estimate}``, ``{p}``) once the page
    is translated: each value becomes an isolated left-to-right run, so that its signs,
    brackets and digits keep their order in an Arabic sentence. The gettext builder is
    left the sentence itself, which is what the catalogues translate."""

    default_priority = 200

    def is_supported(self) -> bool:
        return self.app.builder.name != "gettext"

    def run(self, **kwargs: Any) -> None:
        for para in list(self.document.findall(nodes.paragraph)):
            fields = para.get("vgg_fields")
            if not fields:
                continue
            for text in list(para.findall(nodes.Text)):
                parts = _FIELD.split(text.astext())  # text, field, text, field, ..., text
                if len(parts) == 1:
                    continue
                values = [fields.get(name, "{" + name + "}") for name in parts[1::2]]
                if isinstance(text.parent, ltr_run):  # already isolated by the translator
                    filled = "".join(
                        p if i % 2 == 0 else values[i // 2] for i, p in enumerate(parts)
                    )
                    text.parent.replace(text, nodes.Text(filled))
                    continue
                new: list[nodes.Node] = []
                for i, part in enumerate(parts[::2]):
                    if part:
                        new.append(nodes.Text(part))
                    if i < len(values):
                        new.append(ltr_run(values[i], values[i]))
                text.parent.replace(text, new)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("vgg_glossary_path", "glossary.tsv", "env", types=frozenset({str}))
    results = "../reports/results.json"
    app.add_config_value("vgg_results_path", results, "env", types=frozenset({str}))
    app.add_directive("vgg-networks-table", NetworksTable)
    app.add_directive("vgg-results", Results)
    app.add_directive("vgg-seeds", Seeds)
    app.add_directive("vgg-transfer", Transfer)
    app.add_directive("vgg-glossary", Glossary)
    app.connect("builder-inited", write_samples)
    app.add_directive("vgg-terminology", Terminology)
    app.add_post_transform(FillFields)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
