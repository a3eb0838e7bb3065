"""The documentation website in a real browser: both languages, RTL, switcher, Arabic search.

Builds the site once with ``docs/build.py`` (both languages, warnings as errors) into a
temporary folder, then opens the pages in Debian's headless Chromium through Selenium.
Without Chromium the browser tests are skipped on a workstation, and fail under CI
(``CI=true``), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Latin-script words allowed on an Arabic page outside code: names of people, projects,
# datasets and tools that are written in Latin script in Arabic too. Acronyms (all
# capitals), single letters and identifiers (with digits, "_", "." or "=") are allowed.
ALLOWED_LATIN = {
    "ImageNet", "PyTorch", "Lightning", "Sphinx", "Python", "JavaScript", "Poedit",
    "torchvision", "timm", "Caffe", "AlexNet", "NVIDIA", "Titan", "Black", "Simonyan",
    "Zisserman", "LeCun", "Krizhevsky", "Glorot", "Bengio", "arXiv", "et", "al", "Ctrl",
    "GMACs", "MACs", "ConvNet", "ReLU", "English", "GitHub", "Git", "Debian", "Chromium",
    "Linux", "macOS", "Windows", "CUDA", "GMAC", "pip", "dvc", "git", "Very", "Deep",
    "Convolutional", "Networks", "for", "Large", "Scale", "Image", "Recognition", "gettext",
    "msgfmt", "Babel", "McNemar", "mAP",
}  # fmt: skip

# Elements whose text is code, notation or deliberately another language.
SKIP_SELECTOR = (
    "script, style, noscript, template, code, pre, kbd, samp, tt, .notranslate, .sig, "
    ".highlight, .vgg-ltr, .vgg-en, [lang]:not([lang='ar']), .headerlink"
)

JS_COLLECT_TEXT = """
const skip = arguments[0];
const out = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode;
  const parent = node.parentElement;
  if (!parent || parent.closest(skip)) continue;
  const text = node.textContent.trim();
  if (text) out.push(text);
}
for (const el of document.querySelectorAll("[title], [aria-label], [placeholder], [alt]")) {
  if (el.closest(skip)) continue;
  for (const name of ["title", "aria-label", "placeholder", "alt"]) {
    const value = el.getAttribute(name);
    if (value) out.push(value);
  }
}
return out;
"""


def english_words(texts: list[str]) -> list[str]:
    """Latin-script words that are not names, acronyms, single letters or identifiers.

    >>> english_words(["بحث Search", "ImageNet vgg_repro A-LRN 3x3 VGG S=256 .po", "Back to top"])
    ['Search', 'Back', 'to', 'top']
    """
    found = []
    for text in texts:
        for token in re.findall(r"[A-Za-z0-9_.=/+:-]*[A-Za-z][A-Za-z0-9_.=/+:'-]*", text):
            if re.search(r"[0-9_=/+:]|\w\.\w|^\.\w", token):  # an identifier or a file (.po)
                continue
            token = token.strip(".-'")
            for part in token.split("-"):
                acronym = part.isupper() or (part[:-1].isupper() and part.endswith("s"))
                if len(part) <= 1 or acronym or part in ALLOWED_LATIN:
                    continue
                found.append(part)
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: ``<out>/html/{en,ar}/`` and the root page."""
    out = tmp_path_factory.mktemp("docs")
    cmd = [sys.executable, str(ROOT / "docs" / "build.py"), "--output", str(out), "--no-pot"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        f"docs build failed (warnings are errors):\n{result.stdout[-6000:]}\n"
        f"{result.stderr[-6000:]}"
    )
    return out / "html"


def test_build_has_both_languages_and_root_page(site: Path) -> None:
    for lang in ("en", "ar"):
        assert (site / lang / "index.html").is_file()
        assert (site / lang / "glossary.html").is_file()
        assert (site / lang / "searchindex.js").is_file()
    root = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="en/index.html"' in root and 'href="ar/index.html"' in root


def _pages(folder: Path) -> list[Path]:
    pages = sorted(folder.rglob("*.html"))
    return [p for p in pages if not p.relative_to(folder).parts[0].startswith("_")]


def test_every_arabic_page_is_rtl_and_every_english_page_is_not(site: Path) -> None:
    pages = _pages(site / "ar")
    assert len(pages) > 3
    for page in pages:
        tag = re.search(r"<html\b[^>]*>", page.read_text(encoding="utf-8")).group(0)
        assert 'lang="ar"' in tag and 'dir="rtl"' in tag, f"{page}: {tag}"
    for page in _pages(site / "en"):
        tag = re.search(r"<html\b[^>]*>", page.read_text(encoding="utf-8")).group(0)
        assert 'lang="en"' in tag and "rtl" not in tag, f"{page}: {tag}"


