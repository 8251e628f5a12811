"""Static checks of the Terraform root module in terraform/ (issues 4 and 11).

`terraform init/validate/plan` against the real provider schema runs offline in
`make test` through tools/tfplan. These tests complement it: they parse every
.tf file with an HCL2 parser and assert the properties a plan cannot see (least
privilege, names, what waits for what on the first apply, what keeps later
plans empty); they also run `terraform fmt -check` and checkov when present.

Parser: the `hcl2` module. Two flavours are accepted, because checkov's own
dependency (bc-python-hcl2) and python-hcl2 both install a package named
`hcl2` and cannot live in one environment:
  * python-hcl2 >= 8 (explicit block markers), and
  * bc-python-hcl2 / python-hcl2 < 5 style output (every attribute value
    wrapped in a one-element list).
Both are normalised to one shape: a body is a dict of attribute -> value and
block type -> list of bodies (a labelled nested block, e.g. `dynamic "x"`, is a
one-key dict {label: body}). Expressions keep their `${...}` form.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "terraform"
TOPOLOGY_FILE = REPO / "shared" / "topology.json"

EXPECTED_FILES = {
    "versions.tf",
    "variables.tf",
    "main.tf",
    "topology.tf",
    "pubsub.tf",
    "functions.tf",
    "iam.tf",
    "sql.tf",
    "secrets.tf",
    "monitoring.tf",
    "moved.tf",
    "outputs.tf",
}

# -----------------------------------------------------------------------------
# Parsing and normalisation
# -----------------------------------------------------------------------------


def _is_dunder(key: str) -> bool:
    return key.startswith("__") and key.endswith("__")


def _strip_label(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def _body(d: dict, is_nested: Callable[[Any], bool], block: Callable[[dict], dict], *, listed_values: bool) -> dict:
    """A block body in one shape: nested blocks (lists of what `is_nested` knows) read by `block`, and with
    `listed_values` (legacy parsers) every attribute's value taken out of its one-item list."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if _is_dunder(key):
            continue
        if isinstance(value, list) and value and all(is_nested(x) for x in value):
            out[key] = [block(x) for x in value]
        elif listed_values and isinstance(value, list) and len(value) == 1:
            out[key] = value[0]
        else:
            out[key] = value
    return out


# --- python-hcl2 >= 8 ------------------------------------------------------------


def _v8_is_block(x: Any) -> bool:
    return isinstance(x, dict) and bool(x.get("__is_block__"))


def _v8_is_labelled(x: Any) -> bool:
    if not isinstance(x, dict) or x.get("__is_block__"):
        return False
    items = [v for k, v in x.items() if not _is_dunder(k)]
    return bool(items) and all(_v8_is_block(v) or _v8_is_labelled(v) for v in items)


def _v8_block(x: dict) -> dict:
    if _v8_is_block(x):
        return _body(x, lambda v: _v8_is_block(v) or _v8_is_labelled(v), _v8_block, listed_values=False)
    return {_strip_label(k): _v8_block(v) for k, v in x.items() if not _is_dunder(k)}


# --- bc-python-hcl2 / legacy ----------------------------------------------------------


def _legacy_is_labelled(x: Any) -> bool:
    """{label: body}: the wrapper of a labelled nested block such as `dynamic "x"`."""
    items = [v for k, v in x.items() if not _is_dunder(k)] if isinstance(x, dict) else []
    return bool(items) and all(_legacy_is_body(v) or _legacy_is_labelled(v) for v in items)


def _legacy_is_body(x: Any) -> bool:
    """A block body: every attribute value is wrapped in a list, nested blocks are lists too."""
    if not isinstance(x, dict):
        return False
    return all(isinstance(v, list) for k, v in x.items() if not _is_dunder(k))


def _legacy_block(x: dict) -> dict:
    if _legacy_is_labelled(x):
        return {k: _legacy_block(v) for k, v in x.items() if not _is_dunder(k)}
    return _body(x, lambda v: _legacy_is_body(v) or _legacy_is_labelled(v), _legacy_block, listed_values=True)


def _parse(text: str) -> tuple[dict, Any]:
    """Return (raw parse, body normaliser)."""
    try:
        from hcl2.utils import SerializationOptions  # python-hcl2 >= 8
    except ImportError:
        return hcl2.loads(text), _legacy_block
    options = SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=True)
    return hcl2.loads(text, serialization_options=options), _v8_block


def _normalise_file(text: str) -> dict[str, Any]:
    raw, block = _parse(text)
    out: dict[str, Any] = {
        "resource": {},
        "data": {},
        "ephemeral": {},
        "variable": {},
        "output": {},
        "provider": {},
        "locals": {},
        "terraform": [],
        "check": {},
    }
    for kind, entries in raw.items():
        if _is_dunder(kind):
            continue
        for entry in entries:
            body = block(entry)
            if kind in ("resource", "data", "ephemeral"):
                for rtype, named in body.items():
                    for name, rbody in named.items():
                        out[kind][(_strip_label(rtype), _strip_label(name))] = rbody
            elif kind in ("variable", "output", "provider", "check"):
                for name, vbody in body.items():
                    out[kind][_strip_label(name)] = vbody
            elif kind == "locals":
                out["locals"].update(body)
            elif kind == "terraform":
                out["terraform"].append(body)
            else:
                out.setdefault(kind, []).append(body)
    return out


@cache
def tf_files() -> dict[str, dict[str, Any]]:
    return {p.name: _normalise_file(p.read_text(encoding="utf-8")) for p in sorted(TF_DIR.glob("*.tf"))}


@cache
def config() -> dict[str, Any]:
    """All files merged, as Terraform sees one module."""
    merged: dict[str, Any] = {
        k: {} for k in ("resource", "data", "ephemeral", "variable", "output", "provider", "locals", "check")
    }
    merged["terraform"] = []
    for name, parsed in tf_files().items():
        for kind, value in parsed.items():
            if isinstance(value, dict):
                dupes = set(merged.setdefault(kind, {})) & set(value)
                assert not dupes, f"{name}: duplicate {kind} {dupes}"
                merged[kind].update(value)
            else:
                merged.setdefault(kind, []).extend(value)
    return merged


def resources(rtype: str) -> dict[str, dict]:
    return {name: body for (t, name), body in config()["resource"].items() if t == rtype}


def resource(rtype: str, name: str) -> dict:
    found = config()["resource"].get((rtype, name))
    assert found is not None, f"missing resource {rtype}.{name}"
    return found


def local(name: str) -> Any:
    assert name in config()["locals"], f"missing local.{name}"
    return config()["locals"][name]


def one(body: dict, block: str) -> dict:
    blocks = body.get(block)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected exactly one {block} block, got {blocks!r}"
    return blocks[0]


def flat(expr: Any) -> str:
    """Whitespace- and quote-normalised expression text (parsers differ in spacing
    and some render strings inside expressions with single quotes)."""
    text = json.dumps(expr) if not isinstance(expr, str) else expr
    text = text.replace("'", '"')
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*,\s*", ", ", text)
    return text.strip()


def walk_strings(node: Any):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from walk_strings(k)
            yield from walk_strings(v)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from walk_strings(v)


def variable_default(name: str) -> Any:
    var = config()["variable"][name]
    assert "default" in var, f"variable {name} has no default"
    return var["default"]


