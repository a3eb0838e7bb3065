"""Build the documentation website, in English and Arabic, with warnings as errors.

    python docs/build.py                 # both languages -> docs/_build/html/{en,ar}/ + root page
    python docs/build.py --language ar   # one language only
    python docs/build.py --update        # for translators: regenerate the .pot templates and
                                         # merge them into locales/ar/LC_MESSAGES/*.po

A build runs, in order: ``msgfmt --check`` on every catalogue (when gettext is installed),
``sphinx-build -b gettext`` into ``docs/_build/gettext`` (the templates that
``vgg-repro i18n check --pot docs/_build/gettext`` compares the catalogues with),
``sphinx-build -W -b html`` once per language, and the root ``index.html`` that leads to
both. Each Sphinx run is a separate process: Sphinx keeps its translations in globals.
Exit status: 0 when every step passed.
"""

from __future__ import annotations

import argparse
import html
import shutil
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
LOCALES = ROOT / "locales"
LANGUAGES = {"en": "English", "ar": "العربية"}
TRANSLATED = ("ar",)  # languages with catalogues in locales/


def sphinx(builder: str, out: Path, doctrees: Path, language: str, jobs: str) -> int:
    """One ``sphinx-build`` run with warnings as errors; returns its exit status."""
    cmd = [sys.executable, "-m", "sphinx", "-b", builder, "-W", "--keep-going", "-q"]
    cmd += ["-d", str(doctrees), "-D", f"language={language}", "-j", jobs, str(DOCS), str(out)]
    start = time.perf_counter()
    status = subprocess.call(cmd, cwd=ROOT)
    took = time.perf_counter() - start
    verdict = "ok" if status == 0 else f"FAILED (exit {status})"
    print(f"[docs] {builder} {language}: {verdict} in {took:.1f}s -> {out}", flush=True)
    return status


def check_catalogues() -> int:
    """``msgfmt --check`` every catalogue: syntax, headers and format strings."""
    msgfmt = shutil.which("msgfmt")
    catalogues = sorted(LOCALES.rglob("*.po"))
    if msgfmt is None:
        print("[docs] msgfmt not found (apt-get install gettext): catalogue syntax not checked")
        return 0
    failed = 0
    for po in catalogues:
        result = subprocess.run(
            [msgfmt, "--check", "-o", "/dev/null", str(po)], capture_output=True, text=True
        )
        if result.returncode != 0:
            failed += 1
            print(result.stderr.strip(), file=sys.stderr)
    print(f"[docs] msgfmt --check: {len(catalogues) - failed}/{len(catalogues)} catalogues ok")
    return 1 if failed else 0


def write_root_page(out: Path) -> Path:
    """``index.html`` at the root of the site, leading to both languages."""
    items = []
    for code, name in LANGUAGES.items():
        direction = "rtl" if code in TRANSLATED else "ltr"
        items.append(
            f'    <li><a href="{code}/index.html" hreflang="{code}" lang="{code}" '
            f'dir="{direction}">{html.escape(name)}</a></li>'
        )
    links = "\n".join(items)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>vgg_repro</title>
  <style>
    body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; }}
    ul {{ list-style: none; padding: 0; font-size: 1.4rem; }}
    li {{ margin: 0.8rem 0; }}
  </style>
</head>
<body>
  <h1>vgg_repro</h1>
  <p>Very Deep Convolutional Networks (Simonyan &amp; Zisserman, ICLR 2015).</p>
  <p lang="ar" dir="rtl">الشبكات الالتفافية العميقة جداً (Simonyan &amp; Zisserman, ICLR 2015).</p>
  <ul>
{links}
  </ul>
</body>
</html>
"""
    out.mkdir(parents=True, exist_ok=True)
    target = out / "index.html"
    target.write_text(page, encoding="utf-8")
    return target


def gettext(build: Path, jobs: str) -> int:
    """The .pot templates, one per document, in ``<build>/gettext``.

    Sphinx also writes ``sphinx.pot`` from the strings of ``docs/_templates``; it is
    removed, because ``locales/ar/LC_MESSAGES/sphinx.po`` is the site's interface
    catalogue (theme, search, Sphinx labels), kept by hand: merging that template into it
    would make every other interface string obsolete.
    """
    pot = build / "gettext"
    status = sphinx("gettext", pot, build / "doctrees" / "gettext", "en", jobs)
    (pot / "sphinx.pot").unlink(missing_ok=True)
    return status


def update_catalogues(build: Path, jobs: str) -> int:
    """Regenerate the templates and merge them into ``locales/<lang>/LC_MESSAGES``."""
    pot = build / "gettext"
    status = gettext(build, jobs)
    if status:
        return status
    cmd = [sys.executable, "-m", "sphinx_intl", "update", "-p", str(pot), "-d", str(LOCALES)]
    for language in TRANSLATED:
        cmd += ["-l", language]
    return subprocess.call(cmd, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--language", choices=sorted(LANGUAGES), action="append", help="default: all"
    )
    parser.add_argument("--output", type=Path, default=DOCS / "_build", help="default docs/_build")
    parser.add_argument(
        "--update",
        "--gettext",
        action="store_true",
        help="regenerate the .pot files and update the .po files (sphinx-intl update)",
    )
    parser.add_argument("--no-pot", action="store_true", help="skip the gettext templates")
    parser.add_argument("-j", "--jobs", default="1", help="sphinx-build -j (default 1)")
    args = parser.parse_args(argv)
    build = args.output.resolve()
    if args.update:
        return update_catalogues(build, args.jobs)
    status = check_catalogues()
    if not args.no_pot:
        status |= gettext(build, "1")
    for language in args.language or list(LANGUAGES):
        out = build / "html" / language
        status |= sphinx("html", out, build / "doctrees" / language, language, args.jobs)
    root = write_root_page(build / "html")
    print(f"[docs] root page: {root}")
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())
