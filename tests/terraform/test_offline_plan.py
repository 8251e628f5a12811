"""terraform/ through real `terraform init / validate / plan` against the offline provider (tools/tfplan).

The plans run on the three variable sets the README promises (the minimal one, the example and a
large one), then an offline apply and a second plan that must be empty. The tests for the test
break a copy of the real configuration the ways a change could, and expect Terraform's own error.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.cloudenv import function_env
from shared.topology import load_topology
from tools.tfplan.config_scan import used_types
from tools.tfplan.run import REPO, SCHEMA_DIR, OfflineTerraform, planned_resources

CASES = {
    "minimal": REPO / "tools" / "tfplan" / "cases" / "minimal.tfvars",
    "example": REPO / "terraform" / "terraform.tfvars.example",
    "large": REPO / "tools" / "tfplan" / "cases" / "large.tfvars",
}


@pytest.fixture(scope="module")
def offline() -> Iterator[OfflineTerraform]:
    with OfflineTerraform() as tf:
        init = tf.init()
        assert init.ok, init.first_error()
        validate = tf.validate()
        assert validate.ok, validate.first_error()
        yield tf


@pytest.fixture(scope="module")
def plans(offline: OfflineTerraform) -> dict[str, dict[str, Any]]:
    """`terraform show -json` of each case's plan (a failed plan fails the test that asks for it)."""
    out: dict[str, dict[str, Any]] = {}
    for name, var_file in CASES.items():
        step = offline.plan(var_file, out=f"{name}.tfplan")
        out[name] = {"step": step, "json": offline.show_json(f"{name}.tfplan") if step.ok else None}
    return out


# --- the schemas the provider serves --------------------------------------------------------------------

def test_committed_schemas_cover_every_type_the_configuration_uses() -> None:
    kinds = {"resource": "resource_schemas", "data": "data_source_schemas", "ephemeral": "ephemeral_resource_schemas"}
    for provider, used in used_types(REPO / "terraform").items():
        path = SCHEMA_DIR / f"{provider}.json"
        assert path.exists(), f"no schema for provider {provider}: run python -m tools.tfplan.extract_schema"
        schema = json.loads(path.read_text())
        for kind, types in used.items():
            missing = types - set(schema[kinds[kind]])
            assert not missing, f"{sorted(missing)} not in {path.name}: run python -m tools.tfplan.extract_schema"


def test_schemas_are_the_provider_versions_the_configuration_pins() -> None:
    versions = (REPO / "terraform" / "versions.tf").read_text()
    for provider in used_types(REPO / "terraform"):
        path = SCHEMA_DIR / f"{provider}.json"
        origin = json.loads(path.read_text())["_generated_from"]
        block = re.search(rf'(?<![\w-]){path.stem}\s*=\s*\{{[^}}]*version\s*=\s*"~>\s*(\d+)\.(\d+)"', versions)
        assert block, f"terraform/versions.tf pins no ~> version for {path.stem}"
        major, minor = (int(x) for x in block.groups())
        served = tuple(int(x) for x in origin["provider_version"].split(".")[:2])
        assert served[0] == major and served >= (major, minor), (path.stem, origin["provider_version"])


# --- the three variable sets ------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_plan_passes(plans: dict[str, dict[str, Any]], case: str) -> None:
    step = plans[case]["step"]
    assert step.ok, f"terraform plan -var-file={CASES[case].name} failed:\n{step.first_error()}"
    assert step.counts["add"] > 50 and step.counts["change"] == 0 and step.counts["destroy"] == 0


@pytest.mark.parametrize("case", list(CASES))
def test_every_event_type_gets_its_topics_push_subscriptions_and_dead_letters(
        plans: dict[str, dict[str, Any]], case: str) -> None:
    plan = plans[case]["json"]
    assert plan is not None, "the plan failed"
    subscriptions = {r["values"]["name"]: r["values"] for r in planned_resources(plan)
                     if r["type"] == "google_pubsub_subscription"}
    topics = {r["values"]["name"] for r in planned_resources(plan) if r["type"] == "google_pubsub_topic"}
    for event_type in load_topology().event_types.values():
        assert {event_type.topic, event_type.dead_letter_topic} <= topics
        assert event_type.dead_letter_subscription in subscriptions
        for name in event_type.subscriptions:
            values = subscriptions[name]
            assert values["dead_letter_policy"][0]["max_delivery_attempts"] >= 5
            assert values["retry_policy"], name
            assert values["push_config"][0]["oidc_token"], name