@cache
def topology() -> dict:
    return json.loads(TOPOLOGY_FILE.read_text(encoding="utf-8"))


# -----------------------------------------------------------------------------
# Structure, versions, variables
# -----------------------------------------------------------------------------


def test_every_tf_file_parses_and_layout_is_complete():
    names = set(tf_files())
    assert names >= EXPECTED_FILES, f"missing: {EXPECTED_FILES - names}"
    assert (TF_DIR / "terraform.tfvars.example").is_file()
    assert (TF_DIR / "README.md").is_file()
    assert config()["resource"], "no resources parsed"


def test_providers_are_pinned():
    blocks = config()["terraform"]
    assert len(blocks) == 1
    tf = blocks[0]
    assert re.match(r">=\s*1\.(1[1-9]|[2-9]\d)", tf["required_version"]), tf["required_version"]
    providers = one(tf, "required_providers")
    google = providers["google"]
    assert google["source"] == "hashicorp/google"
    assert re.match(r"~>\s*6\.\d+", google["version"]), google["version"]
    assert providers["archive"]["source"] == "hashicorp/archive"
    assert providers["archive"]["version"].startswith("~>")
    assert providers["random"]["source"] == "hashicorp/random"
    assert providers["time"]["source"] == "hashicorp/time"
    assert providers["time"]["version"].startswith("~>")
    # google-beta only for the one resource the GA provider lacks, on the same pin.
    assert providers["google-beta"]["source"] == "hashicorp/google-beta"
    assert providers["google-beta"]["version"] == google["version"]
    on_beta = {
        (rtype, name)
        for kind in ("resource", "data")
        for (rtype, name), body in config()[kind].items()
        if "google-beta" in flat(body.get("provider", ""))
    }
    assert on_beta == {("google_project_service_identity", "pubsub")}, on_beta


def test_every_variable_is_typed():
    variables = config()["variable"]
    assert len(variables) >= 20
    for name, body in variables.items():
        assert "type" in body, f"variable {name} has no type"


# The knobs and outputs the issue names explicitly, and how long a real description is at the least.
@pytest.mark.parametrize(("kind", "shortest", "named"), [
    ("variable", 15, {"retry_minimum_backoff", "retry_maximum_backoff", "max_delivery_attempts",
                      "db_backup_retained_count", "db_pitr_retention_days", "db_max_connections", "db_pool_size",
                      "alert_emails", "tenants", "edge_function_settings", "writer_function_settings",
                      "function_overrides", "name_prefix"}),
    ("output", 10, {"webhook_urls", "webhook_url_patterns", "topics", "dead_letter_subscriptions",
                    "db_connection_name", "writer_max_instances", "secret_set_commands"}),
])
def test_every_variable_and_output_is_described_and_the_named_ones_exist(kind: str, shortest: int,
                                                                          named: set[str]):
    blocks = config()[kind]
    for name, body in blocks.items():
        assert len(str(body.get("description", ""))) >= shortest, f"{kind} {name} needs a real description"
    assert not named - blocks.keys(), f"missing {kind}s: {sorted(named - blocks.keys())}"


def test_max_delivery_attempts_is_validated_between_5_and_100():
    var = config()["variable"]["max_delivery_attempts"]
    conditions = " ".join(flat(v["condition"]) for v in var["validation"])
    assert ">= 5" in conditions and "<= 100" in conditions
    assert 5 <= var["default"] <= 100


def test_secret_set_commands_read_the_value_from_stdin():
    value = flat(config()["output"]["secret_set_commands"]["value"])
    assert "gcloud secrets versions add" in value and "--data-file=-" in value


def test_tfvars_example_only_sets_declared_variables():
    # A tfvars file is a bag of top-level attributes.
    raw, _ = _parse((TF_DIR / "terraform.tfvars.example").read_text(encoding="utf-8"))
    keys = {k for k in raw if not _is_dunder(k)}
    assert keys
    undeclared = keys - set(config()["variable"])
    assert not undeclared, f"tfvars example sets undeclared variables: {undeclared}"
    required = {n for n, v in config()["variable"].items() if "default" not in v}
    assert required <= keys, f"tfvars example misses required variables: {required - keys}"


# -----------------------------------------------------------------------------
# Topology: Terraform iterates exactly what Python reads
# -----------------------------------------------------------------------------

_MAP_FOR = re.compile(
    r"^\$\{\{for (?P<k>\w+), (?P<v>\w+) in local\.topology\.(?P<coll>\w+) : (?P=k) => (?P=v)\.(?P<attr>\w+)\}\}$"
)
_FILTER_FOR = re.compile(
    r"^\$\{\{for (?P<k>\w+), (?P<v>\w+) in local\.topology\.functions : (?P=k) => (?P=v) "
    r"if (?P=v)\.(?P<attr>\w+)(?: == \"(?P<value>[^\"]+)\")?\}\}$"
)


def eval_map_local(name: str) -> dict[str, Any]:
    """Evaluate `{for k, v in local.topology.<coll> : k => v.<attr>}` against the JSON."""
    expr = flat(local(name))
    m = _MAP_FOR.match(expr)
    assert m, f"local.{name} is not a plain for over local.topology: {expr}"
    return {k: v[m["attr"]] for k, v in topology()[m["coll"]].items()}


def eval_filter_local(name: str) -> set[str]:
    """Evaluate `{for k, v in local.topology.functions : k => v if v.<attr> [== "x"]}`."""
    expr = flat(local(name))
    m = _FILTER_FOR.match(expr)
    assert m, f"local.{name} is not a plain filter over local.topology.functions: {expr}"
    attr, value = m["attr"], m["value"]
    functions = topology()["functions"]
    if value is None:
        return {k for k, v in functions.items() if v.get(attr)}
    return {k for k, v in functions.items() if v.get(attr) == value}


def eval_push_subscriptions() -> dict[str, tuple[str, str, str]]:
    """Evaluate local.push_subscriptions: {subscription => (event_type, topic, function)}."""
    expr = flat(local("push_subscriptions"))
    m = re.match(
        r"^\$\{merge\(\[for (?P<et>\w+), (?P<cfg>\w+) in local\.topology\.event_types : "
        r"\{for (?P<sub>\w+), (?P<fn>\w+) in (?P=cfg)\.subscriptions : (?P=sub) => "
        r"\{(?P<obj>.*)\}\}\]\s*(\.\.\.)?\)\}$",
        expr,
    )
    assert m, f"local.push_subscriptions has an unexpected shape: {expr}"
    obj = m["obj"].replace("'", "").replace('"', "").replace(":", " =")
    fields = dict(re.findall(r"(\w+) = \$?\{?([\w.]+)\}?", obj))
    assert fields == {"event_type": m["et"], "topic": f"{m['cfg']}.topic", "function": m["fn"], "retry": "try"}, fields
    assert f"try({m['cfg']}.retry_policies[{m['sub']}], {{}})" in obj, obj  # a subscription's own retry policy
    return {
        sub: (event_type, cfg["topic"], fn)
        for event_type, cfg in topology()["event_types"].items()
        for sub, fn in cfg["subscriptions"].items()
    }


