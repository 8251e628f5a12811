import pytest

from shared.masking import mask_email, mask_phone, mask_text
from shared.phones import InvalidPhone, normalize_phone, phone_from_jid


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