@pytest.mark.parametrize("case", list(CASES))
def test_each_function_gets_the_settings_its_topology_entry_declares(plans: dict[str, dict[str, Any]],
                                                                     case: str) -> None:
    plan = plans[case]["json"]
    assert plan is not None, "the plan failed"
    variables = {name: v["value"] for name, v in plan["variables"].items()}
    functions = {r["address"].split('"')[1]: r["values"]["service_config"][0] for r in planned_resources(plan)
                 if r["type"] == "google_cloudfunctions2_function"}
    for name, fn in load_topology().functions.items():
        config = functions[name]
        env = config["environment_variables"]
        assert env["GOOGLE_CLOUD_PROJECT"] == variables["project_id"] and env["SECRETS_BACKEND"] == "secretmanager"
        for key, setting in fn.env.items():
            if setting not in variables:  # derived by Terraform (the console's webhook bases)
                assert env[key].startswith("https://"), (name, key)
                continue
            value = variables[setting]
            wanted = str(value).lower() if isinstance(value, bool) else str(value)
            assert env.get(key, "") == wanted, (name, key)  # empty settings are left unset
        for key, secret in fn.secret_names.items():
            assert env[key].endswith(secret), (name, key, env[key])
        mounted = {m["key"]: m["secret"] for m in config["secret_environment_variables"]}
        assert set(mounted) == set(fn.mounted_secrets), name
        assert ("DB_IAM_AUTH" in env) == fn.uses_database, name
        # The environment the cloud-mode tests and `make cloud-local` start each function with
        # (ops.cloudenv) is exactly this one: every key it needs is planned, and it adds none.
        planned = {key: str(value) for key, value in env.items()} | dict.fromkeys(mounted, "(mounted secret)")
        assert function_env(name, planned) == {k: v for k, v in planned.items() if v}, name


def test_the_deploy_doc_counts_what_the_plans_create(plans: dict[str, dict[str, Any]]) -> None:
    """docs/deploy.md's resources per variable set (and the README's totals) are this plan's."""
    doc = (REPO / "docs" / "deploy.md").read_text()
    table = doc[doc.index("| Resource type | minimal |"): doc.index("## Apply order")]
    counts = {case: Counter(r["type"] for r in planned_resources(plans[case]["json"] or {})) for case in CASES}
    listed: set[str] = set()
    for row in (r for r in table.splitlines() if r.startswith("| `")):
        cells = [c.strip() for c in row.strip("|").split("|")]
        types = re.findall(r"`([a-z0-9_]+)`", cells[0])
        listed |= set(types)
        assert [int(n) for n in cells[1:4]] == [sum(counts[c][t] for t in types) for c in CASES], row
    assert listed == {t for c in counts.values() for t in c}, "docs/deploy.md lists other types than the plans"
    totals = [sum(counts[c].values()) for c in CASES]
    assert f"| **total** | **{totals[0]}** | **{totals[1]}** | **{totals[2]}** |" in table
    readme = re.sub(r"\s+", " ", (REPO / "README.md").read_text())
    assert f"{totals[0]} resources), `terraform.tfvars.example` ({totals[1]}) and a large case ({totals[2]})" in readme