def python_view() -> dict[str, Any]:
    """What the Python side reads from shared/topology.json."""
    t = topology()
    return {
        "topics": {cfg["topic"] for cfg in t["event_types"].values()},
        "dead_letter_topics": {cfg["dead_letter_topic"] for cfg in t["event_types"].values()},
        "dead_letter_subscriptions": {cfg["dead_letter_subscription"] for cfg in t["event_types"].values()},
        "subscription_pairs": {
            (sub, fn) for cfg in t["event_types"].values() for sub, fn in cfg["subscriptions"].items()
        },
        "functions": set(t["functions"]),
        "http": {n for n, f in t["functions"].items() if f["trigger"] == "http"},
        "pubsub": {n for n, f in t["functions"].items() if f["trigger"] == "pubsub"},
        "public": {n for n, f in t["functions"].items() if f["public"]},
    }


def test_topology_is_read_from_the_shared_file():
    expr = flat(local("topology"))
    assert "jsondecode(file(" in expr and "/../shared/topology.json" in expr, expr
    elsewhere = " ".join(s for fname, f in tf_files().items() if fname != "topology.tf" for s in walk_strings(f))
    assert "jsondecode(" not in elsewhere, "only topology.tf may decode the topology file"


def test_python_and_terraform_see_the_same_topology():
    py = python_view()
    assert set(eval_map_local("topics").values()) == py["topics"]
    assert set(eval_map_local("dead_letter_topics").values()) == py["dead_letter_topics"]
    assert set(eval_map_local("dead_letter_subscriptions").values()) == py["dead_letter_subscriptions"]
    push = eval_push_subscriptions()
    assert {(sub, fn) for sub, (_, _, fn) in push.items()} == py["subscription_pairs"]
    assert flat(local("functions")) == "${local.topology.functions}"
    assert eval_filter_local("http_functions") == py["http"]
    assert eval_filter_local("subscriber_functions") == py["pubsub"]
    assert eval_filter_local("public_functions") == py["public"]
    # Every subscriber named in a subscription is a pubsub function.
    assert {fn for _, fn in py["subscription_pairs"]} <= py["pubsub"]


def test_resources_iterate_the_topology_collections():
    expectations = {
        ("google_pubsub_topic", "event"): ("${local.topics}", "${each.value}"),
        ("google_pubsub_topic", "dead_letter"): ("${local.dead_letter_topics}", "${each.value}"),
        ("google_pubsub_subscription", "push"): ("${local.push_subscriptions}", "${each.key}"),
        ("google_pubsub_subscription", "dead_letter_ops"): ("${local.dead_letter_subscriptions}", "${each.value}"),
    }
    for (rtype, name), (for_each, res_name) in expectations.items():
        body = resource(rtype, name)
        assert flat(body["for_each"]) == for_each, (rtype, name, body["for_each"])
        assert flat(body["name"]) == res_name, (rtype, name, body["name"])
    # Subscriptions hang off the right topics.
    assert flat(resource("google_pubsub_subscription", "push")["topic"]) == (
        "${google_pubsub_topic.event[each.value.event_type].id}"
    )
    assert flat(resource("google_pubsub_subscription", "dead_letter_ops")["topic"]) == (
        "${google_pubsub_topic.dead_letter[each.key].id}"
    )
    fn = resource("google_cloudfunctions2_function", "fn")
    assert flat(fn["for_each"]) == "${local.functions}"
    assert flat(one(fn, "build_config")["entry_point"]) == "${each.value.entry_point}"


def test_topic_and_subscription_names_are_not_prefixed():
    # The Python publisher uses the JSON names verbatim.
    for rtype, name in (
        ("google_pubsub_topic", "event"),
        ("google_pubsub_topic", "dead_letter"),
        ("google_pubsub_subscription", "push"),
        ("google_pubsub_subscription", "dead_letter_ops"),
    ):
        assert "name_prefix" not in flat(resource(rtype, name)["name"])


def test_no_topology_names_are_hard_coded():
    t = topology()
    names = {cfg["topic"] for cfg in t["event_types"].values()}
    names |= {cfg["dead_letter_topic"] for cfg in t["event_types"].values()}
    names |= {cfg["dead_letter_subscription"] for cfg in t["event_types"].values()}
    names |= {sub for cfg in t["event_types"].values() for sub in cfg["subscriptions"]}
    literals = {s for s in walk_strings(config()["resource"]) if not s.startswith("${")}
    assert not (names & literals), f"hard-coded topology names: {names & literals}"


# -----------------------------------------------------------------------------
# Pub/Sub
# -----------------------------------------------------------------------------


def test_every_push_subscription_has_dlq_retry_and_oidc():
    subs = resources("google_pubsub_subscription")
    push_subs = {n: b for n, b in subs.items() if "push_config" in b}
    assert set(push_subs) == {"push"}
    for name, body in push_subs.items():
        dlq = one(body, "dead_letter_policy")
        assert "google_pubsub_topic.dead_letter[" in flat(dlq["dead_letter_topic"])
        # A subscription's own policy from the topology (retry_policies), else the variables'.
        assert flat(dlq["max_delivery_attempts"]) == (
            "${try(each.value.retry.max_delivery_attempts, var.max_delivery_attempts)}")
        retry = one(body, "retry_policy")
        assert flat(retry["minimum_backoff"]) == "${try(each.value.retry.minimum_backoff, var.retry_minimum_backoff)}"
        assert flat(retry["maximum_backoff"]) == "${try(each.value.retry.maximum_backoff, var.retry_maximum_backoff)}"
        push = one(body, "push_config")
        endpoint = flat(push["push_endpoint"])
        assert "/projects/" in endpoint and "/topics/" in endpoint, endpoint
        assert endpoint.endswith("/projects/${var.project_id}/topics/${each.value.topic}"), endpoint
        assert endpoint.startswith("${google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri}")
        assert "no_wrapper" not in push, "functions-framework needs the wrapped push body"
        oidc = one(push, "oidc_token")
        assert flat(oidc["service_account_email"]) == "${google_service_account.push.email}"
        assert "service_config[0].uri" in flat(oidc["audience"])
        assert one(body, "expiration_policy")["ttl"] == "", f"{name} must never expire"
        assert flat(body["ack_deadline_seconds"]) == "${local.push_ack_deadline_seconds[each.key]}"


def test_ack_deadline_fits_the_function_timeout():
    expr = flat(local("push_ack_deadline_seconds"))
    assert "min(600" in expr and "timeout_seconds" in expr, expr
    writer = variable_default("writer_function_settings")
    assert writer["timeout_seconds"] <= 600


def test_dead_letter_ops_subscriptions_never_expire():
    body = resource("google_pubsub_subscription", "dead_letter_ops")
    assert "push_config" not in body, "operators pull from it"
    assert one(body, "expiration_policy")["ttl"] == ""
    assert flat(body["message_retention_duration"]) == "${var.subscription_message_retention}"


def test_topics_keep_messages_long_enough_to_redrive():
    for name in ("event", "dead_letter"):
        body = resource("google_pubsub_topic", name)
        assert flat(body["message_retention_duration"]) == "${var.topic_message_retention}"
    seconds = int(variable_default("topic_message_retention").rstrip("s"))
    assert seconds >= 7 * 24 * 3600
    assert int(variable_default("subscription_message_retention").rstrip("s")) == 7 * 24 * 3600


