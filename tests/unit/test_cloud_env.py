"""ops.cloudenv's key lists are terraform/functions.tf's locals, so the cloud env the tests use is Terraform's."""

from __future__ import annotations

import pytest

from ops.cloudenv import COMMON_ENV_KEYS, DB_ENV_KEYS, function_env
from tests.unit.test_terraform import flat, local

VALUES = {"GOOGLE_CLOUD_PROJECT": "p", "CT_ENV": "cloud", "LOG_LEVEL": "INFO", "SECRETS_BACKEND": "secretmanager",
          "TENANTS_SECRET": "ct-tenants-config", "CLOUD_SQL_INSTANCE": "p:r:i", "DB_NAME": "control_tower",
          "DB_USER": "ct-writer@p.iam", "DB_IAM_AUTH": "true", "DB_POOL_SIZE": "2", "OPENAI_BASE_URL": "",
          "ASSISTANT_ENABLED": "true", "OPENAI_API_KEY_SECRET": "openai-api-key", "EVENTS_API_KEY": "k",
          "DATABASE_URL": "postgresql://never/in-the-cloud"}


def test_the_key_lists_are_terraforms_locals() -> None:
    assert set(COMMON_ENV_KEYS) == set(local("common_env"))
    assert set(DB_ENV_KEYS) == set(local("db_env"))
    # The per-function keys come from the topology entries Terraform itself reads.
    assert "fn.env" in flat(local("function_extra_env")) and "fn.secret_names" in flat(local("function_extra_env"))
    assert "fn.mounted_secrets" in flat(local("function_secret_env"))


def test_each_function_gets_its_roles_keys_only() -> None:
    edge = function_env("leads", VALUES)
    assert set(edge) == set(COMMON_ENV_KEYS)  # no database for the edge, never DATABASE_URL
    writer = function_env("leads_writer", VALUES)
    assert set(writer) == set(COMMON_ENV_KEYS) | set(DB_ENV_KEYS)
    assistant = function_env("assistant", VALUES)
    assert "OPENAI_BASE_URL" not in assistant and assistant["ASSISTANT_ENABLED"] == "true"  # empty: left unset
    assert assistant["OPENAI_API_KEY_SECRET"] == "openai-api-key"  # topology: secret_names
    assert function_env("events", VALUES)["EVENTS_API_KEY"] == "k"
    with pytest.raises(KeyError, match="CLOUD_SQL_INSTANCE"):
        function_env("leads_writer", {k: v for k, v in VALUES.items() if k != "CLOUD_SQL_INSTANCE"})
