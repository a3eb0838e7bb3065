"""Translation checks for the Arabic documentation: coverage, terminology, preserved markup.

The docs are translated with gettext catalogues (``locales/ar/LC_MESSAGES/<doc>.po``) and
their terminology follows one bilingual glossary, ``docs/glossary.tsv``. This module reads
both and reports, per document and overall:

- coverage: entries translated and not fuzzy (Sphinx shows the English text for a fuzzy
  entry, and ``sphinx-intl stat`` does not fail on them);
- glossary consistency: every glossary term found in an English ``msgid`` appears in its
  ``msgstr`` as the glossary's Arabic term or one of its listed variants, matched on
  normalised Arabic words with their prefixes and suffixes (not as a substring);
- preservation: numbers, citations and reST markup (roles, literals, links,
  substitutions, footnotes) carried over unchanged.

The glossary's own Arabic definitions (shown on the Arabic glossary page) are checked by
the same rules, reported as the document ``glossary.tsv``.

Run it as ``vgg-repro i18n check``; it exits non-zero below the thresholds (by default,
every entry translated and every glossary term rendered as listed) or on any preservation
error, and writes a JSON report that DVC can pin as a metric.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vgg_repro.errors import ConfigError, DataError
from vgg_repro.i18n.glossary import GlossaryMatcher, Term, find_arabic_term, load_glossary
from vgg_repro.i18n.rst import preservation_errors, prose, unisolated_runs

DEFAULT_LOCALES = Path("locales")

# --------------------------------------------------------------------------- catalogues


@dataclass
class DocumentReport:
    """Figures for one catalogue (one document)."""

    document: str
    entries: int = 0
    translated: int = 0
    fuzzy: int = 0
    untranslated: int = 0
    missing: int = 0  # msgids of the current .pot absent from the .po
    glossary_checked: int = 0
    glossary_consistent: int = 0
    issues: list[dict] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        return 100.0 * self.translated / self.entries if self.entries else 100.0

    @property
    def glossary_consistency(self) -> float:
        if not self.glossary_checked:
            return 100.0
        return 100.0 * self.glossary_consistent / self.glossary_checked

    def count(self, kind: str) -> int:
        return sum(1 for issue in self.issues if issue["kind"] == kind)

    def as_dict(self) -> dict:
        return {
            "entries": self.entries,
            "translated": self.translated,
            "fuzzy": self.fuzzy,
            "untranslated": self.untranslated,
            "missing": self.missing,
            "coverage": round(self.coverage, 2),
            "glossary_checked": self.glossary_checked,
            "glossary_consistent": self.glossary_consistent,
            "glossary_consistency": round(self.glossary_consistency, 2),
            "number_errors": self.count("number"),
            "citation_errors": self.count("citation"),
            "markup_errors": self.count("markup"),
            "issues": self.issues,
        }


def _read_catalog(path: Path):
    try:  # Babel comes with Sphinx (the docs extra)
        from babel.messages.pofile import PoFileError, read_po
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ConfigError("reading catalogues needs Babel: pip install -e '.[docs]'") from err

    try:
        with path.open("rb") as f:
            return read_po(f, abort_invalid=True)
    except (PoFileError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: not a valid gettext catalogue ({err}); run msgfmt -c") from err


def _msg_strings(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else [v or "" for v in value]


def check_catalog(
    path: Path,
    matcher: GlossaryMatcher,
    document: str,
    pot: Path | None = None,
) -> DocumentReport:
    """Check one ``.po`` file (``pot``: the current template, to find missing msgids)."""
    report = DocumentReport(document)
    catalog = _read_catalog(path) if path.is_file() else None
    messages = {m.id: m for m in catalog if m.id} if catalog is not None else {}
    ids = list(messages)
    if pot is not None and pot.is_file():
        template_ids = [m.id for m in _read_catalog(pot) if m.id]
        for msgid in template_ids:
            if msgid not in messages:
                report.missing += 1
                report.issues.append(_issue("missing", msgid, "not in the catalogue"))
        ids = template_ids
    for msgid in ids:
        message = messages.get(msgid)
        if message is None:
            report.entries += 1
            report.untranslated += 1
            continue
        report.entries += 1
        key = msgid if isinstance(msgid, str) else msgid[0]
        strings = _msg_strings(message.string)
        line = getattr(message, "lineno", None)
        if message.fuzzy:
            report.fuzzy += 1
            report.issues.append(_issue("fuzzy", key, "fuzzy: Sphinx shows English", line))
            continue
        if not all(s.strip() for s in strings):
            report.untranslated += 1
            report.issues.append(_issue("untranslated", key, "empty msgstr", line))
            continue
        report.translated += 1
        source = key
        for target in strings:
            for term in matcher.english_terms(source):
                report.glossary_checked += 1
                if find_arabic_term(prose(target), term.arabic_forms, term.unrelated):
                    report.glossary_consistent += 1
                else:
                    forms = " | ".join(term.arabic_forms)
                    report.issues.append(
                        _issue("glossary", key, f"{term.headword!r}: expected {forms}", line)
                    )
            for kind, detail in preservation_errors(source, target):
                report.issues.append(_issue(kind, key, detail, line))
            for run in unisolated_runs(target):
                report.issues.append(
                    _issue("isolation", key, f"{run!r}: isolate it as :ltr:`{run}`", line)
                )
    return report


def check_glossary_definitions(terms: Sequence[Term], matcher: GlossaryMatcher) -> DocumentReport:
    """The glossary's own Arabic definitions, checked like catalogue entries.

    They are shown on the Arabic glossary page, so they follow the same rules: the terms
    of the English definition in their Arabic form, numbers and markup kept.
    """
    report = DocumentReport("glossary.tsv")
    for term in terms:
        report.entries += 1
        report.translated += 1
        where = f"definition of {term.headword!r}"
        for found in matcher.english_terms(term.definition_en):
            report.glossary_checked += 1
            if find_arabic_term(prose(term.definition_ar), found.arabic_forms, found.unrelated):
                report.glossary_consistent += 1
            else:
                forms = " | ".join(found.arabic_forms)
                detail = f"{found.headword!r}: expected {forms}"
                report.issues.append(_issue("glossary", where, detail))
        for kind, detail in preservation_errors(term.definition_en, term.definition_ar):
            report.issues.append(_issue(kind, where, detail))
    return report


def _issue(kind: str, msgid: str, detail: str, line: int | None = None) -> dict:
    short = msgid if len(msgid) <= 80 else msgid[:77] + "..."
    return {"kind": kind, "msgid": short, "detail": detail, "line": line}


@dataclass
class CheckResult:
    """The whole check: per-document reports, the overall figures and the verdict."""

    documents: list[DocumentReport]
    min_coverage: float
    min_glossary: float
    language: str

    @property
    def overall(self) -> DocumentReport:
        total = DocumentReport("overall")
        for doc in self.documents:
            for name in (
                "entries", "translated", "fuzzy", "untranslated", "missing",
                "glossary_checked", "glossary_consistent",
            ):  # fmt: skip
                setattr(total, name, getattr(total, name) + getattr(doc, name))
            total.issues += doc.issues
        return total

    @property
    def preservation_errors(self) -> int:
        total = self.overall
        return sum(total.count(k) for k in ("number", "citation", "markup", "isolation"))

    @property
    def passed(self) -> bool:
        total = self.overall
        return (
            bool(self.documents)
            and total.coverage >= self.min_coverage
            and total.glossary_consistency >= self.min_glossary
            and all(d.coverage >= self.min_coverage for d in self.documents)
            and all(d.glossary_consistency >= self.min_glossary for d in self.documents)
            and self.preservation_errors == 0
        )

    def as_dict(self) -> dict:
        overall = self.overall.as_dict()
        del overall["issues"]
        overall["preservation_errors"] = self.preservation_errors
        return {
            "language": self.language,
            "thresholds": {"coverage": self.min_coverage, "glossary": self.min_glossary},
            "passed": self.passed,
            "overall": overall,
            "documents": {d.document: d.as_dict() for d in self.documents},
        }


def check(
    locales: str | Path = DEFAULT_LOCALES,
    glossary: str | Path | None = None,
    language: str = "ar",
    pot_dir: str | Path | None = None,
    min_coverage: float = 100.0,
    min_glossary: float = 100.0,
) -> CheckResult:
    """Check every catalogue of ``locales/<language>/LC_MESSAGES`` against the glossary.

    Args:
        locales: the sphinx-intl locale folder.
        glossary: the glossary TSV; by default the project's
            (:func:`~vgg_repro.i18n.glossary.default_glossary`).
        language: the catalogues' language.
        pot_dir: the templates from ``sphinx-build -b gettext`` (``docs/_build/gettext``);
            when given, a msgid of a template that is not in its catalogue (or a template
            with no catalogue) counts as untranslated.
        min_coverage: lowest accepted coverage, percent.
        min_glossary: lowest accepted glossary consistency, percent.
    """
    root = Path(locales) / language / "LC_MESSAGES"
    terms = load_glossary(glossary)
    matcher = GlossaryMatcher(terms)
    docs: dict[str, tuple[Path, Path | None]] = {}
    if root.is_dir():
        for po in sorted(root.rglob("*.po")):
            docs[po.relative_to(root).with_suffix("").as_posix()] = (po, None)
    if pot_dir is not None:
        pot_root = Path(pot_dir)
        if not pot_root.is_dir():
            raise DataError(f"template folder {pot_root} not found; run python docs/build.py")
        for pot in sorted(pot_root.rglob("*.pot")):
            name = pot.relative_to(pot_root).with_suffix("").as_posix()
            docs[name] = (root / f"{name}.po", pot)
    if not docs:
        raise DataError(f"no catalogues in {root}; run python docs/build.py --update")
    reports = [check_catalog(po, matcher, name, pot) for name, (po, pot) in docs.items()]
    reports.append(check_glossary_definitions(terms, matcher))
    return CheckResult(reports, min_coverage, min_glossary, language)


def format_result(result: CheckResult, max_issues: int = 20) -> str:
    """A terminal table: per document coverage, glossary consistency and errors."""
    header = f"{'document':<28}{'entries':>8}{'coverage':>10}{'glossary':>10}{'errors':>8}"
    lines = [header, "-" * len(header)]
    for doc in [*result.documents, result.overall]:
        errors = sum(doc.count(k) for k in ("number", "citation", "markup"))
        if doc.document == "overall":
            lines.append("-" * len(header))
        lines.append(
            f"{doc.document:<28}{doc.entries:>8}{doc.coverage:>9.1f}%"
            f"{doc.glossary_consistency:>9.1f}%{errors:>8}"
        )
    issues = [(d.document, i) for d in result.documents for i in d.issues]
    if issues:
        lines.append("")
        for document, issue in issues[:max_issues]:
            where = document if document.endswith(".tsv") else f"{document}.po"
            where += f":{issue['line']}" if issue["line"] else ""
            lines.append(f"{where}: {issue['kind']}: {issue['detail']}  [{issue['msgid']}]")
        if len(issues) > max_issues:
            lines.append(f"... and {len(issues) - max_issues} more (see the JSON report)")
    verdict = "PASS" if result.passed else "FAIL"
    lines.append(
        f"\n{verdict}: coverage {result.overall.coverage:.1f}% (min {result.min_coverage:g}), "
        f"glossary {result.overall.glossary_consistency:.1f}% (min {result.min_glossary:g}), "
        f"{result.preservation_errors} preservation errors"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``vgg-repro i18n check``: translation coverage and glossary consistency."""
    parser = argparse.ArgumentParser(prog="vgg-repro i18n", description=main.__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("check", help="check the catalogues against the glossary")
    p.add_argument("--locales", type=Path, default=DEFAULT_LOCALES)
    p.add_argument(
        "--glossary", type=Path, default=None, help="the TSV (default: docs/glossary.tsv)"
    )
    p.add_argument("--language", default="ar")
    p.add_argument("--pot", type=Path, default=None, help="templates (docs/_build/gettext)")
    p.add_argument("--json", type=Path, default=None, help="write the report here")
    p.add_argument("--min-coverage", type=float, default=100.0, help="percent (default 100)")
    p.add_argument("--min-glossary", type=float, default=100.0, help="percent (default 100)")
    p.add_argument("--max-issues", type=int, default=20, help="issues printed (default 20)")
    p.add_argument(
        "--no-fail", action="store_true", help="exit 0 whatever the result (to record a metric)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result = check(
        args.locales, args.glossary, args.language, args.pot, args.min_coverage, args.min_glossary
    )
    print(format_result(result, args.max_issues))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(result.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    return 0 if result.passed or args.no_fail else 1