def test_pubsub_service_agent_bindings():
    agent = flat(local("pubsub_service_agent"))
    assert "gcp-sa-pubsub.iam.gserviceaccount.com" in agent and "data.google_project.this.number" in agent
    # The agent is created before any grant names it (it may not exist right after
    # the API is enabled): every grant reads the member through the identity resource.
    assert "google_project_service_identity.pubsub.email" in agent, agent
    identity = resource("google_project_service_identity", "pubsub")
    assert identity["service"] == "pubsub.googleapis.com"
    assert flat(identity["provider"]) in ("${google-beta}", "google-beta")
    pub = resource("google_pubsub_topic_iam_member", "dead_letter_publisher")
    assert flat(pub["for_each"]) == "${local.dead_letter_topics}"
    assert pub["role"] == "roles/pubsub.publisher"
    assert flat(pub["member"]) == "${local.pubsub_service_agent}"
    assert "google_pubsub_topic.dead_letter[each.key]" in flat(pub["topic"])
    sub = resource("google_pubsub_subscription_iam_member", "source_subscriber")
    assert flat(sub["for_each"]) == "${local.push_subscriptions}"
    assert sub["role"] == "roles/pubsub.subscriber"
    assert flat(sub["member"]) == "${local.pubsub_service_agent}"
    assert "google_pubsub_subscription.push[each.key]" in flat(sub["subscription"])


# -----------------------------------------------------------------------------
# Functions and identity
# -----------------------------------------------------------------------------


def test_functions_share_one_source_archive_with_only_runtime_files():
    expr = flat(local("source_files"))
    for needed in ('"main.py"', '"requirements.txt"', "functions", "shared", "sql"):
        assert needed in expr, needed
    for excluded in ("tests", "terraform", "docs", "ops", ".local"):
        assert excluded not in expr, excluded
    fn = resource("google_cloudfunctions2_function", "fn")
    storage = one(one(one(fn, "build_config"), "source"), "storage_source")
    assert flat(storage["object"]) == "${google_storage_bucket_object.source.name}"
    bucket = resource("google_storage_bucket", "source")
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert one(bucket, "versioning")["enabled"] is True


def test_functions_are_gen2_python_with_role_settings():
    fn = resource("google_cloudfunctions2_function", "fn")
    assert flat(one(fn, "build_config")["runtime"]) == "${var.runtime}"
    assert variable_default("runtime") in ("python311", "python312", "python313")
    svc = one(fn, "service_config")
    for attr, key in (
        ("available_memory", "memory"),
        ("timeout_seconds", "timeout_seconds"),
        ("min_instance_count", "min_instances"),
        ("max_instance_count", "max_instances"),
    ):
        assert flat(svc[attr]) == f"${{local.function_settings[each.key].{key}}}", attr
    settings = flat(local("function_settings"))
    assert "var.function_overrides" in settings and "local.writer_max_instances" in settings
    roles = flat(local("role_settings"))
    assert "var.writer_function_settings" in roles and "var.edge_function_settings" in roles


def test_no_default_compute_service_account():
    fn = resource("google_cloudfunctions2_function", "fn")
    assert flat(one(fn, "service_config")["service_account_email"]) == (
        "${local.function_service_account_email[each.key]}"
    )
    assert flat(one(fn, "build_config")["service_account"]) == "${google_service_account.build.id}"
    everything = " ".join(walk_strings(config()))
    assert "-compute@developer.gserviceaccount.com" not in everything
    assert "appspot.gserviceaccount.com" not in everything


def test_subscribers_have_no_public_ingress_and_only_push_may_invoke():
    fn = resource("google_cloudfunctions2_function", "fn")
    ingress = flat(one(fn, "service_config")["ingress_settings"])
    assert ingress == '${each.value.trigger == "pubsub" ? var.subscriber_ingress : "ALLOW_ALL"}', ingress
    assert variable_default("subscriber_ingress") == "ALLOW_INTERNAL_ONLY"
    invoker = resource("google_cloud_run_service_iam_member", "push_invoker")
    assert flat(invoker["for_each"]) == "${local.subscriber_functions}"
    assert invoker["role"] == "roles/run.invoker"
    assert flat(invoker["member"]) == "serviceAccount:${google_service_account.push.email}"


def test_all_users_invoker_only_on_public_functions():
    public = resource("google_cloud_run_service_iam_member", "public_invoker")
    assert public["member"] == "allUsers"
    assert public["role"] == "roles/run.invoker"
    assert flat(public["for_each"]) == "${local.public_functions}"
    assert re.search(r"if fn\.public\}\}$", flat(local("public_functions")))
    # No other resource grants anything to allUsers / allAuthenticatedUsers.
    for (rtype, name), body in config()["resource"].items():
        if (rtype, name) == ("google_cloud_run_service_iam_member", "public_invoker"):
            continue
        for s in walk_strings(body):
            assert "allUsers" not in s and "allAuthenticatedUsers" not in s, (rtype, name, s)


def test_no_primitive_roles_and_no_authoritative_iam():
    primitive = re.compile(r"roles/(owner|editor|viewer)\b")
    for fname, parsed in tf_files().items():
        for s in walk_strings(parsed):
            assert not primitive.search(s), f"{fname}: primitive role in {s!r}"
    for rtype, _ in config()["resource"]:
        assert not rtype.endswith(("_iam_binding", "_iam_policy")), f"authoritative IAM: {rtype}"


def eval_publish_grants() -> set[tuple[str, str]]:
    """Evaluate local.publish_grants: {(function, event type)} for every function's `publishes`."""
    expr = flat(local("publish_grants"))
    m = re.match(
        r"^\$\{merge\(\[for (?P<n>\w+), (?P<f>\w+) in local\.(?P<coll>\w+) : "
        r"\{for (?P<et>\w+) in (?P=f)\.publishes : .*\}\}\]\s*(\.\.\.)?\)\}$",
        expr,
    )
    assert m, f"local.publish_grants has an unexpected shape: {expr}"
    # Every function, whatever its trigger: not only the HTTP ones.
    assert m["coll"] == "functions", f"publisher grants must iterate local.functions, not local.{m['coll']}"
    return {(name, et) for name, fn in topology()["functions"].items() for et in fn["publishes"]}


def test_publishers_follow_publishes_whatever_the_trigger():
    grants = eval_publish_grants()
    functions = topology()["functions"]
    expected = {(name, et) for name, fn in functions.items() for et in fn["publishes"]}
    assert grants == expected
    # Subscribers that publish (the assistant) get exactly their topics; the others none.
    assert {et for name, et in grants if name == "assistant"} == set(functions["assistant"]["publishes"])
    for name, fn in functions.items():
        if not fn["publishes"]:
            assert not any(n == name for n, _ in grants), name
    pub = resource("google_pubsub_topic_iam_member", "publisher")
    assert flat(pub["for_each"]) == "${local.publish_grants}"
    assert pub["role"] == "roles/pubsub.publisher"
    assert "google_pubsub_topic.event[each.value.event_type]" in flat(pub["topic"])
    assert flat(pub["member"]) == "${local.function_member[each.value.function]}"
    # The old address moves instead of being destroyed and recreated.
    iam_src = re.sub(r"\s+", " ", (TF_DIR / "iam.tf").read_text(encoding="utf-8"))
    assert (
        "moved { from = google_pubsub_topic_iam_member.edge_publisher to = google_pubsub_topic_iam_member.publisher }"
        in iam_src
    )
    # The only other publisher grants on event topics are the operators' redrive.
    for name, body in resources("google_pubsub_topic_iam_member").items():
        if body.get("role") == "roles/pubsub.publisher":
            assert name in {"publisher", "operator_redrive", "dead_letter_publisher"}, name
    # No project-level Pub/Sub roles.
    for name, body in resources("google_project_iam_member").items():
        roles = flat(body.get("role", "")) + flat(body.get("for_each", ""))
        assert "pubsub" not in roles, name
        assert "secretmanager" not in roles, name
    viewer = resource("google_pubsub_topic_iam_member", "health_viewer")
    assert viewer["role"] == "roles/pubsub.viewer"


