"""Normal forms of Finnish and Swedish street addresses for matching.

`normalise_street` lower-cases (NFC, accents kept: ä/ö/å are distinct letters in
Finnish), collapses whitespace and punctuation, expands common abbreviations
(`Mannerheimint.` -> `mannerheimintie`, `Hämeenk.` -> `hämeenkatu`, `Annank` ->
`annankatu`, `Alexandersg.` -> `alexandersgatan`) and maps known Swedish street
names to their Finnish form (the gazetteer stores OSM `addr:street`, which in
Helsinki is the Finnish name).

`parse_address` splits free text such as "Mannerheimint. 12 B 5, 00100 Helsinki"
into street, house number, postcode and city.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# suffix abbreviations: Finnish and Swedish (Finland) street types
_SUFFIX = {"k": "katu", "kat": "katu", "t": "tie", "kj": "kuja", "pl": "polku", "g": "gatan", "gt": "gatan",
           "v": "vägen", "vg": "vägen", "gr": "gränden", "tr": "tori", "rt": "ranta"}
_SUFFIX_RE = re.compile(r"(\w{3,}?)(" + "|".join(sorted(_SUFFIX, key=len, reverse=True)) + r")\.?$")

# Helsinki streets with an official Swedish name (name:sv); extend as needed
SWEDISH_TO_FINNISH = {
    "annegatan": "annankatu", "mannerheimvägen": "mannerheimintie", "bulevarden": "bulevardi",
    "alexandersgatan": "aleksanterinkatu", "georgsgatan": "yrjönkatu", "nylandsgatan": "uudenmaankatu",
    "mikaelsgatan": "mikonkatu", "norra esplanaden": "pohjoisesplanadi", "fredriksgatan": "fredrikinkatu",
    "unionsgatan": "unioninkatu", "kalevagatan": "kalevankatu", "fabiansgatan": "fabianinkatu",
    "broholmsgatan": "siltasaarenkatu", "centralgatan": "keskuskatu", "lönnrotsgatan": "lönnrotinkatu",
    "brunnsgatan": "kaivokatu", "simonsgatan": "simonkatu", "universitetsgatan": "yliopistonkatu",
    "högbergsgatan": "korkeavuorenkatu", "kaserngatan": "kasarmikatu", "snellmansgatan": "snellmaninkatu",
    "kajsaniemigatan": "kaisaniemenkatu", "berggatan": "vuorikatu", "södra esplanaden": "eteläesplanadi",
    "glogatan": "kluuvikatu", "eriksgatan": "eerikinkatu", "skillnadsgatan": "erottajankatu",
    "södra kajen": "eteläranta", "tavastvägen": "hämeentie", "långbroplanen": "pitkänsillanranta",
    "sofiegatan": "sofiankatu", "ludvigsgatan": "ludviginkatu", "elisabetsgatan": "liisankatu",
    "vilhelmsgatan": "vilhonkatu", "lilla robertsgatan": "pieni roobertinkatu",
    "tölöviksgatan": "töölönlahdenkatu", "stenbäcksgatan": "paasivuorenkatu",
}

_POSTCODE_RE = re.compile(r"\b(\d{5})\b")
# house number: digits, optional letter, optional range; then staircase/flat (ignored)
_HOUSE_RE = re.compile(r"^(?P<street>.*?\D)\s*(?P<num>\d+(?:\s?[a-zA-ZåäöÅÄÖ](?![a-zåäö]{2}))?(?:\s?-\s?\d+)?)"
                       r"(?:\s+[a-zA-Z]\s*\d*)?(?:\s+(?:as\.?|bst\.?|lh\.?|as|bostad)?\s*\d+)?\s*$")


def _basic(s: str) -> str:
    s = unicodedata.normalize("NFC", s or "").lower().strip()
    s = s.replace("’", "'").replace("–", "-")
    s = re.sub(r"[,;:]+", " ", s)
    return re.sub(r"\s+", " ", s).strip()


def normalise_street(street: str) -> str:
    """Normal form of a street name (see the module docstring)."""
    s = _basic(street)
    s = s.rstrip(".").strip() + ("." if s.endswith(".") else "")
    if s.endswith("."):
        s = s[:-1]
        m = _SUFFIX_RE.search(s)
        if m:
            s = s[: m.start()] + m.group(1) + _SUFFIX[m.group(2)]
    else:
        # abbreviated without a dot ("Annank", "Hämeent") only for the unambiguous 'k'/'t' forms
        m = re.search(r"(\w{4,}(?:n|en|in|an|on|un|än|ön))(k|t)$", s)
        if m:
            s = s[: m.start()] + m.group(1) + _SUFFIX[m.group(2)]
    # a separate abbreviated word: "Alvar Aallon k" -> "alvar aallon katu"
    s = re.sub(r"\s(k|t|kj|g|v)$", lambda m: " " + _SUFFIX[m.group(1)], s)
    s = s.replace(".", "")
    return SWEDISH_TO_FINNISH.get(s, s)


def normalise_housenumber(num: str | None) -> str:
    """'12 b' -> '12b'; '12-14' -> '12-14'; '' for none."""
    return re.sub(r"\s+", "", (num or "").lower())


@dataclass(frozen=True)
class ParsedAddress:
    street: str            # as written
    street_norm: str
    housenumber: str       # normalised ('12b'), '' if none
    postcode: str          # five digits or ''
    city: str              # as written, '' if none


def parse_address(text: str, postcode: str = "", city: str = "") -> ParsedAddress:
    """Split a free-text Finnish address. `postcode` / `city` given separately win."""
    s = _basic(text)
    pc = postcode.strip() if postcode else ""
    m = _POSTCODE_RE.search(s)
    if m:
        pc = pc or m.group(1)
        after = s[m.end():].strip(" ,")
        s = s[: m.start()].strip(" ,")
        city = city or after
    elif "," in (text or ""):
        head, _, tail = (text or "").rpartition(",")
        if not re.search(r"\d", tail):
            s, city = _basic(head), city or tail.strip()
    street, num = s, ""
    hm = _HOUSE_RE.match(s)
    if hm:
        street, num = hm.group("street").strip(), hm.group("num")
    return ParsedAddress(street=street, street_norm=normalise_street(street),
                         housenumber=normalise_housenumber(num), postcode=pc, city=(city or "").strip())