def test_alert_thresholds_are_the_ones_the_runbook_promises(plans: dict[str, dict[str, Any]]) -> None:
    plan = plans["minimal"]["json"]
    assert plan is not None, "the plan failed"
    alerts = {r["values"]["user_labels"]["alert_key"]: r["values"] for r in planned_resources(plan)
              if r["type"] == "google_monitoring_alert_policy"}
    threshold = {key: a["conditions"][0]["condition_threshold"][0] for key, a in alerts.items()}
    expected = {  # key: (threshold, duration, alignment period, ratio of two series?)
        "function-5xx-rate": (0.05, "0s", "300s", True),
        "subscriber-failure-rate": (0.1, "0s", "900s", True),
        "dead-letter-messages": (0, "0s", "60s", False),
        "oldest-unacked-message-age": (900, "60s", "60s", False),
        "cloudsql-cpu": (0.8, "600s", "60s", False),
        "cloudsql-connections": (80, "300s", "60s", False),  # 80% of the default 100 connections
        "failed-events": (10, "0s", "3600s", False),
        "tenant-over-limit": (0, "0s", "300s", False),
    }
    assert set(threshold) == set(expected)
    for key, (value, duration, period, is_ratio) in expected.items():
        t = threshold[key]
        assert (t["threshold_value"], t["duration"], t["comparison"]) == (value, duration, "COMPARISON_GT"), key
        assert t["aggregations"][0]["alignment_period"] == period, key
        assert bool(t["denominator_filter"]) == is_ratio and len(t["denominator_aggregations"]) == int(is_ratio), key
        assert alerts[key]["notification_channels"] is not None, key
    assert "5xx" in threshold["function-5xx-rate"]["filter"]
    assert "num_undelivered_messages" in threshold["dead-letter-messages"]["filter"]
    assert "logging.googleapis.com/user/" in threshold["failed-events"]["filter"]


@pytest.mark.parametrize("case", list(CASES))
def test_a_second_plan_after_apply_changes_nothing(offline: OfflineTerraform, plans: dict[str, dict[str, Any]],
                                                   case: str) -> None:
    assert plans[case]["step"].ok, "the first plan failed"
    applied = offline.apply(f"{case}.tfplan", CASES[case])
    assert applied.ok, applied.first_error()
    # The function URLs are known only after apply: the applied state shows each push endpoint carrying
    # the topic path functions-framework takes the CloudEvent source from.
    state = offline.show_state(CASES[case])
    project = re.search(r'^project_id\s*=\s*"([^"]+)"', CASES[case].read_text(), re.M)
    assert project, f"{CASES[case].name} sets no project_id"
    endpoints = {r["values"]["name"]: r["values"]["push_config"][0]["push_endpoint"]
                 for r in state["values"]["root_module"]["resources"]
                 if r["type"] == "google_pubsub_subscription" and r["values"]["push_config"]}
    for event_type in load_topology().event_types.values():
        for name in event_type.subscriptions:
            assert endpoints[name].endswith(f"/topics/{event_type.topic}"), endpoints[name]
            assert f"/projects/{project.group(1)}/topics/" in endpoints[name], endpoints[name]
    again = offline.plan(CASES[case], refresh=True)
    assert again.ok, again.first_error()
    assert again.counts == {"add": 0, "change": 0, "destroy": 0}, again.output[-3000:]


# --- variants: what the validations allow plans; what they refuse fails on the variable, at plan time ----------

VARIANTS = sorted((REPO / "tools" / "tfplan" / "cases" / "variants").glob("*.tfvars"))


@pytest.mark.parametrize("var_file", [v for v in VARIANTS if v.name.startswith("ok-")], ids=lambda v: v.stem)
def test_every_allowed_variant_plans(offline: OfflineTerraform, var_file: Path) -> None:
    step = offline.plan(var_file)
    assert step.ok, f"{var_file.name}:\n{step.first_error()}"
    assert step.counts["add"] > 50


@pytest.mark.parametrize("var_file", [v for v in VARIANTS if v.name.startswith("refused-")], ids=lambda v: v.stem)
def test_every_refused_variant_fails_on_its_variable(offline: OfflineTerraform, var_file: Path) -> None:
    step = offline.plan(var_file)
    assert not step.ok, f"{var_file.name} planned"
    error = step.first_error()
    assert error.startswith(("Error: Invalid value for variable", "Error: Resource precondition failed")), error
    set_in_file = set(re.findall(r"^(\w+)\s*=", var_file.read_text(), re.M)) - {"project_id", "alert_emails"}
    assert any(name in error for name in set_in_file), error  # the variable to change is named


