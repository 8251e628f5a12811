"""Every lead source's real shapes, normalised to `lead_created` / `leadgen_received`, field by field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import meta_leads
from shared.edge import Response
from shared.envelope import Envelope, event_id_for
from shared.payloads import LeadCreated, LeadgenReceived
from shared.sources import google_ads, lead_form, meta_leadgen, typeform
from shared.tenants import SourceSettings
from tests.fixtures import load
from tests.seeds import LEAD
from tests.unit.edge_helpers import call, request


def run(adapt: Any, body: Any, settings: SourceSettings | None = None) -> tuple[Response, list[Envelope]]:
    response, publisher = call(lambda inbound: adapt(inbound, settings), request(body))
    return response, publisher.published


def test_typeform_answers_by_ref_contact_and_name() -> None:
    response, [envelope] = run(typeform.adapt, load("typeform", "form_response"))
    assert response.status == 202
    assert envelope.event_type == "lead_created" and envelope.source == "typeform"
    assert envelope.event_id == event_id_for("default", "typeform", "lead_created", "a3a12ec67a1365927098a606107fac15")
    assert envelope.occurred_at == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert envelope.payload == {
        "name": "Ana Ribeiro", "phone": "5519988776655", "email": "ana.ribeiro@example.com", "source": "typeform",
        "source_lead_id": "a3a12ec67a1365927098a606107fac15", "form_id": "lT4Z3j",
        "answers": {"nome": "Ana Ribeiro", "email": "ana.ribeiro@example.com", "whatsapp": "+5519988776655",
                    "ambiente": "Sala", "area_m2": 42, "materiais": ["Vinílico", "Laminado"], "tem_projeto": False},
        "extra": {"hidden": {"utm_source": "instagram", "utm_campaign": "pisos-vinilicos"}},
    }


def test_typeform_other_events_and_foreign_forms() -> None:
    response, published = run(typeform.adapt, {"event_id": "x", "event_type": "form_partial_response"})
    assert response.status == 200 and published == []
    response, published = run(typeform.adapt, load("typeform", "form_response"), SourceSettings(ids=("zzz",)))
    assert response.status == 401 and response.body["fields"][0]["field"] == "form_response.form_id"
    assert published == []


def test_typeform_without_a_contact_is_a_400_naming_why() -> None:
    body = load("typeform", "form_response")
    body["form_response"]["answers"] = body["form_response"]["answers"][:1]
    response, published = run(typeform.adapt, body)
    assert response.status == 400 and "phone or an email" in response.body["fields"][0]["message"]
    assert published == []


def test_google_ads_lead_columns_ids_and_flags() -> None:
    body = load("google_ads", "lead")
    response, [envelope] = run(google_ads.adapt, body)
    assert response.status == 202
    assert envelope.event_id == event_id_for("default", "google_ads", "lead_created", body["lead_id"])
    assert envelope.payload == {
        "name": "Carlos Mendes", "phone": "5531987654321", "email": "carlos.mendes@example.com",
        "source": "google_ads", "source_lead_id": body["lead_id"], "form_id": "40000000001",
        "campaign_id": "20000000002", "adset_id": "30000000003", "ad_id": "50000000004",
        "answers": {"FULL_NAME": "Carlos Mendes", "PHONE_NUMBER": "+55 31 98765-4321",
                    "EMAIL": "carlos.mendes@example.com", "CITY": "Belo Horizonte",
                    "tamanho_da_obra": "Acima de 100 m²"},
        "extra": {"gcl_id": "TeSter-123-gclid"},
    }
    assert "google_key" not in str(envelope.payload)


def test_google_ads_test_lead_is_flagged() -> None:
    _, [envelope] = run(google_ads.adapt, load("google_ads", "test_lead"))
    assert envelope.payload["is_test"] is True
    assert envelope.payload["name"] == "FirstName LastName"
    assert envelope.payload["email"] == "test@example.com"


def test_meta_leadgen_webhook_publishes_ids_only() -> None:
    response, [envelope] = run(meta_leadgen.adapt, load("meta_leadgen", "webhook"))
    assert response.status == 202
    assert envelope.event_type == "leadgen_received" and envelope.source == "meta_leadgen"
    assert envelope.event_id == event_id_for("default", "meta_leadgen", "leadgen_received", "1234567890123456")
    assert envelope.payload == {"leadgen_id": "1234567890123456", "page_id": "114223651434817",
                                "form_id": "987654321098765", "ad_id": "120210000000000001",
                                "adgroup_id": "120210000000000002", "created_time": "2025-11-20T12:00:00Z"}


def test_meta_leadgen_two_entries_two_events_and_page_check() -> None:
    response, published = run(meta_leadgen.adapt, load("meta_leadgen", "webhook_two"))
    assert response.status == 202
    assert [e.payload["leadgen_id"] for e in published] == ["1234567890123457", "1234567890123458"]
    response, published = run(meta_leadgen.adapt, load("meta_leadgen", "webhook_two"),
                              SourceSettings(ids=("222",)))
    assert response.status == 401 and published == []


REF = LeadgenReceived(leadgen_id="1234567890123456", page_id="114223651434817", form_id="987654321098765",
                      ad_id="120210000000000001", adgroup_id="120210000000000002")


def test_graph_lead_maps_field_data_to_lead_created() -> None:
    lead = meta_leads.lead_from_graph(load("meta_leadgen", "graph_lead"), REF)
    assert lead == LeadCreated(
        name="Beatriz Costa", phone="5511966665555", email="beatriz.costa@example.com", source="meta_leadgen",
        source_lead_id="1234567890123456", form_id="987654321098765", campaign_id="120210000000000003",
        adset_id="120210000000000002", ad_id="120210000000000001",
        answers={"full_name": "Beatriz Costa", "email": "beatriz.costa@example.com", "phone_number": "+5511966665555",
                 "qual_ambiente_deseja_reformar?": "cozinha", "materiais_de_interesse": ["porcelanato", "vinilico"]},
        extra={"is_organic": False, "platform": "ig", "created_time": "2026-11-20T12:00:00+0000"},
    )


def test_graph_test_lead_with_dummy_data_writes_nothing_and_a_bad_real_lead_raises() -> None:
    assert meta_leads.lead_from_graph(load("meta_leadgen", "graph_test_lead"), REF) is None
    broken = load("meta_leadgen", "graph_lead")
    broken["field_data"] = [{"name": "full_name", "values": ["Sem Contato"]}]
    with pytest.raises(ValueError, match="no usable phone or e-mail"):
        meta_leads.lead_from_graph(broken, REF)
    half = load("meta_leadgen", "graph_lead")
    half["field_data"][2]["values"] = ["12"]  # a phone Meta let through that is not one: keep the e-mail
    lead = meta_leads.lead_from_graph(half, REF)
    assert lead is not None and lead.phone is None and lead.email == "beatriz.costa@example.com"
    assert lead.answers is not None and lead.answers["phone_number"] == "12"


def test_generic_form_still_works_with_settings() -> None:
    response, [envelope] = run(lead_form.adapt, LEAD, SourceSettings())
    assert response.status == 202 and envelope.payload["phone"] == "5511999998888"


# -- Typeform names by ref, title, sub-field, or the tenant's map --------------
@pytest.mark.parametrize(("label", "role"), [
    ("Nome", "name"), ("Seu nome", "name"), ("Qual é o seu nome?", "name"), ("Name", "name"),
    ("What is your name?", "name"), ("Nome completo", "name"), ("nome_cliente", "name"), ("lead_name", "name"),
    ("First name", "first_name"), ("What is your first name?", "first_name"), ("Primeiro nome", "first_name"),
    ("Last name", "last_name"), ("Sobrenome", "last_name"),
    ("Nome da empresa", None), ("Company name", None), ("Username", None), ("Telefone", None),
    ("01HF3QZ8W2Y5V7K9M1N3P5R7T9", None), ("Renome", None),
])
def test_a_name_field_is_known_by_its_ref_or_title(label: str, role: str | None) -> None:
    from shared.sources.typeform import name_role

    assert name_role(label) == role


def test_the_tenants_field_map_wins_over_titles() -> None:
    from tests.unit.test_golden_payloads import GOLDEN, outcome

    body = json.loads((GOLDEN / "typeform" / "generated_refs_titled_nome.input.json").read_text("utf-8"))
    answers = body["form_response"]["answers"]
    answers.append({"type": "text", "text": "Souza", "field": {"id": "zz", "type": "short_text", "ref": "sobren"}})
    plain = outcome("typeform", body, None)["published"][0]["payload"]
    assert plain["name"] == "Maria Souza"
    mapped = outcome("typeform", body, SourceSettings(field_map={"01HF3QZ8W2Y5V7K9M1N3P5R7T9": "first_name",
                                                                 "sobren": "last_name"}))
    assert mapped["published"][0]["payload"]["name"] == "Maria Souza Souza"


def test_a_field_map_names_only_lead_fields() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SourceSettings.model_validate({"field_map": {"ref": "cpf"}})
