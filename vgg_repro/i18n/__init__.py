"""The documentation's translation tooling: the glossary and catalogue checks.

It is kept apart from the ML code: it imports nothing of ``vgg_repro`` but
:mod:`vgg_repro.errors`. Each of its modules uses the ones below it:

- :mod:`vgg_repro.i18n.catalogues`: the ``vgg-repro i18n check`` command, which checks the
  Arabic catalogues;
- :mod:`vgg_repro.i18n.glossary`: the bilingual glossary and the term matching;
- :mod:`vgg_repro.i18n.rst`: what a translation of a reST paragraph must keep;
- :mod:`vgg_repro.i18n.arabic`: Arabic words: spelling, clitics, spelled numbers.

Their public names are imported here too: ``from vgg_repro.i18n import check, load_glossary``.
"""

from __future__ import annotations

from vgg_repro.i18n.arabic import normalize_arabic, spelled_numbers, tokenize, word_forms
from vgg_repro.i18n.catalogues import (
    CheckResult,
    DocumentReport,
    check,
    check_catalog,
    check_glossary_definitions,
    format_result,
    main,
)
from vgg_repro.i18n.glossary import (
    GLOSSARY_COLUMNS,
    GlossaryMatcher,
    Term,
    default_glossary,
    find_arabic_term,
    load_glossary,
)
from vgg_repro.i18n.rst import (
    citations,
    markup,
    numbers,
    preservation_errors,
    prose,
    unisolated_runs,
)

__all__ = [
    "unisolated_runs",
    # check
    "CheckResult",
    "DocumentReport",
    "check",
    "check_catalog",
    "check_glossary_definitions",
    "format_result",
    "main",
    # glossary
    "GLOSSARY_COLUMNS",
    "GlossaryMatcher",
    "Term",
    "default_glossary",
    "find_arabic_term",
    "load_glossary",
    # Arabic words
    "normalize_arabic",
    "spelled_numbers",
    "tokenize",
    "word_forms",
    # markup
    "citations",
    "markup",
    "numbers",
    "preservation_errors",
    "prose",
]
