"""Language names as directory publishers write them -> BCP-47 tags (``communication``).

No language library is a dependency, so this is a small table of the languages US social-care
directories list (names in English, a few endonyms, and common spellings). ``Chinese
(Mandarin)`` is read as the part in parentheses first, then the part before it; one cell may
list several (``English, Spanish``). A name not in the table is kept as
``CodeableConcept.text`` and reported, never guessed.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from directory_api.hsds.model import Record

NAMES = {
    "english": "en", "spanish": "es", "español": "es", "espanol": "es", "castilian": "es",
    "polish": "pl", "polski": "pl", "chinese": "zh", "mandarin": "zh", "putonghua": "zh",
    "cantonese": "yue", "arabic": "ar", "french": "fr", "russian": "ru", "ukrainian": "uk",
    "vietnamese": "vi", "tiếng việt": "vi", "korean": "ko", "tagalog": "tl", "filipino": "fil",
    "hindi": "hi", "urdu": "ur", "gujarati": "gu", "punjabi": "pa", "bengali": "bn",
    "german": "de", "italian": "it", "portuguese": "pt", "brazilian portuguese": "pt-BR",
    "haitian creole": "ht", "haitian": "ht", "kreyol": "ht", "kreyòl": "ht",
    # in US directories an unqualified "Creole" is Haitian Creole (the one 211s list)
    "creole": "ht", "cape verdean creole": "kea", "somali": "so", "swahili": "sw",
    "american sign language": "ase", "asl": "ase", "sign language": "ase", "greek": "el",
    "japanese": "ja", "farsi": "fa", "persian": "fa", "dari": "prs", "pashto": "ps",
    "amharic": "am", "tigrinya": "ti", "oromo": "om", "hmong": "hmn", "khmer": "km",
    "cambodian": "km", "lao": "lo", "laotian": "lo", "thai": "th", "burmese": "my",
    "karen": "kar", "nepali": "ne", "hebrew": "he", "yiddish": "yi", "turkish": "tr",
    "romanian": "ro", "serbian": "sr", "croatian": "hr", "bosnian": "bs", "albanian": "sq",
    "armenian": "hy", "georgian": "ka", "lithuanian": "lt", "czech": "cs", "hungarian": "hu",
    "dutch": "nl", "swedish": "sv", "norwegian": "no", "danish": "da", "finnish": "fi",
    "indonesian": "id", "malay": "ms", "tamil": "ta", "telugu": "te", "marathi": "mr",
    "malayalam": "ml", "kannada": "kn", "yoruba": "yo", "igbo": "ig", "hausa": "ha",
    "twi": "tw", "wolof": "wo", "kinyarwanda": "rw", "kirundi": "rn", "navajo": "nv",
    "samoan": "sm", "tongan": "to", "marshallese": "mh", "chuukese": "chk", "ilocano": "ilo",
    "rohingya": "rhg", "mam": "mam", "k'iche'": "quc", "quiche": "quc", "quechua": "qu",
    "portuguese creole": "kea", "taiwanese": "nan", "hakka": "hak", "toishanese": "zh",
}  # fmt: skip
_TAG = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$", re.I)
_SPLIT = re.compile(r"\s*(?:[,;/|&]|\band\b)\s*", re.I)
_PAREN = re.compile(r"^(.*?)\s*\((.+)\)\s*$")


class Language(NamedTuple):
    code: str | None  # BCP-47, or None when the name is unknown
    name: str  # what the export said
    repaired: bool  # the code came from a name, not from the ``code`` column


def from_name(name: str) -> str | None:
    key = " ".join(name.lower().replace("-", " ").split())
    if key in NAMES:
        return NAMES[key]
    m = _PAREN.match(key)
    if m:
        inner, outer = m.group(2).strip(), m.group(1).strip()
        return NAMES.get(inner) or NAMES.get(outer)
    if key.endswith(" language"):
        return NAMES.get(key.removesuffix(" language"))
    return None


def languages(lang: Record) -> list[Language]:
    """The languages one HSDS ``language`` record stands for (usually one)."""
    code = str(lang.get("code") or "").strip()
    name = str(lang.get("name") or "").strip()
    if code and _TAG.match(code):
        return [Language(code, name, False)]
    text = name or code  # a name in the code column is still a name
    if not text:
        return []
    out = []
    for part in [text] if "(" in text else _SPLIT.split(text):
        part = part.strip()
        if part:
            out.append(Language(from_name(part), part, True))
    return out