# --- tests for the test: a broken copy fails with Terraform's own message -------------------------------

BROKEN = {
    "wrong argument name": (
        'resource "google_pubsub_topic" "broken" {\n  name = "broken"\n  message_retention_duraton = "600s"\n}\n',
        "Unsupported argument"),
    "missing required argument": (
        'resource "google_pubsub_subscription" "broken" {\n  name = "broken"\n}\n',
        'Missing required argument'),
    "wrong block nesting": (
        'resource "google_pubsub_topic" "broken" {\n  name = "broken"\n  schema_settings = { schema = "s" }\n}\n',
        "Unsupported argument"),
    "bad reference": (
        'output "broken" {\n  value = google_pubsub_topic.does_not_exist.id\n}\n',
        "Reference to undeclared resource"),
    "unknown attribute": (
        'output "broken" {\n  value = google_sql_database_instance.main.connection_nam\n}\n',
        "Unsupported attribute"),
    "cycle": (
        'resource "google_pubsub_topic" "broken_a" {\n  name = google_pubsub_topic.broken_b.name\n}\n'
        'resource "google_pubsub_topic" "broken_b" {\n  name = google_pubsub_topic.broken_a.name\n}\n',
        "Cycle"),
    "for_each over apply-time values": (
        'resource "google_pubsub_topic" "broken" {\n'
        '  for_each = toset([google_sql_database_instance.main.connection_name])\n  name = each.key\n}\n',
        "Invalid for_each argument"),
}


@pytest.mark.parametrize("mistake", list(BROKEN))
def test_a_broken_configuration_fails_with_terraforms_message(mistake: str) -> None:
    source, message = BROKEN[mistake]
    with OfflineTerraform() as tf:
        (tf.dir / "zz_broken.tf").write_text(source)
        assert tf.init().ok
        step = tf.validate()
        if step.ok:
            step = tf.plan(CASES["minimal"])
        assert not step.ok, f"{mistake}: terraform accepted it"
        ours = [e for e in step.errors() if "zz_broken.tf" in e or "broken_a" in e]
        assert ours, step.output[-3000:]
        assert message in ours[0], ours[0]


@pytest.mark.parametrize("with_moved", [True, False], ids=["renamed with moved", "renamed without moved"])
def test_a_refactor_check_sees_moves_and_what_a_rename_would_destroy(with_moved: bool) -> None:
    """What `--refactor-from` relies on: a deployment (applied offline), then a changed configuration planned
    on its state. A resource renamed with a moved block only moves; without one, it is replaced."""
    with OfflineTerraform(revision="HEAD") as tf:
        extra = tf.dir / "zz_extra.tf"
        extra.write_text('resource "google_pubsub_topic" "before" {\n  name = "refactor-check"\n}\n')
        assert tf.init().ok
        assert tf.plan(CASES["minimal"], out="old.tfplan").ok
        assert tf.apply("old.tfplan", CASES["minimal"]).ok
        moved = "moved {\n  from = google_pubsub_topic.before\n  to   = google_pubsub_topic.after\n}\n"
        extra.write_text('resource "google_pubsub_topic" "after" {\n  name = "refactor-check"\n}\n'
                         + (moved if with_moved else ""))
        step = tf.plan(CASES["minimal"], refresh=True)
        assert step.ok, step.first_error()
    if with_moved:
        assert step.counts == {"add": 0, "change": 0, "destroy": 0}
        assert "google_pubsub_topic.before has moved to google_pubsub_topic.after" in step.output
    else:
        assert step.counts == {"add": 1, "change": 0, "destroy": 1}


def test_the_command_line_reports_each_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tools.tfplan.__main__ import main

    assert main([str(CASES["minimal"]), "--json-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "init: OK" in out and "validate: OK" in out and "plan minimal.tfvars: OK" in out
    assert json.loads((tmp_path / "minimal.plan.json").read_text())["planned_values"]