def test_every_page_links_to_its_twin(site: Path) -> None:
    for lang, other in (("ar", "en"), ("en", "ar")):
        for page in _pages(site / lang):
            html = page.read_text(encoding="utf-8")
            hrefs = re.findall(
                rf'class="vgg-language-switcher__link" href="([^"]+)" hreflang="{other}"', html
            )
            assert hrefs, f"{page}: no switcher link to {other}"
            twin = (page.parent / hrefs[0]).resolve()
            assert twin == (site / other / page.relative_to(site / lang)).resolve(), page
            assert twin.is_file(), twin


def _light_stem(word: str) -> str:
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import vgg_arabic
    finally:
        sys.path.pop(0)
    return vgg_arabic.light_stem(word)


# Six sets of forms of one word each (the bare word, definite, prefixed, plural) that
# must find the same pages; Snowball's stemmer split each set between several stems.
SEARCH_SETS = [
    ("تكوين", "التكوين", "والتكوين", "التكوينات"),
    ("شبكة", "الشبكة", "وبالشبكات", "للشبكة"),
    ("طبقة", "الطبقة", "بالطبقة", "الطبقات"),
    ("تقييم", "التقييم", "وللتقييم", "بالتقييم"),
    ("مقياس", "المقياس", "والمقياس", "بالمقياس"),
    ("صورة", "الصورة", "بالصورة", "والصورة"),
]


@pytest.mark.parametrize("forms", SEARCH_SETS)
def test_arabic_search_forms_share_one_stem(forms: tuple[str, ...]) -> None:
    assert len({_light_stem(w) for w in forms}) == 1, {w: _light_stem(w) for w in forms}


