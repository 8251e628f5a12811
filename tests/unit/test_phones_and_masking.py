import contextlib

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from shared.masking import mask_email, mask_phone, mask_text
from shared.phones import InvalidPhone, normalize_phone, phone_from_jid, provider_phone
from shared.sources.messages import Content, message_payload, sender_phone

_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE,
          PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.TOLL_FREE)


def _examples() -> list[tuple[str, str]]:
    """(region, E.164 digits) of libphonenumber's example number of each type for every region."""
    found: dict[str, str] = {}
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in _TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                digits = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
                found.setdefault(digits, region)
    return sorted((region, digits) for digits, region in found.items())


EXAMPLES = _examples()
FOREIGN = [(region, digits) for region, digits in EXAMPLES if region != "BR"]


def test_there_are_examples_from_every_region() -> None:
    assert len({region for region, _ in EXAMPLES}) > 200 and len(EXAMPLES) > 700


@pytest.mark.parametrize(("region", "digits"), EXAMPLES)
def test_every_country_reads_the_same_from_every_provider_id_format(region: str, digits: str) -> None:
    """Meta wa_id/from, Gupshup source, Z-API phone (bare digits), Evolution JIDs, and '+' forms all agree."""
    for raw in (digits, "+" + digits, f"{digits}@s.whatsapp.net", f"{digits}:7@s.whatsapp.net", f"{digits}@c.us"):
        assert provider_phone(raw) == digits, (region, raw)
    assert normalize_phone("+" + digits) == digits
    assert normalize_phone("00" + digits) == digits


@pytest.mark.parametrize(("region", "digits"), FOREIGN)
def test_a_foreign_sender_survives_the_message_payload(region: str, digits: str) -> None:
    """The bug of issue 18: the payload re-read `351912345678` as a Brazilian national number."""
    message = message_payload(provider="meta", message_id="wamid.X", phone=sender_phone(digits, "from"),
                              chat_id=digits, display_name=None, content=Content("text", "text", "oi"), sent_at=None)
    assert message.phone == digits, region


@pytest.mark.parametrize(("region", "digits"), EXAMPLES)
def test_normalising_is_idempotent(region: str, digits: str) -> None:
    once = normalize_phone(digits)
    assert normalize_phone(once) == once
    assert provider_phone(provider_phone(digits)) == provider_phone(digits)


@pytest.mark.parametrize(("national", "expected"), [
    ("4930123456", "554930123456"),  # also Berlin's +49 30 123456: a person in Brazil means Chapecó
    ("(11) 96123-4567", "5511961234567"),
    ("8222123456", "558222123456"),  # also Seoul; typed without '+', Maceió
])
def test_a_person_typing_digits_means_brazil_where_that_is_valid(national: str, expected: str) -> None:
    assert normalize_phone(national) == expected


def test_a_person_typing_a_foreign_number_without_plus_is_understood() -> None:
    assert normalize_phone("351912345678") == "351912345678"
    assert normalize_phone("14155552671") == "14155552671"
    assert normalize_phone("447911123456") == "447911123456"


def test_providers_mean_international_even_where_digits_are_also_a_brazilian_number() -> None:
    assert provider_phone("4930123456") == "4930123456"  # Berlin, not Chapecó
    assert provider_phone("8222123456@s.whatsapp.net") == "8222123456"


@pytest.mark.parametrize(("wa_id", "expected"), [
    ("5215512345678", "525512345678"),  # WhatsApp's Mexican mobile ids keep the pre-2019 '1'
    ("5491123456789", "5491123456789"),  # Argentina's mobile 9 is part of the international number
    ("919876543210", "919876543210"), ("8613800138000", "8613800138000"), ("79161234567", "79161234567"),
])
def test_provider_id_formats_of_other_countries(wa_id: str, expected: str) -> None:
    assert provider_phone(wa_id) == expected
    assert provider_phone(f"{wa_id}@s.whatsapp.net") == expected
    assert normalize_phone("+" + wa_id) == expected


def test_a_provider_id_without_country_code_is_brazilian_only_where_that_is_what_it_is() -> None:
    assert provider_phone("11961234567") == "5511961234567"
    with pytest.raises(InvalidPhone):
        provider_phone("0000000000")


