"""The environment each function gets in the cloud, as Terraform sets it, for running it anywhere else.

terraform/functions.tf builds every function's environment from three locals: `common_env`
(all functions), `db_env` (Pub/Sub subscribers only; each with its own DB_USER) and
`function_extra_env` (a few functions), plus `function_secret_env` (values Cloud Run mounts
from Secret Manager when an instance starts). The key lists below are those locals' keys
(tests/unit/test_cloud_env.py holds them equal); `function_env` picks one function's
environment out of a mapping of values, so a test, `make cloud-local`, or a check of
Terraform's planned env all start a function with exactly the cloud's configuration.

What Terraform does NOT set, and the cloud never needs, is in STAND_IN_KEYS: where the
local stand-ins of the Google APIs are.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.topology import Topology, load_topology

COMMON_ENV_KEYS = ("GOOGLE_CLOUD_PROJECT", "CT_ENV", "LOG_LEVEL", "SECRETS_BACKEND", "TENANTS_SECRET")
DB_ENV_KEYS = ("CLOUD_SQL_INSTANCE", "DB_NAME", "DB_USER", "DB_IAM_AUTH", "DB_POOL_SIZE")
FUNCTION_EXTRA_ENV_KEYS: dict[str, tuple[str, ...]] = {
    "assistant": ("OPENAI_API_KEY_SECRET", "OPENAI_BASE_URL", "ASSISTANT_ENABLED"),
    "leadgen_fetcher": ("META_GRAPH_BASE_URL", "META_GRAPH_VERSION"),
    "reply_sender": ("EVOLUTION_API_URL", "ZAPI_API_URL", "META_GRAPH_BASE_URL", "META_GRAPH_VERSION"),
}
# Mounted from Secret Manager by Cloud Run (secret_environment_variables, version "latest").
FUNCTION_SECRET_ENV_KEYS: dict[str, tuple[str, ...]] = {"events": ("EVENTS_API_KEY",)}
# Never set by Terraform; unset in production. Locally: the stand-ins and the emulator.
STAND_IN_KEYS = ("GOOGLE_APPLICATION_CREDENTIALS", "SECRET_MANAGER_ENDPOINT", "CLOUD_SQL_ADMIN_ENDPOINT",
                 "CLOUD_LOGGING_ENDPOINT", "PUBSUB_EMULATOR_HOST")


def function_env(function: str, values: Mapping[str, str], topology: Topology | None = None) -> dict[str, str]:
    """`function`'s environment as Terraform sets it, each value taken from `values`.

    Common keys are required for every function, the database keys for every subscriber;
    the per-function extras are optional and, as in Terraform, an empty value is left unset
    (the code's default applies). `values` may be one flat mapping for the whole pack or the
    function's own environment (Terraform's planned `environment_variables` for it).
    """
    topology = topology or load_topology()
    fn = topology.functions[function]
    required = COMMON_ENV_KEYS + (DB_ENV_KEYS if fn.trigger == "pubsub" else ())
    missing = [key for key in required if not values.get(key)]
    if missing:
        raise KeyError(f"{function}: the cloud environment needs {', '.join(missing)}")
    optional = FUNCTION_EXTRA_ENV_KEYS.get(function, ()) + FUNCTION_SECRET_ENV_KEYS.get(function, ())
    return {key: values[key] for key in required + optional if values.get(key)}
