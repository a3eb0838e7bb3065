"""The bilingual glossary and the Arabic word matching behind the terminology check.

The glossary (``docs/glossary.tsv``) is the single source of truth for the terms of the
docs: English names, the Arabic term, its accepted variants (plurals, duals), the Arabic
phrases that contain its words with another meaning, and a short definition in both
languages. A term counts as rendered in an Arabic sentence when one of
its forms appears there word by word, after normalising the spelling (harakat, tatweel,
alef forms, digits) and removing what Arabic attaches to a word: the conjunctions و ف,
the prepositions ب ك ل, the article ال, and the attached pronouns. A substring is not a
word, and a near-synonym is not the term.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vgg_repro.errors import ConfigError
from vgg_repro.i18n.arabic import (
    CONJUNCTIONS,
    normalize_arabic,
    strip_article,
    tokenize,
    word_forms,
)
from vgg_repro.i18n.rst import prose

GLOSSARY_COLUMNS = ("en", "ar", "ar_variants", "ar_unrelated", "definition_en", "definition_ar")
# Where the glossary lies in the repository: <root>/docs/glossary.tsv, and this file is
# <root>/vgg_repro/i18n/glossary.py.
_GLOSSARY_IN_REPO = Path("docs") / "glossary.tsv"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _token_matches(term_token: str, forms: set[str]) -> bool:
    bare = strip_article(term_token)
    if term_token in forms or bare in forms:
        return True
    # The construct state of a dual or a sound plural drops its nun: شبكتان -> «شبكتا
    # الورقة» (the paper's two networks), طبقتين -> «طبقتي الالتفاف».
    return len(bare) >= 5 and bare.endswith(("ان", "ين", "ون")) and bare[:-1] in forms


def _unrelated_spans(tokens: list[str], unrelated: Iterable[str]) -> set[int]:
    """Positions of the words that belong to an unrelated phrase (``بدقة أكبر``).

    Such a phrase is matched as written, prefixes included (``بدقة`` is "finely", while
    ``الدقة`` is the term), with only a conjunction و or ف allowed before it.
    """
    covered: set[int] = set()
    for phrase in unrelated:
        words = tokenize(phrase)
        for i in range(len(tokens) - len(words) + 1):
            first = tokens[i]
            if first[:1] in CONJUNCTIONS and first[1:] == words[0]:
                first = first[1:]
            if words and first == words[0] and tokens[i + 1 : i + len(words)] == words[1:]:
                covered.update(range(i, i + len(words)))
    return covered


def find_arabic_term(text: str, forms: Iterable[str], unrelated: Iterable[str] = ()) -> bool:
    """Whether ``text`` contains one of ``forms`` (a term and its variants), word by word.

    Each word of the text may carry prefixes (و ف ب ك ل, ال) and an attached pronoun,
    and a dual or plural may be in the construct state (شبكتا for شبكتان); a multi-word
    term must appear as consecutive words. Words inside one of the ``unrelated`` phrases
    (the glossary's ``ar_unrelated``: ``بدقة أكبر``, "more finely", for *accuracy*) do not
    count.

    >>> find_arabic_term("وبشبكاتها الالتفافية", ["شبكة التفافية", "شبكات التفافية"])
    True
    >>> find_arabic_term("بنية الشبكة", ["معمارية"])
    False
    >>> find_arabic_term("قسنا الحواف بدقة أكبر", ["دقة"], unrelated=["بدقة أكبر"])
    False
    """
    tokens = tokenize(text)
    masked = _unrelated_spans(tokens, unrelated)
    words = [set() if i in masked else word_forms(t) for i, t in enumerate(tokens)]
    for form in forms:
        term = tokenize(form)
        if not term:
            continue
        for i in range(len(words) - len(term) + 1):
            if all(_token_matches(t, words[i + k]) for k, t in enumerate(term)):
                return True
    return False


# --------------------------------------------------------------------------- glossary


@dataclass(frozen=True)
class Term:
    """One glossary row: English names (headword first), Arabic term, variants, definitions."""

    en: tuple[str, ...]
    ar: str
    variants: tuple[str, ...]
    definition_en: str
    definition_ar: str
    # Arabic phrases that contain the term's words without meaning it (ar_unrelated).
    unrelated: tuple[str, ...] = ()

    @property
    def headword(self) -> str:
        return self.en[0]

    @property
    def arabic_forms(self) -> tuple[str, ...]:
        return (self.ar, *self.variants)


def _split_alternatives(cell: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in cell.split("|") if p.strip())


def default_glossary() -> Path:
    """The project's glossary, ``docs/glossary.tsv``, wherever the command runs.

    It is looked for at the root of the repository that holds this package, then (for a
    package installed without the repository) in the current folder and its parents.

    Raises:
        ConfigError: no ``docs/glossary.tsv`` in any of those folders.
    """
    in_repo = _REPO_ROOT / _GLOSSARY_IN_REPO
    if in_repo.is_file():
        return in_repo
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / _GLOSSARY_IN_REPO).is_file():
            return folder / _GLOSSARY_IN_REPO
    raise ConfigError(
        f"glossary not found: neither {in_repo} nor {_GLOSSARY_IN_REPO} in {cwd} or a parent "
        "folder; pass --glossary PATH"
    )


def load_glossary(path: str | Path | None = None) -> list[Term]:
    """Read the glossary TSV (header ``en ar ar_variants ar_unrelated definition_en
    definition_ar``).

    The ``en`` cell may list English alternatives (``softmax | soft-max``), the first being
    the headword; ``ar_variants`` lists accepted Arabic variants, plurals and duals;
    ``ar_unrelated`` (may be empty) lists Arabic phrases that contain the term's words
    with another meaning, which do not count as the term (``بدقة أكبر``, "more finely",
    for *accuracy*).

    Args:
        path: the glossary TSV; by default the project's (:func:`default_glossary`).

    Raises:
        ConfigError: the file is missing, its header is wrong, a row has empty cells, or a
            term is listed twice.
    """
    path = default_glossary() if path is None else Path(path)
    if not path.is_file():
        raise ConfigError(f"glossary {path} not found; pass --glossary PATH")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or tuple(c.strip() for c in rows[0]) != GLOSSARY_COLUMNS:
        raise ConfigError(
            f"{path}: the header must be the tab-separated columns {' '.join(GLOSSARY_COLUMNS)}"
        )
    terms: list[Term] = []
    seen: dict[str, int] = {}  # 'en:term' / 'ar:term' -> line
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(GLOSSARY_COLUMNS):
            raise ConfigError(
                f"{path}:{lineno}: expected {len(GLOSSARY_COLUMNS)} tab-separated cells, "
                f"got {len(row)}"
            )
        en, ar, variants, unrelated, def_en, def_ar = (c.strip() for c in row)
        if not (en and ar and def_en and def_ar):
            raise ConfigError(f"{path}:{lineno}: en, ar and both definitions must be filled in")
        term = Term(
            _split_alternatives(en),
            ar,
            _split_alternatives(variants),
            def_en,
            def_ar,
            _split_alternatives(unrelated),
        )
        keys = {f"en:{name.casefold()}": name for name in term.en}
        keys[f"ar:{normalize_arabic(term.ar)}"] = term.ar
        for key, name in keys.items():
            if key in seen:
                raise ConfigError(
                    f"{path}:{lineno}: term {name!r} is already defined on line {seen[key]}"
                )
            seen[key] = lineno
        terms.append(term)
    return terms


def _english_pattern(name: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in re.split(r"[\s-]+", name.strip())]
    last = words[-1]
    plural = r"(?:s|es)?" if not last.endswith("y") else ""
    if last.endswith("y"):
        words[-1] = last[:-1] + r"(?:y|ies)"
    body = r"[\s-]+".join(words) + plural
    # Abbreviations and names keep their case (MAC, ConvNet); ordinary words ignore it.
    flags = 0 if any(c.isupper() for c in name[1:]) else re.IGNORECASE
    return re.compile(r"(?<![\w-])" + body + r"(?![\w-])", flags)


class GlossaryMatcher:
    """Finds glossary terms in English text and checks their Arabic rendering."""

    def __init__(self, terms: Sequence[Term]):
        self.terms = list(terms)
        self._patterns = [(term, _english_pattern(name)) for term in self.terms for name in term.en]

    def english_terms(self, text: str) -> list[Term]:
        """Glossary terms in the prose of ``text``, longest match first, without overlaps.

        >>> m = GlossaryMatcher([Term(("depth",), "عمق", (), "d", "d"),
        ...                      Term(("representation depth",), "عمق التمثيل", (), "d", "d")])
        >>> [t.headword for t in m.english_terms("Representation depths matter.")]
        ['representation depth']
        """
        text = prose(text)
        found = []
        for term, pattern in self._patterns:
            found += [(m.start(), m.end(), term) for m in pattern.finditer(text)]
        found.sort(key=lambda f: (-(f[1] - f[0]), f[0]))
        taken: list[tuple[int, int]] = []
        terms: list[Term] = []
        for start, end, term in found:
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            if term not in terms:
                terms.append(term)
        return terms

    def missing_terms(self, msgid: str, msgstr: str) -> list[Term]:
        """Terms of ``msgid`` whose Arabic term (or a variant) is absent from ``msgstr``."""
        target = prose(msgstr)
        return [
            t
            for t in self.english_terms(msgid)
            if not find_arabic_term(target, t.arabic_forms, t.unrelated)
        ]
