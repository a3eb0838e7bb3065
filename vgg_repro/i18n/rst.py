"""What a translation of a reST paragraph must keep: numbers, citations and markup.

A translator rewrites the prose and keeps the rest: roles with their targets (the text a
``:term:`` shows may be translated), ``literals``, links and their URLs, substitutions,
footnote and citation references, every number (Arabic-Indic digits count as the same
number) and every author-year citation.
"""

from __future__ import annotations

import re
from collections import Counter

from vgg_repro.i18n.arabic import spelled_numbers

_ARABIC_NUMERALS = str.maketrans(
    {
        "\u066b": ".",  # Arabic decimal separator
        "\u066c": ",",  # Arabic thousands separator
        **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + d): str(d) for d in range(10)},  # Extended (Persian) digits
    }
)

_CODE_ROLES = {
    "code", "file", "samp", "command", "program", "option", "envvar", "kbd", "math", "abbr",
    "mod", "func", "class", "meth", "attr", "data", "exc", "obj", "const", "any", "type",
    "py:mod", "py:func", "py:class", "py:meth", "py:attr", "py:data", "py:exc", "py:obj",
    "py:const", "download", "pep", "rfc", "numref",
}  # fmt: skip
_ROLE = re.compile(r":(?P<name>[a-zA-Z][\w:.+-]*):`(?P<body>(?:[^`\\]|\\.)+)`")
_LITERAL = re.compile(r"``(?P<body>.+?)``")
_LINK = re.compile(r"`(?P<text>[^`<]*?)\s*<(?P<target>[^<>`]+)>`__?")
_NAMED_REF = re.compile(r"`(?P<text>[^`<]+)`_(?!_)")
_ANON_REF = re.compile(r"(?<![`\w])(?P<name>\w[\w.-]*)__?(?![\w`])")
_URL = re.compile(r"https?://[^\s<>`)\]]+[^\s<>`)\].,;:!?'\"]")
_SUBST = re.compile(r"\|(?P<name>[^|\s][^|]*?)\|_{0,2}")
_FOOTNOTE = re.compile(r"\[(?P<label>#[\w-]*|\*|\d+|[A-Za-z][\w.-]*)\]_")
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_CITATION = re.compile(
    r"\b(?P<first>[A-Z][A-Za-z'-]+)(?:\s+(?:and|&)\s+(?P<second>[A-Z][A-Za-z'-]+)|\s+et\s+al\.?)"
    r"\s*,?\s*\(?(?P<year>(?:19|20)\d{2})\)?"
)
_NUMBER = re.compile(r"[0-9]+(?:[.,][0-9]+)*")
_PLACEHOLDER = re.compile(r"\{(?P<name>[a-z_]+)\}")


# A left-to-right run inside Arabic text: Latin letters or digits joined by an operator
# (=, +, ·, ×, ^, <, >, ≤, ≥, ≈, →): S = 256, Q=S, S+32, 7²C² = 49C². An Arabic letter
# may precede it (وS = 384: the conjunction attached to the formula).
_OPERAND = r"[A-Za-z0-9][A-Za-z0-9²³_.,()\[\]]*"
_LTR_RUN = re.compile(
    rf"(?<![A-Za-z0-9_`]){_OPERAND}(?:\s*(?:=|≈|·|×|\+|\^|≤|≥|<|>|→)\s*[A-Za-z0-9(\[][A-Za-z0-9²³_.,()\[\]]*)+"
)


def unisolated_runs(text: str) -> list[str]:
    """Formulas in Arabic text left bare, which the bidirectional algorithm reorders:
    runs of Latin letters and digits joined by ``=`` or another operator, outside
    literals, code roles and the isolating role ``:ltr:``.

    >>> unisolated_runs("عند S = 256 و :ltr:`Q = 384` و ``S=512``")
    ['S = 256']
    >>> unisolated_runs("الطبقات 3 + 2 من الشبكة A-LRN، وS = 384")
    ['S = 384']
    """
    text = _LITERAL.sub(" ", text)
    text = _ROLE.sub(" ", text)
    runs = [m.group(0).rstrip(".,)") for m in _LTR_RUN.finditer(text)]
    return [r for r in runs if re.search("[A-Za-z]", r)]


def _role_parts(name: str, body: str) -> tuple[str, str]:
    """(display text, target) of a role; the target is the body without explicit text."""
    match = _EXPLICIT.match(body)
    if match and match.group("text"):
        return match.group("text"), match.group("target").strip()
    return body, body.strip()


# A qualified Python name or a file name: module.Class, package.module.function, model.pt.
_DOTTED_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?!\w|\.\w)")


def prose(text: str) -> str:
    """The words of a reST string a reader sees as prose: no code, literal, target or URL.

    >>> prose("Use :func:`build` and ``vgg16``; see :term:`soft-max <softmax>` at `docs <https://x.org>`_.")
    'Use and ; see soft-max at docs.'

    Dotted names (``vgg_repro.models.VGG``, ``model.pt``), as autodoc writes types, are code:

    >>> prose("A vgg_repro.models.VGG network, saved in model.pt.")
    'A network, saved in .'
    """  # noqa: E501

    def role(m: re.Match[str]) -> str:
        name = m.group("name").removeprefix("std:")
        if name == "ltr":  # an isolated run of the sentence: its text is read
            return m.group("body")
        if name in _CODE_ROLES:
            return " "
        text, _ = _role_parts(name, m.group("body"))
        return " " if name in {"doc", "ref"} and text == m.group("body") else text

    text = _LITERAL.sub(" ", text)
    text = _ROLE.sub(role, text)
    text = _LINK.sub(lambda m: m.group("text"), text)
    text = _NAMED_REF.sub(lambda m: m.group("text"), text)
    text = _URL.sub(" ", text)
    text = _SUBST.sub(" ", text)
    text = _FOOTNOTE.sub(" ", text)
    text = _DOTTED_NAME.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


