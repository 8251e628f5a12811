"""Talking back, the pure parts: retry policies per subscription, the late-answer note, sender numbers, the catalog."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from ops.provision import DeliveryPolicy
from shared.assistant.catalog import Product, brl, parse_csv, parse_price, query_words
from shared.assistant.config import load_tenant
from shared.assistant.guardrails import safe_reply
from shared.assistant.prompt import Turn, build_messages, catalog_text, waited_words
from shared.senders import SenderSettings
from shared.topology import TOPOLOGY_FILE, RetryPolicy, load_topology, parse_topology

RAW: dict[str, Any] = json.loads(TOPOLOGY_FILE.read_text(encoding="utf-8"))


def test_the_assistant_subscription_waits_out_an_outage_of_hours_and_the_others_keep_the_defaults() -> None:
    received = load_topology().event_type("message_received")
    policy = received.retry_policies["message-received-assistant"]
    assert policy == RetryPolicy(10, 600, 100)
    assert policy.budget_seconds() > 15 * 3600  # the old default (5 attempts, 10s..600s) gave 150 seconds
    assert RetryPolicy(10, 600, 5).budget_seconds() == 150
    assert "message-received-conversations-writer" not in received.retry_policies


@pytest.mark.parametrize(("policy", "error"), [
    ({"minimum_backoff": "10", "maximum_backoff": "600s", "max_delivery_attempts": 100}, "minimum_backoff"),
    ({"minimum_backoff": "10s", "maximum_backoff": "601s", "max_delivery_attempts": 100}, "at most 600s"),
    ({"minimum_backoff": "60s", "maximum_backoff": "10s", "max_delivery_attempts": 100}, "above maximum"),
    ({"minimum_backoff": "10s", "maximum_backoff": "600s", "max_delivery_attempts": 101}, "5..100"),
])
def test_a_retry_policy_pubsub_would_refuse_fails_fast(policy: dict[str, Any], error: str) -> None:
    raw = copy.deepcopy(RAW)
    raw["event_types"]["message_received"]["retry_policies"]["message-received-assistant"] = policy
    with pytest.raises(ValueError, match=error):
        parse_topology(raw)


def test_a_retry_policy_for_a_subscription_that_does_not_exist_fails_fast() -> None:
    raw = copy.deepcopy(RAW)
    raw["event_types"]["won"]["retry_policies"] = {"won-nobody": {"minimum_backoff": "1s", "maximum_backoff": "2s",
                                                                  "max_delivery_attempts": 5}}
    with pytest.raises(ValueError, match="unknown subscriptions"):
        parse_topology(raw)


def test_the_local_stack_keeps_a_subscriptions_attempts_with_its_own_short_backoff() -> None:
    local = DeliveryPolicy(max_delivery_attempts=5, min_backoff_seconds=1, max_backoff_seconds=2)
    own = local.for_subscription(RetryPolicy(10, 600, 100))
    assert (own.max_delivery_attempts, own.min_backoff_seconds, own.max_backoff_seconds) == (100, 1, 2)
    assert local.for_subscription(None) == local


def test_a_late_answer_is_asked_to_apologise_and_answer_everything_in_one_message() -> None:
    config = load_tenant("default")
    history = [Turn("lead", "oi"), Turn("business", config.fallback), Turn("lead", "ainda aí?")]
    on_time = build_messages(config, history, {})
    assert [m["role"] for m in on_time] == ["system", "user", "assistant", "user"]
    late = build_messages(config, history, {}, waited=timedelta(hours=3, minutes=10))
    assert late[:-1] == on_time
    assert late[-1]["role"] == "system" and "cerca de 3 horas" in late[-1]["content"]
    assert "desculpas pela demora" in late[-1]["content"] and "ainda aí?" not in late[-1]["content"]
    assert waited_words(timedelta(seconds=20)) == "cerca de 1 minuto"
    assert waited_words(timedelta(minutes=45)) == "cerca de 45 minutos"


def test_each_provider_account_is_its_own_sending_number() -> None:
    senders = SenderSettings.model_validate({
        "evolution": {"instance": "pisos", "api_key_secret": "a"}, "zapi": {"instance_id": "3C7A", "token_secret": "b"},
        "meta": {"phone_number_id": "1065", "access_token_secret": "c"}, "360dialog": {"api_key_secret": "d"},
        "gupshup": {"source": "551140028922", "app_name": "Pisos", "api_key_secret": "e"}})
    assert [senders.sender_number(p) for p in ("evolution", "zapi", "meta", "360dialog", "gupshup", "other")] == [
        "evolution:pisos", "zapi:3C7A", "meta:1065", "360dialog:d", "gupshup:551140028922", "other:-"]


# -- the catalog ---------------------------------------------------------------------------------------------

def test_a_catalog_csv_is_read_with_brazilian_prices_and_every_bad_row_named_by_line() -> None:
    products, errors = parse_csv("sku;name;price;unit;category\n"
                                 "VIN-1;Piso Vinílico Click;89,90;m²;piso vinílico\n"
                                 "LAM-1;Laminado Carvalho;1.234,56;caixa;laminado\n"
                                 "\n"
                                 "POR-1;Porcelanato;R$ 129.90;m²;porcelanato\n")
    assert errors == []
    assert [(p.sku, p.price, p.unit) for p in products] == [
        ("VIN-1", Decimal("89.90"), "m²"), ("LAM-1", Decimal("1234.56"), "caixa"), ("POR-1", Decimal("129.90"), "m²")]
    _, errors = parse_csv("sku,name,price\nA,Piso,10\nA,Outro,11\nB,,abc\nC,Rodapé\nD,Rodapé,-1\n")
    assert [(e.line, e.message) for e in errors] == [
        (3, "sku 'A' already on line 2"), (4, "name is empty; price 'abc' is not a number (use 89,90 or 89.90)"),
        (5, "2 fields, the header has 3"), (6, "price '-1' is out of range")]
    _, errors = parse_csv("codigo,nome,preco\n1,a,2\n")
    assert errors[0].line == 1 and "missing ['sku', 'name', 'price']" in errors[0].message


def test_prices_read_as_the_lead_reads_them() -> None:
    assert brl(Decimal("1234.5")) == "R$ 1.234,50" and brl(Decimal("89.9")) == "R$ 89,90"
    assert parse_price("1234.56") == parse_price("1.234,56") == Decimal("1234.56")


def test_the_money_guardrail_allows_amounts_from_the_catalog_shown_and_nothing_else() -> None:
    config = load_tenant("default")
    shown = catalog_text([Product("VIN-1", "Piso Vinílico Click", Decimal("89.90"), "m²")])
    assert "[VIN-1] Piso Vinílico Click: R$ 89,90 por m²" in shown
    assert safe_reply("O vinílico sai por R$ 89,90 o m².", config, shown) == ("O vinílico sai por R$ 89,90 o m².",
                                                                              None)
    total, note = safe_reply("Para 40 m² fica R$ 3.596,00.", config, shown)  # a computed total is not in the catalog
    assert total == config.settings.unsupported_amount_reply and note and "3.596,00" in note
    assert safe_reply("Sai por R$ 89,90.", config)[0] == config.settings.unsupported_amount_reply  # not shown: refused
    messages = build_messages(config, [Turn("lead", "piso vinílico?")], {},
                              products=[Product("VIN-1", "Piso Vinílico Click", Decimal("89.90"), "m²")])
    assert shown in messages[0]["content"] and messages[0]["role"] == "system"


def test_catalog_search_words_are_folded_and_short_words_dropped() -> None:
    assert query_words(["Piso VINÍLICO para sala de 40m²", "e a sala?"]) == ["piso", "vinilico", "para", "sala"]
