"""Every WhatsApp provider's real webhook shapes, normalised to `message_received`, field by field."""

from __future__ import annotations

from typing import Any

import pytest

from shared.edge import Response
from shared.envelope import Envelope, event_id_for
from shared.sources import evolution, gupshup, meta_cloud, zapi
from shared.tenants import SourceSettings
from tests.fixtures import load
from tests.unit.edge_helpers import call, request

MARIA = "5511977776666"


def run(adapt: Any, body: Any, settings: SourceSettings | None = None) -> tuple[Response, list[Envelope]]:
    response, publisher = call(lambda inbound: adapt(inbound, settings), request(body))
    return response, publisher.published


def one(adapt: Any, body: Any) -> dict[str, Any]:
    response, published = run(adapt, body)
    assert response.status == 202, response.body
    [envelope] = published
    assert envelope.event_type == "message_received"
    assert envelope.event_id == event_id_for("default", envelope.payload["provider"], "message_received",
                                             envelope.payload["provider_message_id"])
    assert envelope.source == envelope.payload["provider"]
    if "sent_at" in envelope.payload:
        assert envelope.occurred_at.isoformat().replace("+00:00", "Z") == envelope.payload["sent_at"]
    return envelope.payload


def plain(adapt: Any, body: Any) -> dict[str, Any]:
    """`one`, with the kind as `vocabulary/raw type` and the media left out, for the words-only messages."""
    payload = one(adapt, body)
    payload["message_type"] = f"{payload['message_type']}/{payload.pop('raw_type')}"
    payload.pop("media", None)
    return payload


def from_maria(provider: str, message_id: str, text: str, message_type: str, *, chat_id: str = MARIA,
               sent_at: str = "2025-11-20T12:00:00Z") -> dict[str, Any]:
    """Maria Souza's message as every provider's adapter must read it."""
    return {"provider": provider, "provider_message_id": message_id, "phone": MARIA, "chat_id": chat_id,
            "display_name": "Maria Souza", "text": text, "message_type": message_type, "direction": "inbound",
            "sent_at": sent_at}


def ignored(adapt: Any, body: Any) -> str:
    response, published = run(adapt, body)
    assert response.status == 200, response.body
    assert response.body["status"] == "ignored"
    assert published == []
    return str(response.body["reason"])



# -- Evolution API ---------------------------------------------------------
@pytest.mark.parametrize(("fixture", "text", "message_type"), [
    ("text", "Bom dia, queria um orçamento de piso vinílico", "text/conversation"),
    ("extended_text", "Vi o anúncio https://acme.example/piso", "text/extendedTextMessage"),
    ("button_reply", "Quero um orçamento", "interactive_reply/buttonsResponseMessage"),
    ("list_reply", "Piso laminado", "interactive_reply/listResponseMessage"),
])
def test_evolution_messages(fixture: str, text: str, message_type: str) -> None:
    body = load("evolution", fixture)
    assert plain(evolution.adapt, body) == from_maria("evolution", body["data"]["key"]["id"], text, message_type,
                                                      chat_id="5511977776666@s.whatsapp.net")


def test_evolution_image_keeps_caption_and_media() -> None:
    payload = one(evolution.adapt, load("evolution", "image_caption"))
    assert payload["text"] == "Esta é a sala, 32 m²"
    assert (payload["message_type"], payload["raw_type"]) == ("image", "imageMessage")
    assert payload["media"] == {"kind": "image", "mimetype": "image/jpeg", "fileLength": "123456", "height": 1280,
                                "width": 960, "url": "https://mmg.whatsapp.net/v/t62.7118-24/abc.enc"}


def test_evolution_lid_sender_is_taken_by_its_phone_and_gets_the_ninth_digit_back() -> None:
    payload = one(evolution.adapt, load("evolution", "lid_with_alt"))
    assert payload["phone"] == "5511977776666"  # remoteJidAlt 551177776666 registered before the 9th digit
    assert payload["chat_id"] == "81896604192873@lid"  # replies go to the chat as the provider named it


@pytest.mark.parametrize(("fixture", "reason"), [
    ("group", "group chat"), ("from_me", "own message (fromMe)"),
    ("status_broadcast", "status broadcast or channel"),
])
def test_evolution_non_messages_are_acknowledged_not_published(fixture: str, reason: str) -> None:
    assert ignored(evolution.adapt, load("evolution", fixture)) == reason


def test_evolution_instance_must_be_the_tenants() -> None:
    response, published = run(evolution.adapt, load("evolution", "text"), SourceSettings(ids=("other-instance",)))
    assert response.status == 401 and response.body["fields"][0]["field"] == "instance"
    assert published == []
    response, published = run(evolution.adapt, load("evolution", "text"), SourceSettings(ids=("acme-pisos",)))
    assert response.status == 202 and len(published) == 1


