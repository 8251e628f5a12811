# -----------------------------------------------------------------------------
# Secret Manager.
#
# Third-party credentials (webhook secrets, provider tokens, the OpenAI key) are
# created EMPTY: the operator adds values with the commands in output
# secret_set_commands, and Terraform never sees them. Each secret is readable
# only by the function(s) that need it (secret-level IAM).
#
# Per-tenant secrets are read by the code through the Secret Manager API at run
# time (cached per instance, re-read on failure), so a rotated value is picked up
# without a deploy; the events API key is mounted as the EVENTS_API_KEY env var
# with version "latest", resolved when each instance starts.
# -----------------------------------------------------------------------------

locals {
  # One secret per tenant, enabled source (CHANNEL/SOURCE) and secret kind of that source.
  tenant_secrets = merge(flatten([
    for tenant, cfg in var.tenants : [
      for source in distinct(cfg.sources) : {
        for kind, secret in var.source_catalog[source].secrets : "${tenant}/${source}/${kind}" => {
          tenant    = tenant
          source    = source
          channel   = split("/", source)[0]
          kind      = kind
          flag      = secret.flag
          readers   = secret.readers
          secret_id = "${var.name_prefix}${tenant}-${replace(source, "/", "-")}-${kind}"
        }
      }
    ]
  ])...)

  # Accessor grants, deduplicated per (secret, identity): several writer
  # functions share one service account. Keyed by local.function_identity
  # (iam.tf), a name from configuration, so every key is known at plan time.
  tenant_secret_access = {
    for pair in distinct(flatten([
      for key, s in local.tenant_secrets : [
        for reader in s.readers : {
          secret   = key
          identity = local.function_identity[reader]
        } if contains(keys(local.functions), reader)
      ]
    ])) : "${pair.secret}|${pair.identity}" => pair
  }

  # The tenants document (tenants, sources, secret NAMES; never values) that
  # `ctower tenants` publishes and the code reads (TENANTS_SECRET): the edge
  # functions of every channel and the writers (leadgen_fetcher looks up the page
  # token's name in it). Identities, not emails (see local.function_identity).
  tenants_config_readers = distinct(concat(
    [for source in keys(var.source_catalog) : local.function_identity[split("/", source)[0]] if contains(keys(local.functions), split("/", source)[0])],
    [for name in keys(local.subscriber_functions) : local.function_identity[name]],
  ))
}

