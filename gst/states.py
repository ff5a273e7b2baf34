"""GST state codes, and the state of an address as marketplaces send it.

The place of supply of goods shipped to a buyer is where the movement ends (IGST Act s.10(1)(a)):
the shipping address's state. Channels send that state as free text ("Orissa", "KA", "NCT of
Delhi", "Tamilnadu") or not at all, so `state_code` reads the usual spellings and
`state_from_pincode` falls back on the PIN.
"""

from __future__ import annotations

import re

# Current GST state codes (Daman and Diu's 25 merged into 26 on 26 January 2020; 28, undivided
# Andhra Pradesh, is no longer issued). 97 "Other Territory" is the code GSTN gives
# territories outside every state and UT (offshore areas).
STATES: dict[str, str] = {
    "01": "Jammu and Kashmir",
    "02": "Himachal Pradesh",
    "03": "Punjab",
    "04": "Chandigarh",
    "05": "Uttarakhand",
    "06": "Haryana",
    "07": "Delhi",
    "08": "Rajasthan",
    "09": "Uttar Pradesh",
    "10": "Bihar",
    "11": "Sikkim",
    "12": "Arunachal Pradesh",
    "13": "Nagaland",
    "14": "Manipur",
    "15": "Mizoram",
    "16": "Tripura",
    "17": "Meghalaya",
    "18": "Assam",
    "19": "West Bengal",
    "20": "Jharkhand",
    "21": "Odisha",
    "22": "Chhattisgarh",
    "23": "Madhya Pradesh",
    "24": "Gujarat",
    "26": "Dadra and Nagar Haveli and Daman and Diu",
    "27": "Maharashtra",
    "29": "Karnataka",
    "30": "Goa",
    "31": "Lakshadweep",
    "32": "Kerala",
    "33": "Tamil Nadu",
    "34": "Puducherry",
    "35": "Andaman and Nicobar Islands",
    "36": "Telangana",
    "37": "Andhra Pradesh",
    "38": "Ladakh",
    "97": "Other Territory",
}

STATE_CHOICES: list[tuple[str, str]] = [(code, f"{code} {name}") for code, name in STATES.items()]

# Other spellings per code: ISO 3166-2:IN codes (old and 2023 ones), vehicle registration codes,
# former names and the misspellings channels send.
_ALIASES: dict[str, tuple[str, ...]] = {
    "01": ("JK", "J&K", "J and K"),
    "02": ("HP", "Himachal"),
    "03": ("PB",),
    "04": ("CH",),
    "05": ("UK", "UT", "UA", "Uttaranchal", "Uttrakhand"),
    "06": ("HR",),
    "07": ("DL", "New Delhi", "NCT of Delhi", "National Capital Territory of Delhi"),
    "08": ("RJ",),
    "09": ("UP",),
    "10": ("BR",),
    "11": ("SK",),
    "12": ("AR", "Arunachal"),
    "13": ("NL",),
    "14": ("MN",),
    "15": ("MZ",),
    "16": ("TR",),
    "17": ("ML",),
    "18": ("AS",),
    "19": ("WB",),
    "20": ("JH",),
    "21": ("OD", "OR", "Orissa"),
    "22": ("CG", "CT", "Chattisgarh", "Chhatisgarh", "Chattisgar"),
    "23": ("MP",),
    "24": ("GJ", "Gujrat"),
    "26": ("DH", "DD", "DN", "DNH", "Dadra and Nagar Haveli", "Daman and Diu", "Daman", "Diu"),
    "27": ("MH", "Maharastra"),
    "29": ("KA",),
    "30": ("GA",),
    "31": ("LD", "Lakshadweep Islands"),
    "32": ("KL", "Kerela"),
    "33": ("TN",),
    "34": ("PY", "Pondicherry", "Pondichery"),
    "35": ("AN", "Andaman and Nicobar", "Andaman"),
    "36": ("TS", "TG", "Telengana", "Telagana"),
    "37": ("AP", "Andhra"),
    "38": ("LA",),
    "97": ("OT",),
}

# Words that say nothing about which state: "State of Karnataka", "NCT of Delhi", "UT of Ladakh".
_NOISE = {"the", "of", "state", "india", "nct", "ut", "govt"}


def _key(text: str) -> str:
    """Case, spacing, '&' and punctuation folded away: "Tamil Nadu" and "Tamilnadu" meet."""
    words = re.findall(r"[a-z0-9]+", text.lower().replace("&", " and "))
    return "".join(w for w in words if w not in _NOISE)


