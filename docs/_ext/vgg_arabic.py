"""Arabic (right-to-left) support for the vgg_repro site.

What no Sphinx theme does on its own, and Sphinx 9 does not ship for Arabic:

- ``<html lang="ar" dir="rtl">`` on every page: the rendered HTML of each page
  gets ``dir`` on its ``<html>`` tag (the theme only writes ``lang``);
- an Arabic search language: Snowball's Arabic stemmer on both sides, the
  ``snowballstemmer`` package when indexing and ``arabic-stemmer.js`` (shipped
  with Sphinx 9) in the browser, so that a search finds inflected forms;
- a language switcher (template ``language-switcher.html``) leading to the same
  page in the other language (``docs/_build/html/<lang>/<page>.html``);
- the interface strings of the theme and of Sphinx's JavaScript translated from
  ``locales/<lang>/LC_MESSAGES/sphinx.po``: the theme's search placeholder is a
  theme option, and ``translations.js`` is rebuilt from the merged catalogue
  because Sphinx's own Arabic one is mostly empty.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import snowballstemmer
from sphinx.application import Sphinx
from sphinx.locale import get_translator
from sphinx.search import SearchLanguage

#: Languages of the site, in the order the switcher lists them, with their own names.
SITE_LANGUAGES: dict[str, str] = {"en": "English", "ar": "العربية"}
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})

# Harakat (U+064B-U+0652), superscript alef (U+0670) and tatweel (U+0640) are not
# letters: strip them before splitting, or a vocalised word would split in pieces.
_MARKS = re.compile("[\u064b-\u0652\u0670\u0640]")

# Particles, pronouns and prepositions that carry no meaning in a search.
ARABIC_STOPWORDS = frozenset(
    """
    في من على إلى الى عن مع أن ان إن لا ما لم لن هذا هذه ذلك تلك هو هي هم هن
    التي الذي الذين كان كانت أو او ثم قد كل بعد قبل عند حتى إذا اذا كما بين
    """.split()
)


class SearchArabic(SearchLanguage):
    """Arabic search: Snowball's Arabic stemmer in Python and in JavaScript."""

    lang = "ar"
    language_name = "Arabic"  # -> window.Stemmer = ArabicStemmer
    js_stemmer_rawcode = "arabic-stemmer.js"
    stopwords = ARABIC_STOPWORDS
    # Same splitting in the browser as split() below (no '<', '>' or '&': the
    # template that embeds this is escaped).
    js_splitter_code = r"""
var splitQuery = function (query) {
  return query
    .replace(/[\u064B-\u0652\u0670\u0640]/g, "")
    .split(/[^\p{Letter}\p{Number}_]+/gu)
    .filter(function (term) { return term; });
};
"""

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        self.stemmer = snowballstemmer.stemmer("arabic")

    def split(self, input: str) -> list[str]:  # noqa: A002 (Sphinx's signature)
        return self._word_re.findall(_MARKS.sub("", input))

    def stem(self, word: str) -> str:
        return self.stemmer.stemWord(word.lower())


def _add_dir_to_html_tag(html: str, direction: str) -> str:
    """Add ``dir`` to the first ``<html>`` tag, unless it has one.

    >>> _add_dir_to_html_tag('<!DOCTYPE html>\\n<html lang="ar">', "rtl")
    '<!DOCTYPE html>\\n<html lang="ar" dir="rtl">'
    """
    match = re.search(r"<html\b[^>]*>", html)
    if match is None or re.search(r"\sdir=", match.group(0)):
        return html
    tag = match.group(0)
    return html[: match.start()] + tag[:-1].rstrip() + f' dir="{direction}">' + html[match.end() :]


def _language(app: Sphinx) -> str:
    return (app.config.language or "en").split("_")[0]


def _on_config_inited(app: Sphinx, config: Any) -> None:
    # Two interface strings of pydata-sphinx-theme are theme options, not template
    # strings: the search field's placeholder and the label of the overflow menu.
    _ = get_translator().gettext
    options = dict(config.html_theme_options or {})
    options.setdefault("search_bar_text", _("Search the docs ..."))
    options.setdefault("header_dropdown_text", _("More"))
    config.html_theme_options = options


def _on_builder_inited(app: Sphinx) -> None:
    if app.builder.format != "html" or _language(app) not in RTL_LANGUAGES:
        return
    templates = app.builder.templates
    render = templates.render

    def render_rtl(template: str, context: dict[str, Any]) -> str:
        return _add_dir_to_html_tag(render(template, context), "rtl")

    templates.render = render_rtl  # type: ignore[method-assign]


def _on_html_page_context(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Links to the same page in every language of the site (sibling output folders)."""
    current = _language(app)
    up = "../" * (pagename.count("/") + 1)
    suffix = app.builder.out_suffix if hasattr(app.builder, "out_suffix") else ".html"
    context["vgg_languages"] = [
        {
            "code": code,
            "name": name,
            "url": f"{up}{code}/{pagename}{suffix}",
            "current": code == current,
        }
        for code, name in SITE_LANGUAGES.items()
    ]
    context["vgg_direction"] = "rtl" if current in RTL_LANGUAGES else "ltr"


def _on_build_finished(app: Sphinx, exception: Exception | None) -> None:
    """Rewrite ``_static/translations.js`` from the merged ``sphinx`` catalogue."""
    if exception is not None or app.builder.format != "html" or _language(app) == "en":
        return
    target = Path(app.outdir) / "_static" / "translations.js"
    if not target.exists():
        return
    text = target.read_text(encoding="utf-8")
    data = json.loads(text[text.index("{") : text.rindex("}") + 1])
    translator = get_translator()
    plural_counts = (0, 1, 2, 3, 11, 100)  # one n per Arabic plural form
    messages: dict[str, Any] = {}
    for msgid, value in data.get("messages", {}).items():
        if isinstance(value, list):
            plural = msgid.replace("one page", "${resultCount} pages")
            messages[msgid] = [translator.ngettext(msgid, plural, n) for n in plural_counts]
        else:
            messages[msgid] = translator.gettext(msgid)
    data["messages"] = messages
    data["locale"] = _language(app)
    body = json.dumps(data, ensure_ascii=False, indent=4, sort_keys=True)
    target.write_text(f"Documentation.addTranslations({body});\n", encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_search_language(SearchArabic)
    app.connect("config-inited", _on_config_inited)
    app.connect("builder-inited", _on_builder_inited)
    app.connect("html-page-context", _on_html_page_context)
    app.connect("build-finished", _on_build_finished)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
