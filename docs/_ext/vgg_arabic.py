"""Arabic (right-to-left) support for the vgg_repro site.

What no Sphinx theme does on its own, and Sphinx 9 does not ship for Arabic:

- ``<html lang="ar" dir="rtl">`` on every page: the rendered HTML of each page
  gets ``dir`` on its ``<html>`` tag (the theme only writes ``lang``);
- an Arabic search language: one light stemmer, in Python for the index and in
  JavaScript for the query, that strips the same clitics and suffixes, so that a
  word and its inflected and prefixed forms find the same pages;
- a language switcher (template ``language-switcher.html``) leading to the same
  page in the other language (``docs/_build/html/<lang>/<page>.html``);
- the role ``:ltr:`S = 256``` for a left-to-right run inside an Arabic sentence (a
  formula, an identifier, an English title): ``<bdi dir="ltr">`` in HTML, so that
  the bidirectional algorithm cannot reorder its parts (``7²C² = 49C²`` would read
  ``49C² = 7²C²``); plain text in every other format;
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

from docutils import nodes
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


# The light stemmer of the Arabic search, once in Python (the index) and once in
# JavaScript (the query): the same rules, so that a word, its definite form, its
# prefixed forms and its sound plural all find the same pages. Snowball's Arabic
# stemmer did not (التكوين -> تكو, التكوينات -> تكوين, والتكوين -> والتكو). The rules
# are Larkey's light10 with the clitics the glossary check strips (vgg_repro.i18n):
# normalise (no harakat or tatweel; أ إ آ ٱ -> ا; ى -> ي); drop the conjunction و or ف
# of a word of 4 letters or more; drop one of وال فال بال كال لل ال when 2 letters
# remain; then, in this order, each of the suffixes below when 2 letters remain.
ARABIC_PREFIXES = ("وال", "فال", "بال", "كال", "لل", "ال")
ARABIC_SUFFIXES = ("ها", "ان", "ات", "ون", "ين", "يه", "ية", "هم", "كم", "نا", "ه", "ة", "ي")
_ALEFS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا",
                        "ٱ": "ا", "ى": "ي"})  # fmt: skip


def light_stem(word: str) -> str:
    """The search stem of an Arabic word (any other word: lower-cased).

    >>> {light_stem(w) for w in ("تكوين", "التكوين", "والتكوين", "التكوينات")}
    {'تكو'}
    >>> {light_stem(w) for w in ("شبكة", "الشبكة", "وبالشبكات", "للشبكة")}
    {'شبك'}
    """
    word = _MARKS.sub("", word).translate(_ALEFS)
    if not re.search("[\u0621-\u064a]", word):
        return word.lower()
    if len(word) >= 4 and word[0] in "وف":
        word = word[1:]
    for prefix in ARABIC_PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 2:
            word = word[len(prefix) :]
            break
    for suffix in ARABIC_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            word = word[: -len(suffix)]
    return word


# The same in JavaScript. Sphinx escapes this code into its template, so it has no
# '<', '>' or '&' (hence Math.sign and nested ifs).
_JS_STEMMER = """
var Stemmer = function () {
  var prefixes = PREFIXES, suffixes = SUFFIXES;
  var atLeast = function (n, m) { return Math.sign(n - m) !== -1; };
  this.stemWord = function (w) {
    w = w.replace(/[\u064b-\u0652\u0670\u0640]/g, "")
      .replace(/[\u0623\u0625\u0622\u0671]/g, "\u0627").replace(/\u0649/g, "\u064a");
    if (!/[\u0621-\u064a]/.test(w)) { return w.toLowerCase(); }
    if (atLeast(w.length, 4)) {
      if (w[0] === "\u0648" || w[0] === "\u0641") { w = w.slice(1); }
    }
    for (var i = 0; i !== prefixes.length; i++) {
      var p = prefixes[i];
      if (w.startsWith(p)) {
        if (atLeast(w.length - p.length, 2)) { w = w.slice(p.length); break; }
      }
    }
    for (var j = 0; j !== suffixes.length; j++) {
      var s = suffixes[j];
      if (w.endsWith(s)) {
        if (atLeast(w.length - s.length, 2)) { w = w.slice(0, w.length - s.length); }
      }
    }
    return w;
  };
};
""".replace("PREFIXES", json.dumps(list(ARABIC_PREFIXES))).replace(
    "SUFFIXES", json.dumps(list(ARABIC_SUFFIXES))
)


class SearchArabic(SearchLanguage):
    """Arabic search: one light stemmer (:func:`light_stem`) in Python and in JavaScript."""

    lang = "ar"
    language_name = "Arabic"
    js_stemmer_code = _JS_STEMMER
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

    def split(self, input: str) -> list[str]:  # noqa: A002 (Sphinx's signature)
        return self._word_re.findall(_MARKS.sub("", input))

    def stem(self, word: str) -> str:
        return light_stem(word)


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
    # <link rel="alternate" hreflang>: search engines and browsers find the other language.
    links = "".join(
        f'<link rel="alternate" hreflang="{lang["code"]}" href="{lang["url"]}" />\n'
        for lang in context["vgg_languages"]
        if not lang["current"]
    )
    context["metatags"] = context.get("metatags", "") + links


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


class ltr_run(nodes.Inline, nodes.TextElement):  # noqa: N801 (docutils' node naming)
    """A left-to-right run isolated from the text around it (``:ltr:``)."""


def ltr_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``:ltr:`TEXT```: TEXT as one isolated left-to-right run."""
    return [ltr_run(rawtext, nodes.unescape(text))], []


def _visit_ltr_html(self, node: ltr_run) -> None:
    self.body.append('<bdi dir="ltr" class="vgg-ltr-run">')


def _depart_ltr_html(self, node: ltr_run) -> None:
    self.body.append("</bdi>")


def _pass(self, node: nodes.Node) -> None:  # other formats: the text alone
    pass


def _educate_dashes_in_arabic() -> None:
    """Let Sphinx's smart-quotes transform run on Arabic pages, for its dashes.

    docutils has no Arabic quotation marks, so Sphinx skipped the transform for
    Arabic, and with it the dashes and ellipses: the field lists of the API pages
    showed "--" where the English pages show "–". Registered with straight quotes,
    the transform leaves the translators' quotation marks as they wrote them.
    """
    from docutils.utils import smartquotes

    smartquotes.smartchars.quotes.setdefault("ar", "\"\"''")


def setup(app: Sphinx) -> dict[str, Any]:
    _educate_dashes_in_arabic()
    app.add_node(
        ltr_run,
        html=(_visit_ltr_html, _depart_ltr_html),
        latex=(_pass, _pass),
        text=(_pass, _pass),
        man=(_pass, _pass),
        texinfo=(_pass, _pass),
    )
    app.add_role("ltr", ltr_role)
    app.add_search_language(SearchArabic)
    app.connect("config-inited", _on_config_inited)
    app.connect("builder-inited", _on_builder_inited)
    app.connect("html-page-context", _on_html_page_context)
    app.connect("build-finished", _on_build_finished)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