def _lookup() -> tuple[dict[str, str], dict[str, str]]:
    names, letters = {}, {}
    for code, name in STATES.items():
        names[_key(name)] = code
        for alias in _ALIASES.get(code, ()):
            if len(alias) == 2 and alias.isalpha():
                letters[alias] = code
            else:
                names[_key(alias)] = code
    return names, letters


_BY_NAME, _BY_LETTERS = _lookup()


def _from_words(text: str) -> str | None:
    text = text.strip().upper()
    iso = re.fullmatch(r"IN[-_ ]([A-Z]{2})", text)
    if iso:
        text = iso.group(1)
    if len(text) == 2 and text.isalpha():
        return _BY_LETTERS.get(text)
    return _BY_NAME.get(_key(text)) if _key(text) else None


def state_code(name_or_code: str) -> str | None:
    """The GST state code a channel's state text means, or None.

    Reads names ("Karnataka", " karnataka ", "Orissa", "NCT of Delhi", "Tamilnadu"), ISO 3166-2
    and vehicle codes ("KA", "IN-KA", "TS"/"TG"), the code itself ("29", "9"), and our own
    choice labels ("29 Karnataka"); a code and a name that disagree ("29 Kerala") mean None."""
    if not name_or_code:
        return None
    found = re.fullmatch(r"\s*(\d{1,2})\b[\s\-:.)(]*(.*?)[\s)]*", name_or_code)
    if not found:
        return _from_words(name_or_code)
    code = found.group(1).zfill(2)
    if code not in STATES:
        return None
    rest = found.group(2)
    if rest and _from_words(rest) != code:
        return None
    return code


# PIN prefixes (first 2 to 6 digits) to state codes; the longest matching prefix wins.
def _prefixes() -> dict[str, str]:
    table: dict[str, str] = {}

    def put(code: str, *prefixes: int | str) -> None:
        for prefix in prefixes:
            table[str(prefix)] = code

    put("07", 11)
    put("06", 12, 13)
    put("03", 14, 15, 16)
    put("04", 160)
    put("02", 17)
    put("01", 18, 19)
    put("38", 194)
    put("09", *range(20, 29))
    put("05", 246, 248, 249, 263, 2476, 2623, 2624, 2625)  # Garhwal, Kumaon, Haridwar, U.S. Nagar
    put("08", *range(30, 35))
    put("24", *range(36, 40))
    put("26", 3962, 396193, 362520)  # Daman, Silvassa; Dadra; Diu
    put("27", *range(40, 45))
    put("30", 403)
    put("23", *range(45, 49))
    put("22", 49)
    put("36", 50)
    put("37", 51, 52, 53)
    put("34", 533464, 673310, 605, 6096)  # Yanam, Mahe, Puducherry, Karaikal
    put("29", *range(56, 60))
    put("33", *range(60, 65), 6056, 6057)  # 6056-6057: Villupuram
    put("32", 67, 68, 69)
    put("31", 6825)
    put("19", *range(70, 75))
    put("11", 737)
    put("35", 744)
    put("21", 75, 76, 77)
    put("18", 78)
    put("12", 790, 791, 792)
    put("17", 793, 794)
    put("14", 795)
    put("15", 796)
    put("13", 797, 798)
    put("16", 799)
    put("10", *range(80, 86))
    put("20", 814, 815, 816, 822, *range(825, 830), *range(831, 836))
    return table


_PIN_PREFIXES = _prefixes()


def state_from_pincode(pincode: str) -> str | None:
    """The GST state of an Indian PIN by its postal prefix, or None (malformed, Army post).

    A fallback for when the shipping state is missing or unreadable: postal circles follow
    state borders closely but not exactly (a few districts near Uttarakhand/UP, Puducherry's
    enclaves, Daman/Silvassa and Chandigarh/Mohali are approximate), so the state text wins."""
    digits = re.sub(r"\s", "", pincode or "")
    if not re.fullmatch(r"[1-9]\d{5}", digits):
        return None
    for length in range(6, 1, -1):
        code = _PIN_PREFIXES.get(digits[:length])
        if code:
            return code
    return None


def place_of_supply(state_text: str, pincode: str) -> str | None:
    """The GST state code of a shipping address: its state text, else its PIN."""
    return state_code(state_text) or state_from_pincode(pincode)