def test_writer_identity_is_limited_to_cloud_sql_and_logging():
    cloudsql = resource("google_project_iam_member", "writer_cloudsql")
    roles = flat(cloudsql["for_each"])
    assert "roles/cloudsql.client" in roles and "roles/cloudsql.instanceUser" in roles
    condition = flat(one(cloudsql, "condition")["expression"])
    assert "instances/${var.db_instance_name}" in condition
    assert resource("google_project_iam_member", "writer_logging")["role"] == "roles/logging.logWriter"
    # Isolated subscribers get the same, on their own identity, and nothing broader.
    sub_sql = resource("google_project_iam_member", "subscriber_cloudsql")
    roles = flat(sub_sql["for_each"])
    assert "var.isolated_subscribers" in roles
    assert "roles/cloudsql.client" in roles and "roles/cloudsql.instanceUser" in roles
    assert flat(one(sub_sql, "condition")["expression"]) == condition
    assert "google_service_account.subscriber[" in flat(sub_sql["member"])
    assert resource("google_project_iam_member", "subscriber_logging")["role"] == "roles/logging.logWriter"


def test_assistant_and_reply_sender_run_as_their_own_identity():
    isolated = variable_default("isolated_subscribers")
    assert {"assistant", "reply_sender"} <= set(isolated)
    pubsub = {n for n, f in topology()["functions"].items() if f["trigger"] == "pubsub"}
    assert set(isolated) <= pubsub
    sa = resource("google_service_account", "subscriber")
    assert flat(sa["for_each"]) == "${toset(var.isolated_subscribers)}"
    emails = flat(local("function_service_account_email"))
    assert "contains(var.isolated_subscribers, name) ? google_service_account.subscriber[name].email" in emails
    # Own IAM database user (DB_USER), a member of the writer's role, never cloudsqlsuperuser.
    user = resource("google_sql_user", "subscriber")
    assert user["type"] == "CLOUD_IAM_SERVICE_ACCOUNT" and "password" not in user
    db_user = flat(local("function_db_user"))
    assert "google_sql_user.subscriber[name].name" in db_user and "google_sql_user.writer.name" in db_user
    commands = flat(local("subscriber_db_role_commands"))
    assert "--database-roles=${local.writer_db_user}" in commands
    assert "cloudsqlsuperuser" not in commands


def test_runtime_environment_contract():
    common = local("common_env")
    assert set(common) >= {"GOOGLE_CLOUD_PROJECT", "CT_ENV", "LOG_LEVEL"}
    assert common["CT_ENV"] == "cloud"
    db = local("db_env")
    assert set(db) == {"CLOUD_SQL_INSTANCE", "DB_NAME", "DB_USER", "DB_IAM_AUTH", "DB_POOL_SIZE"}
    assert db["DB_IAM_AUTH"] == "true"
    assert "connection_name" in flat(db["CLOUD_SQL_INSTANCE"])
    assert "google_sql_user.writer.name" in flat(db["DB_USER"])
    assert '.gserviceaccount.com"' in flat(local("writer_db_user"))
    env = flat(local("function_env"))
    assert "contains(keys(local.db_functions), name) ? merge(local.common_env, local.db_env, " in env
    assert "local.function_db_user[name]" in env
    assert "local.function_extra_env[name]" in env
    assert "try(fn.mounted_secrets, {})" in flat(local("function_secret_env"))
    assert topology()["functions"]["events"]["mounted_secrets"] == {"EVENTS_API_KEY": "events-api-key"}
    fn = resource("google_cloudfunctions2_function", "fn")
    dyn = one(fn, "service_config")["dynamic"][0]["secret_environment_variables"]
    assert one(dyn, "content")["version"] == "latest"


def _python_sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "shared").rglob("*.py"))


def test_per_function_environment_matches_what_the_code_reads():
    """Each function's extra settings are declared in the topology; Terraform resolves them all and the
    code reads every one."""
    functions = topology()["functions"]
    extra = flat(local("function_extra_env"))
    assert "try(fn.env, {})" in extra and "local.function_settings_values[setting]" in extra
    assert "try(fn.secret_names, {})" in extra and "google_secret_manager_secret.this[secret].secret_id" in extra
    settings = set(local("function_settings_values"))
    code = _python_sources()
    for name, fn in functions.items():
        for key, setting in fn.get("env", {}).items():
            assert setting in settings, f"{name}: {key} names {setting}, which Terraform does not set"
        for key, secret in {**fn.get("secret_names", {}), **fn.get("mounted_secrets", {})}.items():
            assert secret in local("module_secrets"), f"{name}: {key} names {secret}, not a module secret"
        for key in {**fn.get("env", {}), **fn.get("secret_names", {}), **fn.get("mounted_secrets", {})}:
            # Read as os.environ.get("KEY") or passed by name to a helper that does.
            assert f'"{key}"' in code, f"{name}: the code never reads {key}"
    assert set(functions["assistant"]["env"]) | set(functions["assistant"]["secret_names"]) == {
        "OPENAI_API_KEY_SECRET", "OPENAI_BASE_URL", "ASSISTANT_ENABLED"}
    assert functions["assistant"]["secret_names"] == {"OPENAI_API_KEY_SECRET": "openai-api-key"}
    assert set(functions["leadgen_fetcher"]["env"]) == {"META_GRAPH_BASE_URL", "META_GRAPH_VERSION"}
    assert set(functions["reply_sender"]["env"]) == {
        "EVOLUTION_API_URL",
        "ZAPI_API_URL",
        "META_GRAPH_BASE_URL",
        "META_GRAPH_VERSION",
        "DIALOG360_API_URL",
        "GUPSHUP_API_URL",
        "REPLY_RECONCILE_SECONDS",
    }
    # Variable defaults are the code's own defaults (empty = not set, the code decides).
    from shared.graph_api import DEFAULT_BASE_URL, DEFAULT_VERSION
    from shared.senders.config import ZAPI_DEFAULT_URL

    assert variable_default("zapi_api_url") == ZAPI_DEFAULT_URL
    assert variable_default("meta_graph_base_url") == DEFAULT_BASE_URL
    assert variable_default("meta_graph_version") == DEFAULT_VERSION
    assert variable_default("evolution_api_url") == ""
    assert variable_default("openai_base_url") == ""
    assert variable_default("assistant_enabled") is True
    # The OpenAI key is read by name at run time, never mounted (the secret starts empty).
    assert "OPENAI_API_KEY" not in flat(local("function_secret_env"))


# -----------------------------------------------------------------------------
# Cloud SQL
# -----------------------------------------------------------------------------


