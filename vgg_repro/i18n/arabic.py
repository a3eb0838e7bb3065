"""Arabic words as the translation checks compare them: spelling, clitics, numbers.

Arabic attaches to a word what English writes apart: the conjunctions و ف, the
prepositions ب ك ل, the article ال and the attached pronouns; and it spells the same word
with or without harakat, tatweel and hamza on the alef. The glossary check
(:mod:`vgg_repro.i18n.glossary`) and the number check (:mod:`vgg_repro.i18n.rst`) both
compare words through the functions here, so that they agree on what a word is.
"""

from __future__ import annotations

import re
from collections import Counter

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
CONJUNCTIONS = "وف"  # و ف: written onto the next word
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

    >>> tokenize("خطأ الشبكة E على ImageNet عند Q = 256")
    ['خطا', 'الشبكة', 'e', 'علي', 'imagenet', 'عند', 'q', '256']
    """
    return [t.lower() for t in _TOKEN.findall(normalize_arabic(text))]


def strip_article(word: str) -> str:
    """A normalised word without its article (ال, or لل after the preposition ل).

    >>> strip_article("الشبكة"), strip_article("للشبكة"), strip_article("الة")
    ('شبكة', 'شبكة', 'الة')
    """
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
    for chars in (CONJUNCTIONS, _PREPOSITIONS):
        forms |= {w[1:] for w in forms if len(w) > 2 and w[0] in chars}
    forms |= {strip_article(w) for w in forms}
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


# Small integers as a translator may spell them (normalised: ا for أ, ي for final ى):
# cardinals and ordinals, masculine and feminine. "top-5 error" is «خطأ المراتب الخمس
# الأولى» and "the 2 runs" may be «التشغيلان الاثنان»: the number is kept, as a word.
_NUMBER_WORDS = {
    "1": ("واحد", "واحدة", "اول", "اولي", "اولا"),
    "2": ("اثنان", "اثنين", "اثنتان", "اثنتين", "ثاني", "ثانية", "مرتان", "مرتين"),
    "3": ("ثلاث", "ثلاثة", "ثالث", "ثالثة"),
    "4": ("اربع", "اربعة", "رابع", "رابعة"),
    "5": ("خمس", "خمسة", "خامس", "خامسة"),
    "6": ("ست", "ستة", "سادس", "سادسة"),
    "7": ("سبع", "سبعة", "سابع", "سابعة"),
    "8": ("ثمان", "ثماني", "ثمانية", "ثامن", "ثامنة"),
    "9": ("تسع", "تسعة", "تاسع", "تاسعة"),
    "10": ("عشر", "عشرة", "عاشر", "عاشرة"),
}
_WORD_NUMBER = {word: number for number, words in _NUMBER_WORDS.items() for word in words}


def spelled_numbers(text: str) -> Counter[str]:
    """The integers 1 to 10 that ``text`` spells as Arabic words, as digit strings.

    Each word counts once, with its prefixes and its attached pronoun removed.

    >>> sorted(spelled_numbers("خطأ المراتب الخمس الأولى، وللمرة الثانية").elements())
    ['1', '2', '5']
    >>> spelled_numbers("الطبقة الأخيرة")
    Counter()
    """
    found: Counter[str] = Counter()
    for token in tokenize(text):
        numbers = {_WORD_NUMBER[w] for w in word_forms(token) if w in _WORD_NUMBER}
        if len(numbers) == 1:
            found[numbers.pop()] += 1
    return found