def markup(text: str) -> Counter[tuple[str, str]]:
    """The markup that a translation must keep, as (kind, value) counts.

    Roles keep their name and target (the text shown may be translated); literals, URLs,
    substitutions, footnote or citation references and the fields of a generated
    sentence (``{estimate}``) keep their content.

    >>> sorted(markup(":term:`شبكة <network>` ``x`` |y| [1]_"))
    [('footnote', '1'), ('literal', 'x'), ('role:term', 'network'), ('substitution', 'y')]
    >>> markup("الميل {estimate} لكل طبقة، :ltr:`p = {p}`")
    Counter({('placeholder', 'estimate'): 1, ('placeholder', 'p'): 1})
    """
    found: Counter[tuple[str, str]] = Counter()
    for m in _LITERAL.finditer(text):
        found["literal", m.group("body")] += 1
    stripped = _LITERAL.sub(" ", text)
    # A generated sentence's fields ({p}, {better}) are filled in after translation,
    # inside an isolating :ltr: run or not: each must be kept, by name.
    for m in _PLACEHOLDER.finditer(stripped):
        found["placeholder", m.group("name")] += 1
    for m in _ROLE.finditer(stripped):
        name = m.group("name").removeprefix("std:")
        if name == "ltr":  # a translator's isolation of a run, not the source's markup
            continue
        _, target = _role_parts(name, m.group("body"))
        if name in {"term", "ref", "doc"}:
            target = target.casefold()
        found[f"role:{name}", target] += 1
    stripped = _ROLE.sub(" ", stripped)
    for m in _LINK.finditer(stripped):
        found["link", m.group("target").strip()] += 1
    stripped = _LINK.sub(" ", stripped)
    found["reference", ""] += len(_NAMED_REF.findall(stripped))
    for m in _URL.finditer(stripped):
        found["url", m.group(0)] += 1
    for m in _SUBST.finditer(stripped):
        found["substitution", m.group("name")] += 1
    for m in _FOOTNOTE.finditer(stripped):
        found["footnote", m.group("label")] += 1
    return +found


def numbers(text: str) -> Counter[str]:
    """Numbers in the prose of ``text``, digits normalised, thousands separators dropped.

    >>> sorted(numbers("١٣٢٬٨٦٣٬٣٣٦ parameters, 7.61 GMACs, ``vgg16``"))
    ['132863336', '7.61']
    """
    text = prose(text).translate(_ARABIC_NUMERALS)
    found: Counter[str] = Counter()
    for raw in _NUMBER.findall(text):
        value = raw.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", raw) else raw
        found.update(value.split(",") if "," in value else [value])
    return found


def citations(text: str) -> list[tuple[tuple[str, ...], str]]:
    """Author-year citations: ((surnames), year).

    >>> citations("a ConvNet (LeCun et al., 1989; Krizhevsky et al., 2012)")
    [(('LeCun',), '1989'), (('Krizhevsky',), '2012')]
    """
    return [
        (tuple(n for n in (m.group("first"), m.group("second")) if n), m.group("year"))
        for m in _CITATION.finditer(text)
    ]


def preservation_errors(msgid: str, msgstr: str) -> list[tuple[str, str]]:
    """What a translation lost or added: (kind, detail) for numbers, citations and markup.

    A number of the English may be written in Arabic-Indic digits, or, from 1 to 10, as
    an Arabic word (:func:`~vgg_repro.i18n.arabic.spelled_numbers`). A number only the
    translation has is an error too: it is a claim the English does not make.
    """
    errors: list[tuple[str, str]] = []
    # A small integer may be spelled out: "top-5 error" is «خطأ المراتب الخمس الأولى».
    lost_numbers = numbers(msgid) - numbers(msgstr) - spelled_numbers(prose(msgstr))
    if lost_numbers:
        errors.append(("number", "missing " + ", ".join(sorted(lost_numbers.elements()))))
    # A number the English does not have is a claim the translation adds.
    added_numbers = numbers(msgstr) - numbers(msgid)
    if added_numbers:
        errors.append(("number", "added " + ", ".join(sorted(added_numbers.elements()))))
    target_words = set(re.findall(r"[A-Za-z'-]+", msgstr))
    target_numbers = numbers(msgstr)
    for names, year in citations(msgid):
        if not set(names) <= target_words or year not in target_numbers:
            errors.append(("citation", f"missing {' and '.join(names)} {year}"))
    source_markup, target_markup = markup(msgid), markup(msgstr)
    if source_markup != target_markup:
        lost = source_markup - target_markup
        extra = target_markup - source_markup
        detail = []
        if lost:
            detail.append("missing " + ", ".join(f"{k} {v!r}" for (k, v) in lost.elements()))
        if extra:
            detail.append("unexpected " + ", ".join(f"{k} {v!r}" for (k, v) in extra.elements()))
        errors.append(("markup", "; ".join(detail)))
    return errors