def test_cloud_sql_is_postgres16_protected_and_backed_up():
    db = resource("google_sql_database_instance", "main")
    assert db["database_version"] == "POSTGRES_16"
    assert db["deletion_protection"] is True
    settings = one(db, "settings")
    assert settings["deletion_protection_enabled"] is True
    backup = one(settings, "backup_configuration")
    assert backup["enabled"] is True
    assert backup["point_in_time_recovery_enabled"] is True
    assert flat(backup["transaction_log_retention_days"]) == "${var.db_pitr_retention_days}"
    assert flat(one(backup, "backup_retention_settings")["retained_backups"]) == "${var.db_backup_retained_count}"
    flags = {f["name"]: f["value"] for f in settings["database_flags"]}
    assert flags["cloudsql.iam_authentication"] == "on"
    assert flat(flags["max_connections"]) == "${tostring(var.db_max_connections)}"
    for name in ("log_checkpoints", "log_connections", "log_disconnections", "log_lock_waits"):
        assert flags[name] == "on", name
    assert flags["log_temp_files"] == "0"
    assert flags["log_min_duration_statement"] == "-1"


def test_cloud_sql_has_no_authorised_networks():
    db = resource("google_sql_database_instance", "main")
    ip = one(one(db, "settings"), "ip_configuration")
    assert "authorized_networks" not in ip
    assert not any("authorized_networks" in s for s in walk_strings(config()["resource"]))
    assert "0.0.0.0/0" not in " ".join(walk_strings(config()))
    assert flat(ip["ssl_mode"]) == "${var.db_ssl_mode}"
    allowed = flat(config()["variable"]["db_ssl_mode"]["validation"])
    assert "ALLOW_UNENCRYPTED_AND_ENCRYPTED" not in allowed


def test_database_and_iam_user():
    assert resource("google_sql_database", "app")
    user = resource("google_sql_user", "writer")
    assert user["type"] == "CLOUD_IAM_SERVICE_ACCOUNT"
    assert "password" not in user


def test_writer_max_instances_are_derived_from_the_connection_budget():
    expr = flat(local("writer_max_instances"))
    for token in ("floor(local.db_connection_budget /", "length(local.db_functions)", "* var.db_pool_size"):
        assert token in expr, expr
    # Some parsers drop redundant-looking parentheses when rendering; check the source text too.
    source = re.sub(r"\s+", " ", (TF_DIR / "sql.tf").read_text(encoding="utf-8"))
    assert "floor(local.db_connection_budget / (length(local.db_functions) * var.db_pool_size))" in source
    budget = flat(local("db_connection_budget"))
    assert budget == "${var.db_max_connections - var.db_reserved_connections}", budget
    assert flat(local("db_functions")) == "${merge(local.subscriber_functions, local.edge_db_functions)}"
    assert "try(fn.database_role, None) != None" in flat(local("edge_db_functions"))
    # With the defaults and the current topology the budget leaves room for every database function.
    writers = sum(1 for fn in topology()["functions"].values() if fn["trigger"] == "pubsub" or fn.get("database_role"))
    derived = math.floor(
        (variable_default("db_max_connections") - variable_default("db_reserved_connections"))
        / (writers * variable_default("db_pool_size"))
    )
    assert derived >= 1
    # The README states the figure for today's topology; keep it honest.
    readme = re.sub(r"\s+", " ", (TF_DIR / "README.md").read_text(encoding="utf-8"))
    stated = re.search(r"(\d+) with the defaults and the (\d+) database functions of today's topology", readme)
    assert stated, "README must state writer_max_instances for today's topology"
    assert (int(stated[1]), int(stated[2])) == (derived, writers)
    assert flat(config()["output"]["writer_max_instances"]["value"]) == "${local.writer_max_instances}"


# -----------------------------------------------------------------------------
# Secrets
# -----------------------------------------------------------------------------


def test_secrets_are_created_empty_and_read_per_secret():
    versions = resources("google_secret_manager_secret_version")
    # Only the mounted secrets (events API key, console session key) get a first version, generated, write-only.
    assert set(versions) == {"generated"}
    assert flat(versions["generated"]["for_each"]) == "${local.generated_secrets}"
    assert set(local("generated_secrets")) == {"events-api-key", "console-session-secret"}
    mounted = {s for fn in topology()["functions"].values() for s in fn.get("mounted_secrets", {}).values()}
    assert mounted == set(local("generated_secrets"))
    assert "secret_data" not in versions["generated"]
    assert "ephemeral.random_password.generated[each.key]" in flat(versions["generated"]["secret_data_wo"])
    for name, body in resources("google_project_iam_member").items():
        assert "secretmanager" not in flat(body.get("role", "")) + flat(body.get("for_each", "")), name
    # One resource for every secret but the sender credentials: the tenant sources' and the module's own.
    secrets = resource("google_secret_manager_secret", "this")
    assert flat(secrets["for_each"]) == "${local.secrets}"
    assert "local.tenant_secrets" in flat(local("secrets")) and "local.module_secrets" in flat(local("secrets"))
    assert set(local("module_secrets")) == {"openai-api-key", "events-api-key", "tenants-config",
                                            "console-session-secret"}
    assert flat(local("tenant_secrets")).count("var.tenants") == 1
    assert '"${var.name_prefix}${tenant}-${replace(source, "/", "-")}-${kind}"' in flat(local("tenant_secrets"))
    access = resource("google_secret_manager_secret_iam_member", "this")
    assert flat(access["for_each"]) == "${local.secret_grants}"
    assert flat(access["secret_id"]) == "${google_secret_manager_secret.this[each.value.secret].secret_id}"
    assert local("accessor") == "roles/secretmanager.secretAccessor"


def _grant(secret: str) -> str:
    """The comprehension of local.secret_grants that grants on `secret` (its text, as parsed)."""
    grants = flat(local("secret_grants"))
    at = grants.find(f'"{secret}|${{')
    assert at > 0 and grants.find(f'"{secret}|${{', at + 1) == -1, (secret, grants)
    start = grants.rfind("{for ", 0, at)
    depth = 0
    for end in range(start, len(grants)):
        depth += {"{": 1, "}": -1}.get(grants[end], 0)
        if depth == 0:
            return grants[start: end + 1]
    raise AssertionError(f"unbalanced: {grants}")


def test_openai_key_is_readable_only_by_the_assistant_identity():
    readers = [name for name, fn in topology()["functions"].items()
               if "openai-api-key" in {**fn.get("secret_names", {}), **fn.get("mounted_secrets", {})}.values()]
    assert readers == ["assistant"]
    grants = flat(local("secret_grants"))
    # Grants follow the topology: one per (secret a function names, function), to that function's identity.
    assert "values(try(fn.secret_names, {})), values(try(fn.mounted_secrets, {}))" in grants
    assert '"${secret}|${name}" => {"secret": "${secret}", "role": "${local.accessor}", ' in grants
    assert '"member": "${local.function_member[name]}"' in grants
    # ... and that identity is the assistant's own, not the shared writer.
    assert "assistant" in variable_default("isolated_subscribers")