@pytest.mark.parametrize("legacy", ["551199998888", "551199998888@s.whatsapp.net", "+55 11 9999-8888",
                                    "5511999998888", "5511999998888:3@s.whatsapp.net"])
def test_brazilian_mobiles_get_their_ninth_digit_from_every_source(legacy: str) -> None:
    assert provider_phone(legacy) == "5511999998888"
    assert normalize_phone(legacy) == "5511999998888"


@pytest.mark.parametrize("raw", ["a@b", "x@y@s.whatsapp.net", "@", "5511@@c.us", "+@lid", "5511999998888@gmail.com",
                                 "1" * 80, "++++", "@s.whatsapp.net", "0" * 15, "+0000000"])
def test_helpers_are_total_they_refuse_with_a_reason_and_never_recurse(raw: str) -> None:
    for helper in (normalize_phone, provider_phone):
        with pytest.raises(InvalidPhone):
            helper(raw)


def test_a_bad_sender_is_a_400_naming_the_field() -> None:
    from shared.inbound import EdgeError

    with pytest.raises(EdgeError) as caught:
        sender_phone("12", "entry.0.changes.0.value.messages.0.from")
    assert caught.value.status == 400
    assert caught.value.fields == [{"field": "entry.0.changes.0.value.messages.0.from",
                                    "message": "has 2 digits; a phone has 7 to 15"}]


@pytest.mark.parametrize(("raw", "expected"), [
    ("11999998888", "5511999998888"),
    ("5511999998888", "5511999998888"),
    ("+55 (11) 99999-8888", "5511999998888"),
    ("(11) 99999-8888", "5511999998888"),
    ("011 99999 8888", "5511999998888"),
    ("551199998888", "5511999998888"),  # WhatsApp id from before the 9th digit
    ("1199998888", "5511999998888"),  # legacy 8-digit mobile
    ("1133334444", "551133334444"),  # landline keeps 8 digits
    ("+1 415 555 2671", "14155552671"),
])
def test_phones_become_e164_digits(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "abc", "123", "1234567890123456789"])
def test_non_phones_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_whatsapp_jids() -> None:
    assert phone_from_jid("5511999998888@s.whatsapp.net") == "5511999998888"
    assert phone_from_jid("551199998888@s.whatsapp.net") == "5511999998888"
    assert phone_from_jid("5511999998888:12@s.whatsapp.net") == "5511999998888"
    assert phone_from_jid("5511999998888@c.us") == "5511999998888"
    for jid in ("120363025246125486@g.us", "123456789012345@lid", "status@broadcast", "1203@newsletter"):
        with pytest.raises(InvalidPhone):
            phone_from_jid(jid)


def test_masking_hides_phones_and_emails_but_not_ids() -> None:
    assert mask_phone("5511999998888") == "*********8888"
    assert mask_email("joao@teste.com") == "j***@teste.com"
    text = "lead 5511999998888 (+55 11 99999-8888) joao@teste.com event 550e8400-e29b-41d4-a716-446655440000"
    masked = mask_text(text)
    assert "99999" not in masked and "joao@" not in masked
    assert "550e8400-e29b-41d4-a716-446655440000" in masked


def test_the_helpers_are_total_over_hostile_text() -> None:
    """Any text: E.164 ASCII digits back, or InvalidPhone — never another exception, never a hang."""
    import random

    rng = random.Random(18)
    alphabet = "0123456789" * 4 + "+ -().:@#*٠١٢٣٤٥٦٧٨٩０１２ext;x" + "abc" + "\x00\n"
    suffixes = ("", "@s.whatsapp.net", "@c.us", "@lid", "@g.us", ":3@s.whatsapp.net", "@broadcast", "@")
    for _ in range(4000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) + rng.choice(suffixes)
        for helper in (normalize_phone, provider_phone):
            try:
                out = helper(raw)
            except InvalidPhone:
                continue
            assert out.isascii() and out.isdigit() and len(out) <= 15, (raw, out)
            assert normalize_phone("+" + out) == out, (raw, out)  # what is stored reads back as itself
    for odd in (None, 5511977776666, 3.5, ["5511977776666"], {"phone": 1}, b"5511977776666", True):
        for helper in (normalize_phone, provider_phone):
            with contextlib.suppress(InvalidPhone):
                helper(odd)