resource "google_secret_manager_secret" "tenant" {
  for_each = local.tenant_secrets

  project   = var.project_id
  secret_id = each.value.secret_id

  labels = {
    tenant  = each.value.tenant
    channel = each.value.channel
    source  = split("/", each.value.source)[1]
    kind    = each.value.kind
  }

  replication {
    dynamic "auto" {
      for_each = length(var.secret_replica_locations) == 0 ? [1] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = length(var.secret_replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = var.secret_replica_locations
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_secret_manager_secret_iam_member" "tenant" {
  for_each = local.tenant_secret_access

  project   = var.project_id
  secret_id = google_secret_manager_secret.tenant[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.identity_member[each.value.identity]
}

# --- OpenAI API key: readable only by the assistant's identity ------------------
# The assistant reads it at run time by name (OPENAI_API_KEY_SECRET, functions.tf).

resource "google_secret_manager_secret" "openai_api_key" {
  project   = var.project_id
  secret_id = "${var.name_prefix}openai-api-key"

  labels = {
    kind = "openai-api-key"
  }

  replication {
    dynamic "auto" {
      for_each = length(var.secret_replica_locations) == 0 ? [1] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = length(var.secret_replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = var.secret_replica_locations
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_secret_manager_secret_iam_member" "openai_api_key" {
  for_each = { for name, fn in local.subscriber_functions : name => fn if name == "assistant" }

  project   = var.project_id
  secret_id = google_secret_manager_secret.openai_api_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.function_member[each.key]
}

# --- Provider send credentials of reply_sender -----------------------------------
# Named per tenant in its assistant settings (`senders` of
# shared/assistant/tenants/<tenant>/settings.json) and read at run time by name;
# created empty, readable only by the reply_sender identity.

resource "google_secret_manager_secret" "sender" {
  for_each = toset(var.sender_secret_ids)

  project   = var.project_id
  secret_id = each.value

  labels = {
    kind = "sender-credential"
  }

  replication {
    dynamic "auto" {
      for_each = length(var.secret_replica_locations) == 0 ? [1] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = length(var.secret_replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = var.secret_replica_locations
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition = !contains(concat(
        [for key, t in local.tenant_secrets : t.secret_id],
        ["${var.name_prefix}openai-api-key", "${var.name_prefix}events-api-key", "${var.name_prefix}tenants-config"],
      ), each.value)
      error_message = "sender_secret_ids: ${each.value} is already a secret this module creates for another purpose."
    }
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_secret_manager_secret_iam_member" "sender" {
  for_each = { for id in var.sender_secret_ids : id => id if contains(keys(local.subscriber_functions), "reply_sender") }

  project   = var.project_id
  secret_id = google_secret_manager_secret.sender[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.function_member["reply_sender"]
}

# --- Events API key (bearer key of the `events` function) --------------------------
# This key is ours, not a platform's, and the function mounts it as an env var: a
# function whose secret has no version fails to deploy. So Terraform writes the
# first version itself, from an ephemeral random value through a write-only
# argument: it never appears in the state or a plan. Read it with output
# events_api_key_read_command; rotate by adding a version with gcloud.

ephemeral "random_password" "events_api_key" {
  length  = 48
  special = false
}

resource "google_secret_manager_secret" "events_api_key" {
  project   = var.project_id
  secret_id = "${var.name_prefix}events-api-key"

  labels = {
    kind = "events-api-key"
  }

  replication {
    dynamic "auto" {
      for_each = length(var.secret_replica_locations) == 0 ? [1] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = length(var.secret_replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = var.secret_replica_locations
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_secret_manager_secret_version" "events_api_key" {
  secret                 = google_secret_manager_secret.events_api_key.id
  secret_data_wo         = ephemeral.random_password.events_api_key.result
  secret_data_wo_version = var.events_api_key_generation
  # A key rotated by hand must not be destroyed by a later apply.
  deletion_policy = "ABANDON"
}

resource "google_secret_manager_secret_iam_member" "events_api_key" {
  for_each = { for name, fn in local.http_functions : name => fn if name == "events" }

  project   = var.project_id
  secret_id = google_secret_manager_secret.events_api_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.function_member[each.key]
}

# --- Tenants document ----------------------------------------------------------------
# Published by `ctower tenants ...` (a new version per change); read by the code
# every TENANTS_TTL_SECONDS, so tenant and source changes need no deploy. Until
# the first publish the edge answers 503 (platforms retry).

resource "google_secret_manager_secret" "tenants_config" {
  project   = var.project_id
  secret_id = "${var.name_prefix}tenants-config"

  labels = {
    kind = "tenants-config"
  }

  replication {
    dynamic "auto" {
      for_each = length(var.secret_replica_locations) == 0 ? [1] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = length(var.secret_replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = var.secret_replica_locations
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_secret_manager_secret_iam_member" "tenants_config_reader" {
  for_each = toset(local.tenants_config_readers)

  project   = var.project_id
  secret_id = google_secret_manager_secret.tenants_config.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.identity_member[each.key]
}

# `ctower tenants` edits the tables and publishes in one go, run by operators
# impersonating the writer (IAM database auth), so the writer identity may add
# versions of this one secret. It holds secret names, never secret values.
resource "google_secret_manager_secret_iam_member" "tenants_config_publisher" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.tenants_config.secret_id
  role      = "roles/secretmanager.secretVersionAdder"
  member    = "serviceAccount:${google_service_account.writer.email}"
}