def test_sender_secrets_are_readable_only_by_reply_sender():
    assert variable_default("sender_secret_ids") == []
    secret = resource("google_secret_manager_secret", "sender")
    assert flat(secret["for_each"]) == "${toset(var.sender_secret_ids)}"
    grant = resource("google_secret_manager_secret_iam_member", "sender")
    assert flat(grant["secret_id"]) == "${google_secret_manager_secret.sender[each.key].secret_id}"
    assert flat(grant["role"]) == "${local.accessor}"
    assert flat(grant["member"]) == "${local.function_member[each.value]}"
    assert "setproduct(var.sender_secret_ids, local.sender_secret_readers)" in flat(grant["for_each"])
    assert [n for n, fn in topology()["functions"].items() if fn.get("reads_sender_secrets")] == ["reply_sender"]
    assert "reply_sender" in variable_default("isolated_subscribers")
    assert "google_secret_manager_secret.sender" in flat(local("all_secret_ids"))


def test_source_catalog_matches_the_topology():
    catalog = variable_default("source_catalog")
    functions = topology()["functions"]
    assert catalog, "source_catalog default must list the known sources"
    for source, entry in catalog.items():
        channel, _, name = source.partition("/")
        assert name, f"{source}: keys are CHANNEL/SOURCE"
        assert functions[channel]["trigger"] == "http", f"{source}: the channel must be an HTTP function"
        assert entry["secrets"], source
        for kind, secret in entry["secrets"].items():
            assert secret["flag"] in {"--secret", "--verify-token-secret", "--jwt-secret", "--page-token-secret"}
            assert set(secret["readers"]) <= set(functions), (source, kind, secret["readers"])


def test_for_each_keys_come_from_configuration_not_from_emails():
    """A for_each key derived from a service account email is unknown until the
    account exists, and `terraform plan` refuses it ("Invalid for_each argument")."""
    identity = flat(local("function_identity"))
    assert "google_service_account" not in identity and "email" not in identity, identity
    assert '"edge/${name}"' in identity and '"subscriber/${name}"' in identity and '"writer"' in identity
    for name in ("tenant_secret_access", "tenants_config_readers"):
        expr = flat(local(name))
        assert "local.function_identity[" in expr, (name, expr)
        assert "function_member" not in expr and "email" not in expr, (name, expr)
    grants = flat(local("secret_grants"))
    assert "{for key, pair in local.tenant_secret_access : key =>" in grants
    assert '"member": "${local.identity_member[pair.identity]}"' in grants
    assert '{for identity in local.tenants_config_readers : "tenants-config|${identity}" =>' in grants
    assert '"member": "${local.identity_member[identity]}"' in grants
    members = flat(local("identity_member"))
    for source in ("google_service_account.edge", "google_service_account.subscriber", "google_service_account.writer"):
        assert source in members, source


def test_tenants_document_secret_is_readable_by_edge_and_writers():
    assert flat(local("common_env")["TENANTS_SECRET"]) == (
        '${google_secret_manager_secret.this["tenants-config"].secret_id}')
    reader = _grant("tenants-config")
    assert reader.startswith("{for identity in local.tenants_config_readers")
    assert '"role": "${local.accessor}"' in reader
    readers = flat(local("tenants_config_readers"))
    assert "var.source_catalog" in readers and "local.subscriber_functions" in readers
    grants = flat(local("secret_grants"))
    assert ('"tenants-config|publisher": {"secret": "tenants-config", "role": '
            '"roles/secretmanager.secretVersionAdder"') in grants


# -----------------------------------------------------------------------------
# Observability
# -----------------------------------------------------------------------------

ALERT_KEYS = {
    "function-5xx-rate",
    "subscriber-failure-rate",
    "dead-letter-messages",
    "oldest-unacked-message-age",
    "cloudsql-cpu",
    "cloudsql-connections",
    "failed-events",
    "tenant-over-limit",
}


def test_an_alert_policy_for_every_condition():
    """One policy per entry of local.alerts (thresholds: tests/terraform, on the planned values)."""
    assert set(local("alerts")) == ALERT_KEYS
    policy = resource("google_monitoring_alert_policy", "this")
    assert flat(policy["for_each"]) == "${local.alerts}"
    assert flat(policy["notification_channels"]) == "${local.notification_channel_ids}"
    assert policy["user_labels"] == {"alert_key": "${each.key}"}
    for key, alert in local("alerts").items():
        assert alert["display_name"] and alert["documentation"], key
    channel = resource("google_monitoring_notification_channel", "email")
    assert channel["type"] == "email"
    assert flat(channel["for_each"]) == "${toset(var.alert_emails)}"
    assert flat(local("db_connections_alert_threshold")) == "${floor(var.db_max_connections * 0.8)}"
    assert "push_request_count" in flat(local("push_requests"))
    assert "quoted_push_subscriptions" in flat(local("push_requests"))


def test_log_metrics_count_failed_events_and_messages_over_a_limit():
    metric = resource("google_logging_metric", "this")
    assert flat(metric["for_each"]) == "${local.log_metrics}"
    assert "${each.value.filter}" in flat(metric["filter"])
    assert flat(metric["label_extractors"]) == '{"each.value.label": "EXTRACT(jsonPayload.${each.value.label})"}'
    metrics = local("log_metrics")
    assert set(metrics) == {"failed-events", "over-limit"}
    assert re.search(r'jsonPayload\.event_status=\\?"failed\\?"', metrics["failed-events"]["filter"])
    assert metrics["failed-events"]["label"] == "event_type"
    # The assistant's line for a message it leaves unanswered over a tenant limit (shared/assistant).
    assert re.search(r'jsonPayload\.event_status=\\?"over_limit\\?"', metrics["over-limit"]["filter"])
    assert metrics["over-limit"]["label"] == "tenant"
    code = _python_sources()
    assert '"over_limit"' in code and '"failed"' in code


def test_dashboard_covers_ingest_writers_dlq_and_sql():
    dash = resource("google_monitoring_dashboard", "main")
    assert "jsonencode(" in flat(dash["dashboard_json"])
    tiles = flat(local("dashboard_tiles"))
    for metric in (
        "topic/send_message_operation_count",
        "run.googleapis.com/request_latencies",
        "local.push_requests",
        "num_undelivered_messages",
        "cpu/utilization",
        "postgresql/num_backends",
    ):
        assert metric in tiles, metric


def test_required_apis_are_enabled_and_never_disabled():
    apis = flat(local("apis"))
    for api in (
        "pubsub",
        "cloudfunctions",
        "run",
        "cloudbuild",
        "artifactregistry",
        "secretmanager",
        "sqladmin",
        "monitoring",
        "logging",
        "iam",
        "storage",
    ):
        assert f'"{api}.googleapis.com"' in apis, api
    svc = resource("google_project_service", "apis")
    assert svc["disable_on_destroy"] is False


# -----------------------------------------------------------------------------
# README (terraform-docs style) stays in step with the code
# -----------------------------------------------------------------------------


