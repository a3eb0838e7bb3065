"""The translation check (vgg_repro.i18n: .check, .glossary, .markup): Arabic matching,
preserved markup, catalogues and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vgg_repro import cli
from vgg_repro.errors import ConfigError
from vgg_repro.i18n import (
    GlossaryMatcher,
    Term,
    check,
    default_glossary,
    find_arabic_term,
    load_glossary,
    markup,
    normalize_arabic,
    numbers,
    preservation_errors,
    tokenize,
    unisolated_runs,
)
from vgg_repro.i18n import glossary as glossary_module

ROOT = Path(__file__).resolve().parents[1]

GLOSSARY_ROWS = [
    ("convolutional network | ConvNet", "شبكة التفافية", "شبكات التفافية | شبكتان التفافيتان"),
    ("weight layer", "طبقة وزنية", "طبقات وزنية | طبقتان وزنيتان | طبقتين وزنيتين"),
    ("depth", "عمق", ""),
    ("representation depth", "عمق التمثيل", ""),
    ("architecture", "معمارية", "معماريات"),
    ("learning rate", "معدل التعلم", ""),
    ("padding", "حشو", ""),
    ("dropout", "إسقاط عشوائي", ""),
    ("ImageNet", "ImageNet", ""),
]


def _terms() -> list[Term]:
    return [
        Term(
            tuple(p.strip() for p in en.split("|")), ar, tuple(filter(None, v.split(" | "))), "", ""
        )
        for en, ar, v in GLOSSARY_ROWS
    ]


def _forms(headword: str) -> tuple[str, ...]:
    return next(t for t in _terms() if t.headword == headword).arabic_forms


# --------------------------------------------------------------------------- normaliser


def test_normalize_strips_harakat_tatweel_and_unifies_alef_and_digits() -> None:
    assert normalize_arabic("الشَّبَكَةُ الالتِفافِيَّةُ") == "الشبكة الالتفافية"
    assert normalize_arabic("التـــعلّم العميـق") == "التعلم العميق"
    assert normalize_arabic("أ إ آ ٱ") == "ا ا ا ا"
    assert normalize_arabic("إلى مستوى") == "الي مستوي"
    assert normalize_arabic("١٩ طبقة و٠٫٥ و۱۶") == "19 طبقة و0.5 و16"


# --------------------------------------------------------------------------- matcher: pass


@pytest.mark.parametrize(
    ("headword", "sentence"),
    [
        # conjunction + preposition + noun with an attached pronoun (ة written ت before it)
        ("convolutional network", "وبشبكتها الالتفافية حقق الفريق المركز الأول في التحدي."),
        # the article on both words, a listed plural
        ("convolutional network", "قيّمنا الشبكات الالتفافية العميقة جداً لتصنيف الصور."),
        # harakat and tanween on the term
        ("weight layer", "تتكون الشبكة E من تسع عشرة طَبَقَةً وَزْنِيَّةً."),
        # a listed dual, in the genitive
        ("weight layer", "أضفنا بين الكتلتين طبقتين وزنيتين."),
        # لل (preposition + article), and و + pronoun
        ("depth", "يعود تحسن الدقة للعمق وحده، وعمقها هو ما يميزها."),
        # ة written ت before a pronoun
        ("architecture", "تبقى معماريتها بسيطة رغم عمقها."),
        # ب + article on the first word of a two-word term
        ("learning rate", "بدأ التدريب بمعدل التعلم 0.01 ثم قُسم على 10."),
        ("padding", "نضيف حشواً بمقدار بكسل واحد حول الصورة."),
        ("ImageNet", "دُربت الشبكات على مجموعة بيانات ImageNet."),
    ],
)
def test_term_with_prefixes_and_suffixes_is_found(headword: str, sentence: str) -> None:
    assert find_arabic_term(sentence, _forms(headword))


# --------------------------------------------------------------------------- matcher: fail


@pytest.mark.parametrize(
    ("headword", "sentence"),
    [
        # near-synonyms instead of the glossary's term
        ("architecture", "تبقى بنية الشبكة بسيطة رغم عمقها."),
        ("convolutional network", "قيّمنا الشبكات التلافيفية العميقة جداً."),
        ("learning rate", "بدأ التدريب بمعدل التدريب 0.01."),
        ("dropout", "استخدمنا التسرب بنسبة 0.5 بعد الطبقتين الأوليين."),
        # the words of the term, but not together
        ("weight layer", "لكل طبقة من هذه الطبقات أوزان وزنية مشتركة."),
        # a substring is not a word: محشوة contains حشو
        ("padding", "الصورة محشوة بالأصفار من كل جانب."),
    ],
)
def test_near_synonym_or_substring_is_rejected(headword: str, sentence: str) -> None:
    assert not find_arabic_term(sentence, _forms(headword))


def _project_term(headword: str) -> Term:
    terms = load_glossary(ROOT / "docs" / "glossary.tsv")
    return next(t for t in terms if t.headword == headword)


@pytest.mark.parametrize(
    ("sentence", "found"),
    [
        # the dual in the construct state drops its nun (شبكتان -> شبكتا), nominative...
        ("شبكتا الورقة الأعمق هما D وE.", True),
        # ... and genitive (شبكتين -> شبكتي), with a preposition attached
        ("قارنّا بين أخطاء شبكتي الورقة الأعمق.", True),
        # with a conjunction and an attached pronoun
        ("وشبكتاها الأعمق أدق من A.", True),
        # the construct of another word is not the term
        ("نموذجا الورقة الأعمق هما D وE.", False),
        # a word that only looks alike: the two retinas
        ("تتلقى الشبكيتان الصورة.", False),
    ],
)
def test_a_dual_in_the_construct_state_is_the_term(sentence: str, found: bool) -> None:
    term = _project_term("network")
    assert find_arabic_term(sentence, term.arabic_forms, term.unrelated) is found


@pytest.mark.parametrize(
    ("sentence", "found"),
    [
        # "we sample the scales more finely": بدقة أكبر is not the accuracy of a net
        ("نأخذ عينات المقاييس بدقة أكبر.", False),
        ("وبدقة أكبر نأخذ عينات المقاييس.", False),
        # the term elsewhere in the same sentence still counts
        ("ترتفع الدقة حين نأخذ عينات المقاييس بدقة أكبر.", True),
        # the same words without the preposition are the term: "D's accuracy is greater"
        ("دقة الشبكة D أكبر من دقة A.", True),
        # the preposition with another word after it: "with the classification accuracy"
        ("نقارن الشبكات بدقة التصنيف على 1,500 صورة.", True),
    ],
)
def test_a_term_inside_an_unrelated_phrase_does_not_count(sentence: str, found: bool) -> None:
    term = _project_term("accuracy")
    assert "بدقة أكبر" in term.unrelated
    assert find_arabic_term(sentence, term.arabic_forms, term.unrelated) is found


def test_the_checker_reports_a_term_found_only_in_an_unrelated_phrase() -> None:
    matcher = GlossaryMatcher([_project_term("accuracy")])
    msgid = "Multi-scale testing improves the accuracy."
    assert matcher.missing_terms(msgid, "يقيس الاختبار متعدد المقاييس بدقة أكبر.") != []
    assert matcher.missing_terms(msgid, "يحسّن الاختبار متعدد المقاييس الدقة.") == []


def test_english_terms_longest_match_plural_and_hyphen() -> None:
    matcher = GlossaryMatcher(_terms())
    found = matcher.english_terms("Representation depth grows with the weight-layers of ConvNets.")
    assert [t.headword for t in found] == [
        "representation depth",
        "weight layer",
        "convolutional network",
    ]
    # literals, code roles and URLs are not prose
    assert matcher.english_terms("``depth`` and :func:`dropout` at https://x.org/depth") == []
    # nor are dotted names, as autodoc writes parameter types ("vgg_repro.depth.Net")
    assert matcher.english_terms("a vgg_repro.depth.Net, saved in depth.pt.") == []
    assert [t.headword for t in matcher.english_terms("a vgg_repro.Net of depth 19")] == ["depth"]


def test_missing_terms_reports_the_near_synonym() -> None:
    matcher = GlossaryMatcher(_terms())
    msgid = "The architecture of the :term:`convolutional network` has 19 weight layers."
    good = "لمعمارية :term:`الشبكة الالتفافية <convolutional network>` 19 طبقة وزنية."
    bad = "لبنية :term:`الشبكة الالتفافية <convolutional network>` 19 طبقة وزنية."
    assert matcher.missing_terms(msgid, good) == []
    assert [t.headword for t in matcher.missing_terms(msgid, bad)] == ["architecture"]


# --------------------------------------------------------------------------- preservation


def test_numbers_are_compared_with_arabic_digits_normalised() -> None:
    assert numbers("dropout 0.5 on 4096-channel layers; 132,863,336 parameters") == {
        "0.5": 1,
        "4096": 1,
        "132863336": 1,
    }
    msgid = "Dropout ratio 0.5 on FC6 and FC7."
    assert preservation_errors(msgid, "نسبة الإسقاط ٠٫٥ على FC6 وFC7.") == []
    errors = preservation_errors(msgid, "نسبة الإسقاط النصف على FC6 وFC7.")
    assert errors == [("number", "missing 0.5")]


def test_a_number_added_in_translation_is_flagged() -> None:
    msgid = "Wait for two validation runs without improvement."
    assert preservation_errors(msgid, "انتظر عمليتي تحقق دون تحسّن.") == []
    added = preservation_errors(msgid, "انتظر 2 من عمليات التحقق دون تحسّن.")
    assert added == [("number", "added 2")]


@pytest.mark.parametrize(
    ("msgid", "msgstr", "errors"),
    [
        # a small integer spelled as a word: cardinal, ordinal, with the article
        ("The top-5 error of net D.", "خطأ المراتب الخمس الأولى للشبكة D.", []),
        ("Stop after 3 epochs without improvement.", "توقف بعد ثلاث حقب دون تحسن.", []),
        ("The 2 deepest nets.", "الشبكتان الاثنتان الأعمق.", []),
        # a number word for another number does not stand in for it
        ("The top-5 error of net D.", "خطأ المراتب الأولى للشبكة D.", [("number", "missing 5")]),
        ("Stop after 3 epochs.", "توقف بعد أربع حقب.", [("number", "missing 3")]),
        # only 1 to 10 are spelled: 19 must stay a number
        ("19 weight layers.", "تسع عشرة طبقة وزنية.", [("number", "missing 19")]),
    ],
)
def test_a_small_number_may_be_spelled_out(msgid: str, msgstr: str, errors: list) -> None:
    assert preservation_errors(msgid, msgstr) == errors


def test_the_fields_of_a_generated_sentence_are_kept_by_name() -> None:
    msgid = "slope {estimate} per layer, p = {p}"
    isolated = "الميل {estimate} لكل طبقة، :ltr:`p = {p}`"
    assert preservation_errors(msgid, isolated) == []
    assert unisolated_runs(isolated) == []
    lost = preservation_errors("better for {better} of {of} nets", "أفضل في {better} من الشبكات")
    assert lost == [("markup", "missing placeholder 'of'")]
    renamed = preservation_errors("better for {better} of {of} nets", "أفضل في {best} من {of}")
    assert renamed == [("markup", "missing placeholder 'better'; unexpected placeholder 'best'")]


def test_markup_must_be_kept_but_term_text_may_be_translated() -> None:
    msgid = (
        "See :term:`weight layers <weight layer>`, ``vgg16`` and `PyTorch <https://pytorch.org>`_."
    )
    good = (
        "انظر :term:`الطبقات الوزنية <weight layer>` و``vgg16`` و`PyTorch <https://pytorch.org>`_."
    )
    assert preservation_errors(msgid, good) == []
    lost_literal = (
        "انظر :term:`الطبقات الوزنية <weight layer>` وvgg16 و`PyTorch <https://pytorch.org>`_."
    )
    # The literal is lost, and its digits now read as a number the English lacks.
    assert [k for k, _ in preservation_errors(msgid, lost_literal)] == ["number", "markup"]
    other_target = good.replace("<weight layer>", "<layer>")
    assert [k for k, _ in preservation_errors(msgid, other_target)] == ["markup"]
    other_url = good.replace("https://pytorch.org", "https://pytorch.org/ar")
    assert [k for k, _ in preservation_errors(msgid, other_url)] == ["markup"]
    assert markup(":ref:`Text <label>`") == markup(":ref:`نص <label>`")


def test_citations_keep_names_and_years() -> None:
    msgid = "a ConvNet (LeCun et al., 1989; Krizhevsky et al., 2012) with more depth"
    good = "شبكة التفافية (LeCun et al., 1989; Krizhevsky et al., 2012) أعمق"
    assert preservation_errors(msgid, good) == []
    bad = "شبكة التفافية (لوكون وآخرون، 1989؛ Krizhevsky et al., 2012) أعمق"
    assert ("citation", "missing LeCun 1989") in preservation_errors(msgid, bad)


# --------------------------------------------------------------------------- catalogues

PO_HEADER = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"
"Language: ar\\n"

"""


