"""Phone numbers to E.164 digits (no '+'), the one key that joins a person's channels.

One rule for every source, in two readings of the same digits:

- `normalize_phone` reads a number as a person writes it (a form, the console): with
  '+' or '00' it is international; bare digits are a Brazilian national number when
  that is a valid one, else an international number with its country code.
- `provider_phone` reads what WhatsApp providers send (Meta `wa_id`/`from`, Evolution
  JIDs, Z-API `phone`, Gupshup `source`): digits that already carry the country code,
  so they are international first, and Brazilian national only where that is all they
  can be.

Brazilian mobiles always come out with 13 digits: one stored without its 9th digit
(WhatsApp ids registered before 2016) gets it back, so the same person on a form and
on WhatsApp is one lead; existing Brazilian keys (`5511999998888`) are unchanged.
Likewise WhatsApp's Mexican mobile ids (`521` + 10 digits) lose the old mobile `1`.
Foreign numbers are stored the same way, E.164 without '+' (`351912345678`).
Group ids, broadcast lists, channels and `@lid` ids are never taken for phones.
Both functions are total: they return digits or raise `InvalidPhone`, nothing else.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumber

DEFAULT_REGION = "BR"
_PERSONAL_JID_SUFFIXES = ("@s.whatsapp.net", "@c.us")
_NON_PHONE_JID_SUFFIXES = ("@g.us", "@lid", "@broadcast", "@newsletter")
_MIN_DIGITS, _MAX_DIGITS = 7, 15  # with its country code: Niue has 7 digits, E.164 allows 15
_MAX_TEXT = 64  # longer text is not a phone written any usual way


class InvalidPhone(ValueError):
    """The value cannot be a phone number; the message says why."""


def phone_from_jid(jid: str) -> str:
    """The E.164 digits behind a personal WhatsApp JID (`5511...@s.whatsapp.net`)."""
    return provider_phone(jid)


def normalize_phone(raw: object, region: str = DEFAULT_REGION) -> str:
    """E.164 digits for a phone as a person writes it; bare national numbers default to Brazil."""
    return _normalize(_text(raw), region)


def provider_phone(raw: object) -> str:
    """E.164 digits for a sender id a WhatsApp provider sends: digits with their country code, or a JID."""
    return _provider(_text(raw))


@lru_cache(maxsize=4096)  # the same people write again and again, and a parse costs tens of microseconds
def _normalize(text: str, region: str) -> str:
    if "@" in text:
        return _provider(text)
    digits = _digits(text)
    if text.startswith("+"):
        return _pick(digits, [_international(digits)])
    if digits.startswith("00"):
        return _pick(digits, [_international(digits[2:])])
    if _brazilian_international(digits):
        return _pick(digits, [_international(digits)])
    national, international = _national(digits, region), _international(digits)
    return _pick(digits, [national, international], [national, international])


@lru_cache(maxsize=4096)
def _provider(text: str) -> str:
    if "@" in text:
        text = _jid_user(text)
    digits = _digits(text)
    if digits.startswith("00") and not text.startswith("+"):
        digits = digits[2:]
    international = _international(digits)
    if international is not None and phonenumbers.is_valid_number(international) and _fits(international):
        return _e164(international)  # the usual case: no need to read the digits as Brazilian too
    return _pick(digits, [international, _national(digits, DEFAULT_REGION)], [international])


def _text(raw: object) -> str:
    text = raw.strip() if isinstance(raw, str) else str(raw).strip() if isinstance(raw, int) else ""
    if len(text) > _MAX_TEXT:
        raise InvalidPhone(f"has {len(text)} characters; a phone has at most {_MAX_TEXT}")
    return text


def _jid_user(jid: str) -> str:
    """The user part of a personal JID; other ids (groups, lids, broadcasts, channels) are refused."""
    if jid.endswith(_NON_PHONE_JID_SUFFIXES):
        raise InvalidPhone(f"{jid.rsplit('@', 1)[-1]} ids are not phone numbers")
    if not jid.endswith(_PERSONAL_JID_SUFFIXES) or jid.count("@") != 1:
        raise InvalidPhone("is not a personal WhatsApp id (number@s.whatsapp.net)")
    return jid.split("@", 1)[0].split(":", 1)[0]  # `:12` is a multi-device suffix


def _digits(text: str) -> str:
    digits = re.sub(r"[^0-9]", "", text)  # ASCII only: phonenumbers would read other scripts' digits differently
    if not digits:
        raise InvalidPhone("has no digits")
    if digits.startswith("00"):
        body = digits[2:]
        if _MIN_DIGITS <= len(body) <= _MAX_DIGITS:
            return digits
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS + 2:  # a national trunk/carrier prefix may add two
        raise InvalidPhone(f"has {len(digits)} digits; a phone has {_MIN_DIGITS} to {_MAX_DIGITS}")
    return digits


def _brazilian_international(digits: str) -> bool:
    """`55` + area code + 8 or 9 digits: how Brazilian numbers have always been written without '+'."""
    return digits.startswith("55") and len(digits) in (12, 13)


def _parse(candidate: str, region: str | None) -> PhoneNumber | None:
    try:
        number = phonenumbers.parse(candidate, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return None
    return _drop_mexican_mobile_one(_restore_brazilian_ninth_digit(number))


def _international(digits: str) -> PhoneNumber | None:
    return _parse("+" + digits, None) if len(digits) <= _MAX_DIGITS else None


def _national(digits: str, region: str) -> PhoneNumber | None:
    number = _parse(digits, region)
    # phonenumbers also accepts digits that start with the region's own country code; that
    # reading is `_international`'s, so a national reading must keep the region's code.
    if number is None or number.country_code != phonenumbers.country_code_for_region(region):
        return None
    return number


def _pick(digits: str, valid_first: list[PhoneNumber | None],
          possible_then: list[PhoneNumber | None] | None = None) -> str:
    """The first reading that is a valid number, else the first that is a possible one.

    Only a result that reads back as itself is taken (7 to 15 digits): it is what the
    writers read from the envelope.
    """
    for number in valid_first:
        if number is not None and phonenumbers.is_valid_number(number) and _fits(number):
            return _e164(number)
    for number in valid_first if possible_then is None else possible_then:
        if number is not None and _possible(number) and _fits(number):
            return _e164(number)
    raise InvalidPhone(f"{len(digits)} digits that are not a possible phone number in any country")


def _fits(number: PhoneNumber) -> bool:
    """The E.164 form has 7 to 15 digits and, read again with its '+', is this same possible number."""
    e164 = _e164(number)
    if not _MIN_DIGITS <= len(e164) <= _MAX_DIGITS:
        return False
    if number.raw_input == "+" + e164:  # parsed from exactly these digits: reads back as itself
        return True
    again = _parse("+" + e164, None)
    return again is not None and _possible(again) and _e164(again) == e164


def _possible(number: PhoneNumber) -> bool:
    return phonenumbers.is_possible_number_with_reason(number) == phonenumbers.ValidationResult.IS_POSSIBLE


def _e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _drop_mexican_mobile_one(number: PhoneNumber) -> PhoneNumber:
    """`52 1 55 1234 5678` (WhatsApp's id for a Mexican mobile) becomes `52 55 1234 5678`, as dialled since 2019."""
    national = str(number.national_number)
    if number.country_code == 52 and len(national) == 11 and national.startswith("1"):
        return PhoneNumber(country_code=52, national_number=int(national[1:]))
    return number


def _restore_brazilian_ninth_digit(number: PhoneNumber) -> PhoneNumber:
    """`55 11 9999-8888` (an old mobile without its 9) becomes `55 11 99999-8888`."""
    if number.country_code != 55:
        return number
    national = str(number.national_number)
    if len(national) == 10 and national[2] in "6789":
        return PhoneNumber(country_code=55, national_number=int(national[:2] + "9" + national[2:]))
    return number
