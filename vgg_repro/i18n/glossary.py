"""The bilingual glossary and the Arabic word matching behind the terminology check.

The glossary (``docs/glossary.tsv``) is the single source of truth for the terms of the
docs: English names, the Arabic term, its accepted variants (plurals, duals) and a short
definition in both languages. A term counts as rendered in an Arabic sentence when one of
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
from vgg_repro.i18n.rst import prose

GLOSSARY_COLUMNS = ("en", "ar", "ar_variants", "definition_en", "definition_ar")
# Where the glossary lies in the repository: <root>/docs/glossary.tsv, and this file is
# <root>/vgg_repro/i18n/glossary.py.
_GLOSSARY_IN_REPO = Path("docs") / "glossary.tsv"
_REPO_ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- Arabic text

# Harakat (fathatan .. sukun, U+064B-U+0652, with the rarer marks up to U+065F), superscript
# alef (U+0670) and Quranic annotation marks: none of them changes the word.
_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_TATWEEL = "\u0640"
_CHAR_MAP = str.maketrans(
    {
        "\u0623": "\u0627",  # أ -> ا
        "\u0625": "\u0627",  # إ -> ا
        "\u0622": "\u0627",  # آ -> ا
        "\u0671": "\u0627",  # ٱ -> ا
        "\u0649": "\u064a",  # ى -> ي (alef maqsura is written for final ya, or vice versa)
        "\u066b": ".",  # Arabic decimal separator
        "\u066c": ",",  # Arabic thousands separator
        **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + d): str(d) for d in range(10)},  # Extended (Persian) digits
    }
)
_CONJUNCTIONS = "وف"
_PREPOSITIONS = "بكل"
# Attached pronouns, longest first. A stem that loses one and ends in ت may be a word
# in ة (ta marbuta is written ت before a suffix: شبكة -> شبكتها).
_SUFFIXES = ("كما", "هما", "كم", "كن", "هم", "هن", "ها", "نا", "ه", "ك", "ي")
_TOKEN = re.compile(r"[\u0621-\u064a]+|[A-Za-z]+|[0-9]+")


def normalize_arabic(text: str) -> str:
    """Normalise Arabic spelling: no harakat or tatweel, one alef, ASCII digits.

    >>> normalize_arabic("الشَّبَكَةُ الأُولى")
    'الشبكة الاولي'
    >>> normalize_arabic("ٱلتـــعلم ١٩")
    'التعلم 19'
    """
    return _MARKS.sub("", text).replace(_TATWEEL, "").translate(_CHAR_MAP)


def tokenize(text: str) -> list[str]:
    """Normalised words: Arabic letter runs, Latin runs (lower case) and digit runs.

    >>> tokenize("خطأ أعلى-1 على ImageNet")
    ['خطا', 'اعلي', '1', 'علي', 'imagenet']
    """
    return [t.lower() for t in _TOKEN.findall(normalize_arabic(text))]


def _strip_article(word: str) -> str:
    if len(word) > 3 and (word.startswith("ال") or word.startswith("لل")):
        return word[2:]
    return word


def word_forms(token: str) -> set[str]:
    """The stems a normalised word may be: with its prefixes and suffixes removed.

    Prefixes: the conjunctions و ف, the prepositions ب ك ل and the article ال (لل after
    ل). Suffixes: the alef of the accusative tanween and the attached pronouns, restoring
    ة where it was written ت. Plurals and duals are not derived: the glossary lists them.

    >>> {"شبكة", "شبكت", "بشبكتها"} <= word_forms("وبشبكتها")
    True
    >>> "شبكة" in word_forms("للشبكة"), "شبكة" in word_forms("شبكتين")
    (True, False)
    """
    forms = {token}
    if not re.fullmatch(r"[\u0621-\u064a]+", token):
        return forms
    for chars in (_CONJUNCTIONS, _PREPOSITIONS):
        forms |= {w[1:] for w in forms if len(w) > 2 and w[0] in chars}
    forms |= {_strip_article(w) for w in forms}
    # The alef of the accusative tanween (عمقاً -> عمقا once the harakat are gone).
    forms |= {w[:-1] for w in forms if len(w) > 3 and w.endswith("ا")}
    for w in list(forms):
        for suffix in _SUFFIXES:
            if w.endswith(suffix) and len(w) - len(suffix) >= 2:
                stem = w[: -len(suffix)]
                forms.add(stem)
                if stem.endswith("ت"):
                    forms.add(stem[:-1] + "ة")
                break
    return forms


def _token_matches(term_token: str, forms: set[str]) -> bool:
    return term_token in forms or _strip_article(term_token) in forms


def find_arabic_term(text: str, forms: Iterable[str]) -> bool:
    """Whether ``text`` contains one of ``forms`` (a term and its variants), word by word.

    Each word of the text may carry prefixes (و ف ب ك ل, ال) and an attached pronoun;
    a multi-word term must appear as consecutive words.

    >>> find_arabic_term("وبشبكاتها الالتفافية", ["شبكة التفافية", "شبكات التفافية"])
    True
    >>> find_arabic_term("بنية الشبكة", ["معمارية"])
    False
    """
    words = [word_forms(t) for t in tokenize(text)]
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
    """Read the glossary TSV (header ``en ar ar_variants definition_en definition_ar``).

    The ``en`` cell may list English alternatives (``softmax | soft-max``), the first being
    the headword; ``ar_variants`` lists accepted Arabic variants, plurals and duals.

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
        en, ar, variants, def_en, def_ar = (c.strip() for c in row)
        if not (en and ar and def_en and def_ar):
            raise ConfigError(f"{path}:{lineno}: en, ar and both definitions must be filled in")
        term = Term(_split_alternatives(en), ar, _split_alternatives(variants), def_en, def_ar)
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
            t for t in self.english_terms(msgid) if not find_arabic_term(target, t.arabic_forms)
        ]