def _write_glossary(path: Path) -> Path:
    lines = ["en\tar\tar_variants\tar_unrelated\tdefinition_en\tdefinition_ar"]
    lines += [f"{en}\t{ar}\t{v}\t\tdefinition\tتعريف" for en, ar, v in GLOSSARY_ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_po(locales: Path, name: str, entries: list[tuple[str, str, bool]]) -> Path:
    folder = locales / "ar" / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    body = PO_HEADER
    for msgid, msgstr, fuzzy in entries:
        body += ("#, fuzzy\n" if fuzzy else "") + f'msgid "{msgid}"\nmsgstr "{msgstr}"\n\n'
    path = folder / f"{name}.po"
    path.write_text(body, encoding="utf-8")
    return path


GOOD = (
    "VGG has 19 :term:`weight layers <weight layer>`.",
    "لدى VGG تسع عشرة :term:`طبقة وزنية <weight layer>`، أي 19 طبقة.",
    False,
)


def _run(tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    args = ["i18n", "check", "--locales", str(tmp_path / "locales")]
    args += ["--glossary", str(_write_glossary(tmp_path / "glossary.tsv")), "--json", str(report)]
    status = cli.main([*args, *extra])
    return status, json.loads(report.read_text(encoding="utf-8"))


def test_complete_consistent_catalogue_passes(tmp_path: Path) -> None:
    _write_po(tmp_path / "locales", "networks", [GOOD])
    status, report = _run(tmp_path)
    assert status == 0 and report["passed"]
    assert report["overall"]["coverage"] == 100.0
    assert report["documents"]["networks"]["glossary_checked"] == 1


def test_fuzzy_entry_counts_as_untranslated(tmp_path: Path) -> None:
    fuzzy = ("The depth matters.", "العمق مهم.", True)
    _write_po(tmp_path / "locales", "networks", [GOOD, fuzzy])
    status, report = _run(tmp_path)
    doc = report["documents"]["networks"]
    assert status == 1 and not report["passed"]
    assert (doc["translated"], doc["fuzzy"], doc["coverage"]) == (1, 1, 50.0)
    status, _ = _run(tmp_path, "--min-coverage", "50")
    assert status == 0


def test_glossary_inconsistency_fails_below_threshold(tmp_path: Path) -> None:
    bad = ("The architecture is simple.", "البنية بسيطة.", False)
    _write_po(tmp_path / "locales", "index", [GOOD, bad])
    status, report = _run(tmp_path)
    assert status == 1
    assert report["overall"]["glossary_consistency"] == 50.0
    kinds = [i["kind"] for i in report["documents"]["index"]["issues"]]
    assert kinds == ["glossary"]
    assert _run(tmp_path, "--min-glossary", "50")[0] == 0


def test_lost_number_or_markup_fails(tmp_path: Path) -> None:
    lost = ("Dropout ratio 0.5 on ``FC6``.", "نسبة الإسقاط العشوائي النصف على FC6.", False)
    _write_po(tmp_path / "locales", "recipe", [lost])
    status, report = _run(tmp_path)
    doc = report["documents"]["recipe"]
    assert status == 1
    # 0.5 lost; the 6 of FC6, no longer a literal, added; the literal lost.
    assert (doc["number_errors"], doc["markup_errors"]) == (2, 1)


# Real sentences of the docs: formulas and settings inside Arabic text.
ISOLATED = [
    "مع C قناة للدخل والخرج، تحمل ثلاث طبقات :ltr:`3·(3²C²) = 27C²` وزناً.",
    "تقابل :ltr:`S = 37` في النسخة المصغّرة :ltr:`S = 256` في الورقة.",
    "مقاييس الاختبار :ltr:`{S-32, S, S+32}` تُكتب ``--scales multi``.",
    "الطبقات 3 + 2 من الشبكة A-LRN.",  # digits only, or a name with a hyphen: no reordering
    "الأوزان من :ltr:`N(0, std^2)`، والانحيازات 0.",
]
BARE = [
    ("مع C قناة، تحمل ثلاث طبقات 3·(3²C²) = 27C² وزناً.", "3·(3²C²) = 27C²"),
    ("تقابل S = 37 في النسخة المصغّرة.", "S = 37"),
    ("أي :ltr:`S = 256` وS = 384 في الورقة.", "S = 384"),  # after the conjunction و
    ("يعمل الاختبار عند Q=S لكل شبكة.", "Q=S"),
    ("دمج D+E في الجدول 6.", "D+E"),
    ("مقاييس الاختبار {S-32, S, S+32} لكل شبكة.", "S+32"),
]


@pytest.mark.parametrize("sentence", ISOLATED)
def test_isolated_or_harmless_runs_pass(sentence: str) -> None:
    assert unisolated_runs(sentence) == []


@pytest.mark.parametrize("sentence, run", BARE)
def test_a_bare_formula_in_arabic_text_is_flagged(sentence: str, run: str) -> None:
    assert unisolated_runs(sentence) == [run]


def test_the_isolation_role_is_not_markup_to_keep_and_its_numbers_count() -> None:
    msgid = "Three layers hold 3·(3²C²) = 27C² weights."
    assert preservation_errors(msgid, "تحمل ثلاث طبقات :ltr:`3·(3²C²) = 27C²` وزناً.") == []
    lost = preservation_errors(msgid, "تحمل ثلاث طبقات :ltr:`3·(C²) = C²` وزناً.")
    assert [k for k, _ in lost] == ["number"]


def test_an_unisolated_formula_fails_the_check(tmp_path: Path) -> None:
    bare = ("Q = 256 is the test scale.", "مقياس الاختبار Q = 256.", False)
    _write_po(tmp_path / "locales", "protocols", [GOOD, bare])
    status, report = _run(tmp_path)
    issues = report["documents"]["protocols"]["issues"]
    assert status == 1 and [i["kind"] for i in issues] == ["isolation"]
    assert ":ltr:`Q = 256`" in issues[0]["detail"]
    fixed = ("Q = 256 is the test scale.", "مقياس الاختبار :ltr:`Q = 256`.", False)
    _write_po(tmp_path / "locales", "protocols", [GOOD, fixed])
    assert _run(tmp_path)[0] == 0


def test_template_msgids_missing_from_catalogue_are_untranslated(tmp_path: Path) -> None:
    _write_po(tmp_path / "locales", "networks", [GOOD])
    pot = tmp_path / "pot"
    pot.mkdir()
    new = 'msgid "A new paragraph."\nmsgstr ""\n'
    (pot / "networks.pot").write_text(
        PO_HEADER + f'msgid "{GOOD[0]}"\nmsgstr ""\n\n' + new, encoding="utf-8"
    )
    (pot / "results.pot").write_text(PO_HEADER + new, encoding="utf-8")
    status, report = _run(tmp_path, "--pot", str(pot))
    assert status == 1
    assert report["documents"]["networks"]["missing"] == 1
    assert report["documents"]["results"]["coverage"] == 0.0


def test_no_catalogue_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    glossary = str(_write_glossary(tmp_path / "g.tsv"))
    status = cli.main(["i18n", "check", "--locales", str(tmp_path), "--glossary", glossary])
    assert status == 2
    assert "no catalogues" in capsys.readouterr().err


# --------------------------------------------------------------------------- glossary file


def test_glossary_header_and_duplicates_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "g.tsv"
    path.write_text("en\tar\nx\ty\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="header"):
        load_glossary(path)
    _write_glossary(path)
    with path.open("a", encoding="utf-8") as f:
        f.write("Depth\tعُمق\t\t\tdefinition\tتعريف\n")
    with pytest.raises(ConfigError, match="already defined"):
        load_glossary(path)


def test_project_glossary_is_self_consistent() -> None:
    """Every Arabic term and variant of docs/glossary.tsv is recognised as itself."""
    terms = load_glossary(ROOT / "docs" / "glossary.tsv")
    seed = {
        "convolutional network", "depth", "image classification", "representation",
        "architecture", "visual recognition", "deep learning", "weight layer",
        "representation depth", "generalisation", "visual representation", "ImageNet",
    }  # fmt: skip
    assert seed <= {t.headword for t in terms}
    for term in terms:
        for form in term.arabic_forms:
            assert find_arabic_term("وفي " + form + " هنا", term.arabic_forms), form
        assert tokenize(term.ar), term.headword


def test_glossary_definitions_are_checked_too(tmp_path: Path) -> None:
    _write_po(tmp_path / "locales", "networks", [GOOD])
    glossary = _write_glossary(tmp_path / "glossary.tsv")
    with glossary.open("a", encoding="utf-8") as f:
        f.write("momentum\tزخم\t\t\tSGD momentum, with dropout 0.5.\tزخم SGD مع التسرب 0.5.\n")
    report = tmp_path / "report.json"
    args = ["i18n", "check", "--locales", str(tmp_path / "locales"), "--glossary", str(glossary)]
    assert cli.main([*args, "--json", str(report)]) == 1
    issues = json.loads(report.read_text(encoding="utf-8"))["documents"]["glossary.tsv"]["issues"]
    assert [(i["kind"], i["msgid"]) for i in issues] == [("glossary", "definition of 'momentum'")]


def test_project_glossary_is_found_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --glossary, the check reads docs/glossary.tsv of the repository, not of the cwd."""
    _write_po(tmp_path / "locales", "networks", [GOOD])
    monkeypatch.chdir(tmp_path)
    assert default_glossary() == ROOT / "docs" / "glossary.tsv"
    project = load_glossary(ROOT / "docs" / "glossary.tsv")
    assert load_glossary() == project
    result = check(tmp_path / "locales")
    assert [d.document for d in result.documents] == ["networks", "glossary.tsv"]
    assert result.documents[-1].entries == len(project)


def test_missing_project_glossary_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed without the repository and run outside it: say what to pass."""
    monkeypatch.setattr(glossary_module, "_REPO_ROOT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="pass --glossary PATH") as err:
        load_glossary()
    assert "\n" not in str(err.value)
    (tmp_path / "docs").mkdir()
    _write_glossary(tmp_path / "docs" / "glossary.tsv")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert default_glossary() == tmp_path / "docs" / "glossary.tsv"
