"""The environment each function gets in the cloud, as Terraform sets it, for running it anywhere else.

terraform/functions.tf builds every function's environment from `common_env` (all
functions), `db_env` (the functions that use the database: subscribers, and an HTTP function with a
`database_role`; each with its own DB_USER) and, per
function, the entries of shared/topology.json: `env` (Terraform settings), `secret_names`
(a secret's NAME, read at run time) and `mounted_secrets` (values Cloud Run mounts from
Secret Manager when an instance starts). COMMON_ENV_KEYS and DB_ENV_KEYS are those two
locals' keys (tests/unit/test_cloud_env.py holds them equal to the HCL); `function_env`
picks one function's environment out of a mapping of values, so a test, `make
cloud-local`, or a check of Terraform's planned env all start a function with exactly
the cloud's configuration.

What Terraform does NOT set, and the cloud never needs, is in STAND_IN_KEYS: where the
local stand-ins of the Google APIs are.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.topology import Function, Topology, load_topology

COMMON_ENV_KEYS = ("GOOGLE_CLOUD_PROJECT", "CT_ENV", "LOG_LEVEL", "SECRETS_BACKEND", "TENANTS_SECRET")
DB_ENV_KEYS = ("CLOUD_SQL_INSTANCE", "DB_NAME", "DB_USER", "DB_IAM_AUTH", "DB_POOL_SIZE")
# Never set by Terraform; unset in production. Locally: the stand-ins and the emulator.
STAND_IN_KEYS = ("GOOGLE_APPLICATION_CREDENTIALS", "SECRET_MANAGER_ENDPOINT", "CLOUD_SQL_ADMIN_ENDPOINT",
                 "CLOUD_LOGGING_ENDPOINT", "PUBSUB_EMULATOR_HOST")


def extra_keys(fn: Function) -> tuple[str, ...]:
    """The function's own keys from the topology: settings, secret names, mounted secret values."""
    return tuple(fn.env) + tuple(fn.secret_names) + tuple(fn.mounted_secrets)


def function_env(function: str, values: Mapping[str, str], topology: Topology | None = None) -> dict[str, str]:
    """`function`'s environment as Terraform sets it, each value taken from `values`.

    Common keys are required for every function, the database keys for every one that uses it;
    the function's own keys are optional and, as in Terraform, an empty value is left unset
    (the code's default applies). `values` may be one flat mapping for the whole pack or the
    function's own environment (Terraform's planned `environment_variables` for it).
    """
    topology = topology or load_topology()
    fn = topology.functions[function]
    required = COMMON_ENV_KEYS + (DB_ENV_KEYS if fn.uses_database else ())
    missing = [key for key in required if not values.get(key)]
    if missing:
        raise KeyError(f"{function}: the cloud environment needs {', '.join(missing)}")
    return {key: values[key] for key in required + extra_keys(fn) if values.get(key)}