# -- Z-API -----------------------------------------------------------------
@pytest.mark.parametrize(("fixture", "text", "message_type", "media"), [
    ("text", "Vocês atendem em Campinas?", "text", None),
    ("image_caption", "Medidas do quarto", "image",
     {"kind": "image", "imageUrl": "https://example.invalid/img.jpg", "mimeType": "image/jpeg"}),
    ("button_reply", "Ótimo", "interactive_reply", {"buttonId": "1"}),
    ("list_reply", "Porcelanato", "interactive_reply", {"selectedRowId": "2", "message": "Escolha o tipo de piso"}),
])
def test_zapi_received_callbacks(fixture: str, text: str, message_type: str, media: Any) -> None:
    body = load("zapi", fixture)
    raw_type = next(k for k in ("text", "image", "buttonsResponseMessage", "listResponseMessage") if k in body)
    expected = {**from_maria("zapi", body["messageId"], text, message_type), "raw_type": raw_type}
    if media:
        expected["media"] = media
    assert one(zapi.adapt, body) == expected


@pytest.mark.parametrize(("fixture", "reason"), [
    ("group", "group chat"), ("from_me", "own message (fromMe)"), ("newsletter", "newsletter or broadcast"),
])
def test_zapi_non_messages(fixture: str, reason: str) -> None:
    assert ignored(zapi.adapt, load("zapi", fixture)) == reason


def test_zapi_notifications_are_not_messages() -> None:
    body = {**load("zapi", "text"), "notification": "GROUP_PARTICIPANT_ADD"}
    assert ignored(zapi.adapt, body) == "notification GROUP_PARTICIPANT_ADD, not a message"


# -- Meta Cloud API (and 360dialog, Gupshup v3) ------------------------------
meta = meta_cloud.adapter("meta")


@pytest.mark.parametrize(("fixture", "text", "message_type", "sent_at"), [
    ("text", "Olá! Quero saber o preço do m²", "text/text", "2025-11-20T12:00:00Z"),
    ("interactive_button_reply", "Agendar visita", "interactive_reply/interactive/button_reply",
     "2025-11-20T12:02:00Z"),
    ("interactive_list_reply", "Piso vinílico", "interactive_reply/interactive/list_reply", "2025-11-20T12:03:00Z"),
    ("template_button", "Sim, quero", "interactive_reply/button", "2025-11-20T12:04:00Z"),
])
def test_meta_messages(fixture: str, text: str, message_type: str, sent_at: str) -> None:
    body = load("meta", fixture)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    assert plain(meta, body) == from_maria("meta", message["id"], text, message_type, sent_at=sent_at)


def test_meta_image_caption_and_media_id() -> None:
    payload = one(meta, load("meta", "image_caption"))
    assert payload["text"] == "Foto do piso atual"
    assert payload["media"] == {"kind": "image", "id": "1437839067203920", "mime_type": "image/jpeg",
                                "sha256": "Y2FmZWJhYmU="}


def test_meta_batch_of_two_entries_is_two_envelopes_with_their_own_names() -> None:
    response, published = run(meta, load("meta", "batch_two"))
    assert response.status == 202
    assert response.body["event_ids"] == [e.event_id for e in published]
    assert [(e.payload["phone"], e.payload["display_name"], e.payload["text"]) for e in published] == [
        (MARIA, "Maria Souza", "Primeira mensagem"), ("552133334444", "Pedro Lima", "Sou o Pedro, do Rio")]


def test_meta_phone_number_id_must_be_the_tenants() -> None:
    response, published = run(meta, load("meta", "text"), SourceSettings(secret="x-meta", ids=("1",)))
    assert response.status == 401
    assert response.body["fields"][0]["field"] == "entry.0.changes.0.value.metadata.phone_number_id"
    assert published == []


def test_360dialog_cloud_and_on_premise_shapes() -> None:
    dialog = meta_cloud.adapter("360dialog")
    cloud = one(dialog, load("360dialog", "text_cloud"))
    assert (cloud["provider"], cloud["provider_message_id"], cloud["text"]) == (
        "360dialog", "wamid.D360CLOUD0001", "Oi, vim pelo Instagram")
    on_premise = one(dialog, load("360dialog", "text_onpremise"))
    assert on_premise == {**from_maria("360dialog", "ABGGFlA5FpafAgo6EhIx2NQaGQ", "Ainda tem horário amanhã?", "text",
                                       sent_at="2025-11-20T12:09:20Z"), "raw_type": "text"}


def test_a_bad_sender_in_a_batch_names_its_path() -> None:
    body = load("meta", "batch_two")
    body["entry"][1]["changes"][0]["value"]["messages"][0]["from"] = "120363025246125486@g.us"
    response, published = run(meta, body)
    assert response.status == 400
    assert response.body["fields"][0]["field"] == "entry.1.changes.0.value.messages.0.from"
    assert published == []