def test_arabic_search_index_is_stemmed(site: Path) -> None:
    """The index is built with the light stemmer and the page loads its JS twin."""
    language_data = (site / "ar" / "_static" / "language_data.js").read_text(encoding="utf-8")
    assert "var Stemmer = function" in language_data and "suffixes" in language_data
    text = (site / "ar" / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    glossary = index["docnames"].index("glossary")
    # المسرد, بالمسرد, للمسرد ... are indexed under one stem, which leads to the glossary.
    stem = _light_stem("بالمسرد")
    assert stem == _light_stem("المسرد") == _light_stem("للمسرد")
    pages = set()
    for kind in ("terms", "titleterms"):  # a word of the title is indexed as a title word
        found = index[kind].get(stem, [])
        pages |= {found} if isinstance(found, int) else set(found)
    assert glossary in pages


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        message = "Debian chromium and chromium-driver are not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; .ci/run installs them (apt-get install chromium ...)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _html_attrs(driver) -> tuple[str | None, str | None]:
    return (
        driver.execute_script("return document.documentElement.getAttribute('lang')"),
        driver.execute_script("return document.documentElement.getAttribute('dir')"),
    )


def _wait(predicate, timeout: float = 20.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _click_switcher(driver, lang: str) -> None:
    from selenium.webdriver.common.by import By

    selector = f"a.vgg-language-switcher__link[hreflang='{lang}']"
    links = driver.find_elements(By.CSS_SELECTOR, selector)
    assert links, f"no language switcher link to {lang!r} on {driver.current_url}"
    visible = [link for link in links if link.is_displayed()] or links
    driver.get(visible[0].get_attribute("href"))  # the href as the browser resolved it


def test_arabic_page_is_rtl_and_switcher_round_trips(site: Path, browser) -> None:
    browser.get((site / "ar" / "glossary.html").as_uri())
    assert _html_attrs(browser) == ("ar", "rtl")
    assert browser.execute_script("return getComputedStyle(document.body).direction") == "rtl"
    # Code stays left to right inside the mirrored page.
    code_dirs = browser.execute_script(
        "return [...document.querySelectorAll('pre, code')].map(e => getComputedStyle(e).direction)"
    )
    assert all(d == "ltr" for d in code_dirs)

    _click_switcher(browser, "en")
    assert browser.current_url.endswith("/en/glossary.html")
    lang, direction = _html_attrs(browser)
    assert lang == "en" and direction != "rtl"
    assert browser.execute_script("return getComputedStyle(document.body).direction") == "ltr"

    _click_switcher(browser, "ar")
    assert browser.current_url.endswith("/ar/glossary.html")
    assert _html_attrs(browser) == ("ar", "rtl")


def _search_pages(browser, site: Path, query: str) -> list[str]:
    from urllib.parse import quote

    browser.get((site / "ar" / "search.html").as_uri() + "?q=" + quote(query))
    _wait(
        lambda: browser.execute_script(
            "const s = document.querySelector('#search-results .search-summary');"
            "return s ? s.textContent.trim() : ''"
        ),
        what=f"the search summary for {query!r}",
    )
    hrefs = browser.execute_script(
        "return [...document.querySelectorAll('#search-results ul.search li a')]"
        ".map(a => a.getAttribute('href').split('#')[0].split('?')[0])"
    )
    return sorted(set(hrefs))


@pytest.mark.parametrize("forms", SEARCH_SETS)
def test_every_form_of_a_word_finds_the_same_pages(site: Path, browser, forms) -> None:
    """In the browser: the query stemmer (JavaScript) agrees with the index's (Python)."""
    found = {w: _search_pages(browser, site, w) for w in forms}
    assert found[forms[0]], f"{forms[0]!r} finds no page"
    assert all(pages == found[forms[0]] for pages in found.values()), found


@pytest.mark.parametrize("width", [1400, 400])
def test_arabic_interface_is_mirrored(site: Path, browser, width: int) -> None:
    """Previous is right of next; the drawer opens from the right; no table is wider
    than its column outside a box that scrolls it."""
    browser.set_window_size(width, 1000)
    try:
        browser.get((site / "ar" / "networks.html").as_uri())
        prev_next = browser.execute_script(
            "const p = document.querySelector('.prev-next-area a.left-prev'),"
            " n = document.querySelector('.prev-next-area a.right-next');"
            "return p && n ? [p.getBoundingClientRect().left, n.getBoundingClientRect().left]"
            " : null"
        )
        assert prev_next is not None and prev_next[0] > prev_next[1], prev_next
        too_wide = browser.execute_script(
            """
            return [...document.querySelectorAll('article table')].filter(t => {
              const box = t.closest('.pst-scrollable-table-container');
              const column = document.querySelector('article').getBoundingClientRect();
              const scrolls = box ? getComputedStyle(box).overflowX === 'auto' : false;
              return t.getBoundingClientRect().width > column.width + 1 && !scrolls;
            }).length;
            """
        )
        assert too_wide == 0
        if width == 400:
            from selenium.webdriver.common.by import By

            toggle = browser.find_element(By.CSS_SELECTOR, "button.primary-toggle")
            assert toggle.location["x"] > width / 2  # the drawer's button is on the right
            toggle.click()
            _wait(
                lambda: browser.execute_script(
                    "const d = document.getElementById('pst-primary-sidebar-modal');"
                    "if (!d || !d.open) { return false; }"
                    "const r = d.getBoundingClientRect(), w = window.innerWidth;"
                    # At the right edge (up to a scrollbar's gutter), away from the left.
                    "return w - r.right < 20 && r.left > w / 5"
                ),
                what="the drawer, open at the right edge",
            )
    finally:
        browser.set_window_size(1400, 1000)


def test_a_formula_in_arabic_text_keeps_its_logical_order(site: Path, browser) -> None:
    """3·(3²C²) = 27C² in an Arabic sentence: isolated by :ltr:, its first character is
    drawn left of its last (without isolation the bidirectional algorithm showed
    "27C² = (3²C²)·3")."""
    browser.get((site / "ar" / "networks.html").as_uri())
    first_last = browser.execute_script(
        """
        const run = [...document.querySelectorAll('bdi.vgg-ltr-run')]
          .find(e => e.textContent.includes('27C'));
        if (!run) { return null; }
        const text = run.firstChild, r = document.createRange();
        r.setStart(text, 0); r.setEnd(text, 1);
        const first = r.getBoundingClientRect().left;
        r.setStart(text, text.length - 1); r.setEnd(text, text.length);
        return [run.textContent, first, r.getBoundingClientRect().left,
                getComputedStyle(run).direction];
        """
    )
    assert first_last is not None, "no isolated formula on the Arabic networks page"
    text, first, last, direction = first_last
    assert text == "3·(3²C²) = 27C²" and direction == "ltr"
    assert first < last


def test_arabic_search_finds_the_glossary_from_an_inflected_form(site: Path, browser) -> None:
    from vgg_repro.i18n import load_glossary

    terms = load_glossary(ROOT / "docs" / "glossary.tsv")
    term = next(t for t in terms if t.headword == "glossary")
    query = "بال" + term.ar  # "with the glossary": the article and a preposition attached
    # _search_pages reads the list only once Sphinx has written the summary, which it
    # does last: results are appended one by one, 5 ms apart, so an earlier read can
    # see a partial list (CI once saw 2 of the pages, without the glossary).
    hrefs = _search_pages(browser, site, query)
    assert any("glossary.html" in href for href in hrefs), (query, hrefs)
    status = browser.execute_script(
        "return document.querySelector('#search-results .search-summary').textContent.trim()"
    )
    assert not re.search(r"[A-Za-z]{3,}", status), status


@pytest.mark.parametrize("page", ["index.html", "glossary.html", "search.html"])
def test_no_english_interface_label_on_arabic_pages(site: Path, browser, page: str) -> None:
    browser.get((site / "ar" / page).as_uri())
    if page == "search.html":
        browser.get((site / "ar" / page).as_uri() + "?q=" + "مسرد")
        # The summary is written last, once every result is listed: wait for its text,
        # so that the labels checked include the finished page's.
        _wait(
            lambda: browser.execute_script(
                "const s = document.querySelector('#search-results .search-summary');"
                "return s ? s.textContent.trim() : ''"
            ),
            what="search summary",
        )
    texts = browser.execute_script(JS_COLLECT_TEXT, SKIP_SELECTOR)
    words = english_words(texts)
    assert not words, f"English words on ar/{page}: {sorted(set(words))[:40]}"


# Only code is exempt on the results page: its generated numbers, labels and sentences
# (marked notranslate or left to right) are read too.
CODE_ONLY = (
    "script, style, noscript, template, code, pre, kbd, samp, tt, .sig, .highlight, "
    ".headerlink, [lang]:not([lang='ar'])"
)


def test_the_arabic_results_page_has_no_english_prose(site: Path, browser) -> None:
    """The claims' evidence is built from translated sentences with the numbers filled
    in; the rows, protocols and labels are code; what is left is names."""
    browser.get((site / "ar" / "results.html").as_uri())
    texts = browser.execute_script(JS_COLLECT_TEXT, CODE_ONLY)
    words = english_words(texts)
    assert not words, f"English words on ar/results.html: {sorted(set(words))[:40]}"
    assert not [t for t in texts if re.search(r"\{[a-z_]+\}", t)], "a field left unfilled"


def test_generated_sentences_are_filled_in_with_isolated_values(site: Path, browser) -> None:
    """The English page shows the report's sentence; on the Arabic page the same values
    are left-to-right runs inside the Arabic sentence, signs and brackets in order."""
    from vgg_repro.pipeline.claims import EVIDENCE_SENTENCES, evidence_sentence

    results = json.loads((ROOT / "reports" / "results.json").read_text(encoding="utf-8"))
    items = [i for c in results["claims"] for i in c["ours"] if evidence_sentence(i)]
    assert items, "the reference run has no slope, gain or count to show"
    key, fields = evidence_sentence(items[0])
    browser.get((site / "en" / "results.html").as_uri())
    english = browser.execute_script(
        "return [...document.querySelectorAll('.vgg-evidence p')].map(p => p.textContent)"
    )
    assert EVIDENCE_SENTENCES[key].format(**fields) in english
    browser.get((site / "ar" / "results.html").as_uri())
    runs = browser.execute_script(
        "return [...document.querySelectorAll('.vgg-evidence bdi.vgg-ltr-run')]"
        ".map(b => [b.textContent, getComputedStyle(b).direction])"
    )
    for value in fields.values():
        assert any(value in text and direction == "ltr" for text, direction in runs), value


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_no_two_pages_share_a_title(site: Path, lang: str) -> None:
    """Search results are listed by page title: two pages titled «الشبكات» (Networks, and
    the models API) could not be told apart. Sections show as "page > section"."""
    text = (site / lang / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    titles = index["titles"]
    shared = {
        t: [d for d, u in zip(index["docnames"], titles, strict=True) if u == t] for t in titles
    }
    assert not {t: docs for t, docs in shared.items() if len(docs) > 1}


def test_english_page_has_no_arabic_chrome(site: Path, browser) -> None:
    browser.get((site / "en" / "index.html").as_uri())
    texts = browser.execute_script(JS_COLLECT_TEXT, "script, style, [lang='ar']")
    assert not [t for t in texts if re.search("[\u0600-\u06ff]", t)]


def test_root_page_leads_to_both_languages(site: Path, browser) -> None:
    browser.get((site / "index.html").as_uri())
    from selenium.webdriver.common.by import By

    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a")]
    assert any(h.endswith("/en/index.html") for h in hrefs)
    assert any(h.endswith("/ar/index.html") for h in hrefs)


# --------------------------------------------------------------------------- generated pages


def test_networks_table_numbers_come_from_the_code(site: Path) -> None:
    from vgg_repro import models

    for lang in ("en", "ar"):
        page = (site / lang / "networks.html").read_text(encoding="utf-8")
        for name in models.CFGS:
            net = models.build_meta(name)
            assert f"{models.count_parameters(net):,}" in page, (lang, name)
            assert f"{models.count_macs(net, 224) / 1e9:.2f}" in page, (lang, name)


def _mini_project(path: Path, body: str) -> Path:
    (path / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'docs' / '_ext')!r})\n"
        "extensions = ['vgg_arabic', 'vgg_tables']\n"
        f"vgg_glossary_path = {str(ROOT / 'docs' / 'glossary.tsv')!r}\n"
        "gettext_compact = False\n",
        encoding="utf-8",
    )
    (path / "index.rst").write_text("Page\n====\n\n" + body, encoding="utf-8")
    out = path / "_build"
    cmd = [sys.executable, "-m", "sphinx", "-b", "gettext", "-W", "-q", str(path), str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out / "index.pot"


def test_generated_numbers_are_not_messages(tmp_path: Path) -> None:
    """Headers and claim sentences are msgids; counts, names and run results are not."""
    import json as json_

    results = {
        "profile": "miniature",
        "dataset": "synthetic",
        "num_classes": 10,
        "rows": [
            {
                "nets": ["D"],
                "row": "s256",
                "setting": "multi-scale",
                "train_scale": [256, 256],
                "protocol": "dense",
                "test_scales": [224, 256, 288],
                "top1_error": 41.25,
                "top5_error": 12.75,
                "paper": {"table": "Table 4", "top1_error": 26.6, "top5_error": 8.6},
            }
        ],
        "claims": [
            {
                "id": "depth",
                "verdict": "agrees",
                "holds": True,
                "ours": [
                    {"kind": "error", "label": "A", "top1_error": 45.5, "std_error": 1.3},
                    {"kind": "error", "label": "D", "top1_error": 41.25, "std_error": 1.3},
                ],
                "paper": [{"kind": "error", "label": "A", "top1_error": 29.6}],
            }
        ],
    }
    (tmp_path / "results.json").write_text(json_.dumps(results), encoding="utf-8")
    body = ".. vgg-networks-table::\n\n.. vgg-results:: results.json\n\n.. vgg-glossary::\n"
    pot = _mini_project(tmp_path, body).read_text(encoding="utf-8")
    msgids = re.findall(r'^msgid "(.*)"$', pot, flags=re.M)
    assert "Parameters" in msgids and "Top-1 error (%)" in msgids
    assert any(m.startswith("Classification error decreases with depth") for m in msgids)
    for generated in ("138,357,544", "15.47", "41.2", "12.8", "45.5", "synthetic", "vgg16"):
        assert not any(generated in m for m in msgids), generated
    assert not any("شبكة" in m or "convolutional network" in m for m in msgids)  # glossary


def test_results_without_a_reference_run_say_so(tmp_path: Path) -> None:
    pot = _mini_project(tmp_path, ".. vgg-results:: missing.json\n").read_text(encoding="utf-8")
    assert "No reference run has been recorded yet" in pot
    # the claims are listed all the same: their sentences are stable messages
    assert pot.count("(Table ") >= 6


def test_extension_doctests() -> None:
    import doctest

    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import vgg_arabic
        import vgg_tables
    finally:
        sys.path.pop(0)
    for module in (vgg_arabic, vgg_tables):
        failures, tried = doctest.testmod(module)
        assert tried and not failures, module.__name__


@pytest.mark.parametrize("page", ["api/models.html", "api/evaluation.html"])
def test_arabic_field_lists_show_the_dash_that_english_shows(site: Path, page: str) -> None:
    """docutils has no Arabic quotation marks, so Sphinx skipped its smart-quotes
    transform on Arabic pages, dashes included: parameter lists read "--" (issue 15)."""
    for lang in ("en", "ar"):
        text = (site / lang / page).read_text(encoding="utf-8")
        prose = re.sub(r"<(code|pre)\b.*?</\1>", "", text, flags=re.S)
        assert " -- " not in prose and " – " in prose, f"{lang}/{page}"
