"""Sphinx configuration for the vgg_repro documentation, in English and Arabic.

Build both languages (warnings are errors) with ``python docs/build.py``; the
Arabic build is this configuration with ``-D language=ar``, translated from the
gettext catalogues in ``locales/ar/LC_MESSAGES/`` (one ``.po`` per page).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))  # this site's own extensions
sys.path.insert(0, str(DOCS.parent))  # vgg_repro itself, for autodoc and the generated tables

from vgg_repro import __version__  # noqa: E402

project = "vgg_repro"
copyright = "2026 vgg_repro"  # no English words: the footer is shown on Arabic pages too
release = version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # Google-style docstrings (style.md)
    "vgg_arabic",  # Arabic search language, dir="rtl", language switcher, translated chrome
    "vgg_tables",  # generated pages: Table 1, results, glossary, terminology
]

# -- i18n: sphinx-intl catalogues in the top-level locales/ ------------------
language = "en"  # the Arabic build passes -D language=ar
locale_dirs = ["../locales/"]
gettext_compact = False  # one catalogue per document
gettext_uuid = False
gettext_location = True
gettext_allow_fuzzy_translations = False  # fuzzy = untranslated (vgg-repro i18n check agrees)

# -- sources ----------------------------------------------------------------
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]
nitpicky = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# The glossary's single source of truth (issue 6).
vgg_glossary_path = str(DOCS / "glossary.tsv")
# The pipeline's results (issue 5); absent until a reference run is recorded.
vgg_results_path = str(DOCS.parent / "reports" / "results.json")

# -- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"  # mirrors correctly once <html dir="rtl"> is set
html_static_path = ["_static"]
html_css_files = ["vgg-docs.css"]
html_show_sourcelink = False  # a .txt of the English source is no use on the Arabic site
html_copy_source = False
html_last_updated_fmt = None
html_theme_options = {
    "navbar_end": ["language-switcher", "theme-switcher"],
    "footer_start": ["copyright"],
    "footer_center": [],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
    "show_prev_next": True,
    "navigation_with_keys": False,
}