# -- Gupshup -----------------------------------------------------------------
@pytest.mark.parametrize(("fixture", "text", "message_type"), [
    ("text", "Boa tarde, vocês fazem instalação?", "text/text"),
    ("button_reply", "Quero visita", "interactive_reply/button_reply"),
    ("list_reply", "Laminado", "interactive_reply/list_reply"),
])
def test_gupshup_v2_messages(fixture: str, text: str, message_type: str) -> None:
    body = load("gupshup", fixture)
    assert plain(gupshup.adapt, body) == from_maria("gupshup", body["payload"]["id"], text, message_type)


def test_gupshup_v2_image() -> None:
    payload = one(gupshup.adapt, load("gupshup", "image_caption"))
    assert payload["text"] == "Meu corredor"
    assert payload["message_type"] == "image"
    assert payload["media"] == {"kind": "image", "url": "https://filemanager.gupshup.io/wa/abc/image.jpg",
                                "contentType": "image/jpeg", "urlExpiry": 1764244800000}


def test_gupshup_v3_is_the_cloud_api_shape() -> None:
    v3 = one(gupshup.adapt, load("gupshup", "v3_text"))
    assert (v3["provider"], v3["provider_message_id"], v3["text"]) == (
        "gupshup", "wamid.GUPSHUPV30001", "Mensagem pelo Gupshup v3")


def test_gupshup_app_must_be_the_tenants() -> None:
    response, _ = run(gupshup.adapt, load("gupshup", "text"), SourceSettings(ids=("SomeoneElse",)))
    assert response.status == 401 and response.body["fields"][0]["field"] == "app"


def test_the_same_provider_message_is_the_same_event_on_retry() -> None:
    _, first = run(zapi.adapt, load("zapi", "text"))
    _, second = run(zapi.adapt, load("zapi", "text"))
    assert first[0].event_id == second[0].event_id



# -- Every kind is read, never refused or dropped ------------------------------
NEW_KINDS = ("pollCreationMessageV4", "eventMessage", "albumMessage", "newsletterAdminInviteMessage", "x", "ü")


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_a_kind_no_reader_knows_is_stored_as_unknown_with_its_raw_type(kind: str) -> None:
    body = load("evolution", "text")
    body["data"]["message"] = {kind: {"text": "algo novo"}, "messageContextInfo": {}}
    body["data"]["messageType"] = kind
    payload = one(evolution.adapt, body)
    assert (payload["message_type"], payload["raw_type"], payload["text"]) == ("unknown", kind, "algo novo")
    meta_body = load("meta", "text")
    message = meta_body["entry"][0]["changes"][0]["value"]["messages"][0]
    message["type"] = kind
    message[kind] = {"anything": 1}
    assert (one(meta, meta_body)["message_type"], one(meta, meta_body)["raw_type"]) == ("unknown", kind)
    gupshup_body = load("gupshup", "text")
    gupshup_body["payload"]["type"] = kind
    assert one(gupshup.adapt, gupshup_body)["raw_type"] == kind


def test_zapi_callback_with_no_content_it_knows_is_unknown_not_refused() -> None:
    body = load("zapi", "text")
    del body["text"]
    body["carouselMessageV9"] = {"cards": []}
    payload = one(zapi.adapt, body)
    assert (payload["message_type"], payload["raw_type"]) == ("unknown", "unknown")
    body["waitingMessage"] = True  # Z-API: the content could not be decrypted yet
    assert one(zapi.adapt, body)["raw_type"] == "waitingMessage"


def test_wrappers_are_unwrapped_to_any_depth_but_the_reading_is_bounded() -> None:
    inner: dict[str, Any] = {"audioMessage": {"ptt": True, "seconds": 3}}
    for wrapper in ("ephemeralMessage", "viewOnceMessageV2", "ephemeralMessage"):
        inner = {wrapper: {"message": inner}}
    body = load("evolution", "text")
    body["data"]["message"] = inner
    payload = one(evolution.adapt, body)
    assert payload["message_type"] == "voice"
    assert payload["raw_type"] == "ephemeralMessage/viewOnceMessageV2/ephemeralMessage/audioMessage"
    assert payload["media"]["view_once"] is True
    for _ in range(200):  # hostile nesting: read as far as the bound, then `unknown`, never a crash
        inner = {"ephemeralMessage": {"message": inner}}
    assert evolution.message_content(inner).message_type == "unknown"


def test_the_readers_raw_types_fit_the_payload_and_vocabulary_is_one() -> None:
    from shared.sources.messages import MESSAGE_TYPES

    assert len(set(MESSAGE_TYPES)) == 14 and "unknown" in MESSAGE_TYPES
    body = load("evolution", "text")
    body["data"]["message"] = {"k" * 500: {}}
    assert len(one(evolution.adapt, body)["raw_type"]) == 200
