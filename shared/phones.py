"""Phone numbers to E.164 digits (no '+'), the one key that joins a person's channels.

Brazilian numbers get special care: a mobile stored without the 9th digit (legacy
8-digit mobiles, WhatsApp ids registered before 2016) gets it back, so the same person
on a form and on WhatsApp is one lead. Group ids, broadcast lists and `@lid` ids are
never taken for phones.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "BR"
_PERSONAL_JID_SUFFIXES = ("@s.whatsapp.net", "@c.us")
_NON_PHONE_JID_SUFFIXES = ("@g.us", "@lid", "@broadcast", "@newsletter")


class InvalidPhone(ValueError):
    """The value cannot be a phone number; the message says why."""


def phone_from_jid(jid: str) -> str:
    """The E.164 digits behind a personal WhatsApp JID (`5511...@s.whatsapp.net`)."""
    jid = jid.strip()
    if jid.endswith(_NON_PHONE_JID_SUFFIXES) or jid == "status@broadcast":
        raise InvalidPhone(f"{jid.split('@')[-1]} ids are not phone numbers")
    user = jid.split("@", 1)[0] if jid.endswith(_PERSONAL_JID_SUFFIXES) else jid
    user = user.split(":", 1)[0]  # multi-device suffix, e.g. 5511...:12@s.whatsapp.net
    if "@" in user:  # not a JID we know; normalize_phone would send it straight back here
        raise InvalidPhone("is neither a phone number nor a personal WhatsApp id")
    return normalize_phone(user if user.startswith("+") else "+" + user)


@lru_cache(maxsize=4096)
def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 digits for a phone written any usual way; national numbers default to Brazil.

    Cached: a webhook's phone is normalized by its source parser and again when the payload
    is validated (at the edge and in the writer), and the same people write again and again.
    """
    text = str(raw).strip()
    if "@" in text:
        return phone_from_jid(text)
    digits = re.sub(r"\D", "", text)
    if not digits:
        raise InvalidPhone("has no digits")
    if len(digits) < 8 or len(digits) > 15:
        raise InvalidPhone(f"has {len(digits)} digits; a phone has 8 to 15")
    candidate = text if text.startswith("+") else digits
    if not text.startswith("+") and digits.startswith("55") and len(digits) in (12, 13):
        candidate = "+" + digits  # already carries Brazil's country code
    elif not text.startswith("+") and text.startswith("00"):
        candidate = "+" + digits[2:]
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(str(exc)) from exc
    number = _restore_brazilian_ninth_digit(number)
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone("is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _restore_brazilian_ninth_digit(number: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    """`55 11 9999-8888` (an old mobile without its 9) becomes `55 11 99999-8888`."""
    if number.country_code != 55:
        return number
    national = str(number.national_number)
    if len(national) == 10 and national[2] in "6789":
        return phonenumbers.parse("+55" + national[:2] + "9" + national[2:], None)
    return number