def _readme_table(section: str, anchor: str) -> set[str]:
    """Names in a terraform-docs table: rows start with <a name="input_x"></a> / <a name="output_x"></a>."""
    text = (TF_DIR / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"^## {section}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"README.md has no '## {section}' section"
    return set(re.findall(rf'^\|\s*<a name="{anchor}_(\w+)"></a>', m.group(1), re.M))


def test_readme_inputs_and_outputs_match_the_code():
    inputs = _readme_table("Inputs", "input")
    outputs = _readme_table("Outputs", "output")
    variables, declared_outputs = set(config()["variable"]), set(config()["output"])
    assert variables - inputs == set(), f"variables missing from README Inputs: {variables - inputs}"
    assert inputs - variables == set(), f"README Inputs lists unknown variables: {inputs - variables}"
    assert declared_outputs - outputs == set(), f"outputs missing from README: {declared_outputs - outputs}"
    assert outputs - declared_outputs == set(), f"README lists unknown outputs: {outputs - declared_outputs}"


def test_deploy_doc_exists():
    doc = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    for needed in ("terraform apply", "gcloud secrets versions add", "webhook_urls", "Prerequisites"):
        assert needed in doc, needed
    # Issue 11: the apply on paper.
    for section in (
        "## What is checked offline, and what only a real project shows",
        "## Resources per variable set",
        "## Apply order",
        "## First apply: what can go wrong, and what prevents it",
        "## A second apply changes nothing",
        "## Destroying",
    ):
        assert section in doc, section
    # The per-type table adds up to the totals it states, and README states the same totals.
    table = doc[doc.index("## Resources per variable set") : doc.index("## Apply order")]
    rows = re.findall(r"^\| `[^|]+\| (\d+) \| (\d+) \| (\d+) \|$", table, re.M)
    totals = re.search(r"^\| \*\*total\*\* \| \*\*(\d+)\*\* \| \*\*(\d+)\*\* \| \*\*(\d+)\*\* \|$", table, re.M)
    assert rows and totals
    for column in range(3):
        assert sum(int(r[column]) for r in rows) == int(totals[column + 1]), column
    readme = re.sub(r"\s+", " ", (REPO / "README.md").read_text(encoding="utf-8"))
    for total in totals.groups():
        assert f"{total})" in readme or f"{total} resources" in readme, total


# -----------------------------------------------------------------------------
# Tools: terraform fmt and checkov
# -----------------------------------------------------------------------------


def test_checkov_skips_are_justified_inline():
    for path in TF_DIR.glob("*.tf"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                assert re.search(r"#checkov:skip=CKV2?_[A-Z]+_\d+:.{30,}", line), f"{path.name}: {line.strip()}"


def test_terraform_fmt_is_clean():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not on PATH: fmt check needs Terraform >= 1.11 installed")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TF_DIR)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}\n{result.stderr}"


def _checkov_command() -> list[str] | None:
    try:
        import checkov  # noqa: F401
    except ImportError:
        return None
    script = Path(sys.executable).with_name("checkov")
    if script.exists():
        return [str(script)]
    found = shutil.which("checkov")
    return [found] if found else None


def test_checkov_has_no_failed_checks():
    command = _checkov_command()
    if command is None:
        pytest.skip("checkov is not installed in this environment (pip install checkov)")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [
            *command,
            "--directory",
            str(TF_DIR),
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert result.stdout.strip(), f"checkov printed nothing:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed, skipped = [], []
    for r in reports:
        assert r["summary"]["parsing_errors"] == 0, r["summary"]
        failed += r["results"].get("failed_checks", [])
        skipped += r["results"].get("skipped_checks", [])
        assert r["summary"]["passed"] > 30, r["summary"]
    assert not failed, "\n".join(f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed)
    for c in skipped:
        reason = (c.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) >= 30, f"{c['check_id']} on {c['resource']} skipped without a reason"


# -----------------------------------------------------------------------------
# First apply on an empty project, and later plans (issue 11)
# -----------------------------------------------------------------------------


def _seconds(duration: str) -> int:
    m = re.fullmatch(r"(\d+)s", duration)
    assert m, duration
    return int(m[1])


def test_first_apply_waits_for_api_iam_and_metric_propagation():
    sleeps = resources("time_sleep")
    # APIs: everything that calls a freshly enabled API waits after enabling it.
    api = sleeps["api_propagation"]
    assert flat(api["depends_on"]) == '["${google_project_service.apis}"]'
    waiting = [
        (rtype, name)
        for (rtype, name), body in config()["resource"].items()
        if "time_sleep.api_propagation" in flat(body.get("depends_on", ""))
    ]
    assert ("google_cloudfunctions2_function", "fn") in waiting
    assert ("google_sql_database_instance", "main") in waiting
    assert ("google_pubsub_topic", "event") in waiting
    # IAM: the functions' first build and deploy wait for the build and mounted-secret grants.
    iam = sleeps["iam_propagation"]
    assert _seconds(iam["create_duration"]) >= 120
    triggers = flat(iam["triggers"])
    assert "google_project_iam_member.build" in triggers
    assert "google_secret_manager_secret_iam_member.this : g.id if contains(keys(local.generated_secrets)" in triggers
    fn = resource("google_cloudfunctions2_function", "fn")
    assert "time_sleep.iam_propagation" in flat(fn["depends_on"])
    # Log-based metric: Monitoring can take up to 10 minutes to see a new one.
    metric_wait = sleeps["log_metrics"]
    assert _seconds(metric_wait["create_duration"]) >= 600
    assert "google_logging_metric.this" in flat(metric_wait["triggers"])
    alert = resource("google_monitoring_alert_policy", "this")
    assert flat(alert["depends_on"]) == '["${time_sleep.log_metrics}"]'


def test_later_plans_do_not_fight_what_the_platform_changes():
    db = resource("google_sql_database_instance", "main")
    assert one(db, "settings")["disk_autoresize"] is True
    lifecycle = one(db, "lifecycle")
    assert "settings[0].disk_size" in flat(lifecycle["ignore_changes"])
    # The dashboard JSON leaves out the zeros and empty lists the API drops.
    source = re.sub(r"\s+", " ", (TF_DIR / "monitoring.tf").read_text(encoding="utf-8"))
    assert "{ for k, v in { xPos = (i % 2) * 24, yPos = floor(i / 2) * 16 } : k => v if v != 0 }" in source
    assert "{ for k, v in { groupByFields = t.group_by } : k => v if length(v) > 0 }" in source
    # LOG_EXECUTION_ID is suppressed by the provider itself (>= 5.38), so no
    # ignore_changes is needed on the functions; the pin must keep that true.
    google = one(config()["terraform"][0], "required_providers")["google"]["version"]
    major, minor = (int(x) for x in re.match(r"~>\s*(\d+)\.(\d+)", google).groups())
    assert (major, minor) >= (5, 38), google


def test_cloud_sql_validations_follow_the_api():
    variables = config()["variable"]
    tier_rule = flat(variables["db_tier"]["validation"])
    assert "var.db_edition" in tier_rule and "db-perf-optimized-N-" in tier_rule
    pitr_rule = " ".join(flat(v["condition"]) for v in variables["db_pitr_retention_days"]["validation"])
    assert 'var.db_edition == "ENTERPRISE_PLUS" ? 35 : 7' in pitr_rule, pitr_rule
    retained_rule = " ".join(flat(v["condition"]) for v in variables["db_backup_retained_count"]["validation"])
    assert "var.db_backup_retained_count > var.db_pitr_retention_days" in retained_rule
    # The defaults pass their own rules.
    assert variable_default("db_edition") == "ENTERPRISE"
    assert re.fullmatch(r"db-(custom-[0-9]+-[0-9]+|f1-micro|g1-small)", variable_default("db_tier"))
    assert 1 <= variable_default("db_pitr_retention_days") <= 7
    assert variable_default("db_backup_retained_count") > variable_default("db_pitr_retention_days")
