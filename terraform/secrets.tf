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

  # Every secret this module makes but the sender credentials: each tenant source's
  # (key "tenant/channel/source/kind") and the module's own, named by purpose. Created
  # empty except the events API key (below); the code reads them by name at run time.
  module_secrets = {
    # OpenAI API key: read by the assistant by name (OPENAI_API_KEY_SECRET, functions.tf).
    "openai-api-key" = { secret_id = "${var.name_prefix}openai-api-key", labels = { kind = "openai-api-key" } }
    # Bearer key of the `events` function, mounted as EVENTS_API_KEY (first version below).
    "events-api-key" = { secret_id = "${var.name_prefix}events-api-key", labels = { kind = "events-api-key" } }
    # The tenants document `ctower tenants` publishes (names, never values); read every TENANTS_TTL_SECONDS.
    "tenants-config" = { secret_id = "${var.name_prefix}tenants-config", labels = { kind = "tenants-config" } }
    # The console's session key, mounted as CONSOLE_SESSION_SECRET (first version below).
    "console-session-secret" = { secret_id = "${var.name_prefix}console-session-secret", labels = { kind = "console-session-secret" } }
  }

  # Module secrets a function mounts: Terraform writes their first version (a function whose
  # mounted secret has no version cannot deploy). A new generation writes a new random value.
  generated_secrets = {
    "events-api-key"         = { length = 48, generation = var.events_api_key_generation }
    "console-session-secret" = { length = 64, generation = var.console_session_secret_generation }
  }
  secrets = merge(
    { for key, t in local.tenant_secrets : key => {
      secret_id = t.secret_id
      labels    = { tenant = t.tenant, channel = t.channel, source = split("/", t.source)[1], kind = t.kind }
    } },
    local.module_secrets,
  )

  # The functions that may read the providers' send credentials (one: reply_sender).
  sender_secret_readers = [for name, fn in local.functions : name if try(fn.reads_sender_secrets, false)]

  # Every grant on those secrets, keyed "<secret key>|<identity or function>" (known at plan time).
  accessor = "roles/secretmanager.secretAccessor"
  secret_grants = merge(
    { for key, pair in local.tenant_secret_access : key => {
      secret = pair.secret, role = local.accessor, member = local.identity_member[pair.identity]
    } },
    # What each function's topology entry says it reads (secret_names, mounted_secrets).
    merge([for name, fn in local.functions : {
      for secret in distinct(concat(values(try(fn.secret_names, {})), values(try(fn.mounted_secrets, {})))) :
      "${secret}|${name}" => { secret = secret, role = local.accessor, member = local.function_member[name] }
    }]...),
    { for identity in local.tenants_config_readers : "tenants-config|${identity}" => {
      secret = "tenants-config", role = local.accessor, member = local.identity_member[identity]
    } },
    # `ctower tenants` edits the tables and publishes in one go, run by operators impersonating
    # the writer (IAM database auth), so the writer identity may add versions of this one secret.
    { "tenants-config|publisher" = {
      secret = "tenants-config", role = "roles/secretmanager.secretVersionAdder",
      member = "serviceAccount:${google_service_account.writer.email}"
    } },
  )
}

resource "google_secret_manager_secret" "this" {
  for_each = local.secrets

  project   = var.project_id
  secret_id = each.value.secret_id
  labels    = each.value.labels

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

resource "google_secret_manager_secret_iam_member" "this" {
  for_each = local.secret_grants

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.secret].secret_id
  role      = each.value.role
  member    = each.value.member
}

# --- Provider send credentials of reply_sender -----------------------------------
# Named per tenant in its assistant settings (`senders` of
# shared/assistant/tenants/<tenant>/settings.json) and read at run time by name;
# created empty, readable only by the reply_sender identity. Their own resource: they
# are keyed by the ids in var.sender_secret_ids, and a `moved` block can bring only one
# whole resource (here: the tenant secrets) into google_secret_manager_secret.this.

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
      condition     = !contains([for key, secret in local.secrets : secret.secret_id], each.value)
      error_message = "sender_secret_ids: ${each.value} is already a secret this module creates for another purpose."
    }
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_secret_manager_secret_iam_member" "sender" {
  # Keyed by secret id alone: the reader is reply_sender (reads_sender_secrets in the topology).
  for_each = { for pair in setproduct(var.sender_secret_ids, local.sender_secret_readers) : pair[0] => pair[1] }

  project   = var.project_id
  secret_id = google_secret_manager_secret.sender[each.key].secret_id
  role      = local.accessor
  member    = local.function_member[each.value]
}

# --- Mounted secrets: Terraform writes their first version ---------------------------
# These keys are ours, not a platform's, and functions mount them as env vars (the events
# API key, the console's session key): a function whose secret has no version fails to
# deploy. So Terraform writes the first version itself, from an ephemeral random value
# through a write-only argument: it never appears in the state or a plan. Read the events
# key with output events_api_key_read_command; rotate either by adding a version with
# gcloud, or by bumping its *_generation variable (a new console key ends every session).

ephemeral "random_password" "generated" {
  for_each = local.generated_secrets

  length  = each.value.length
  special = false
}

resource "google_secret_manager_secret_version" "generated" {
  for_each = local.generated_secrets

  secret                 = google_secret_manager_secret.this[each.key].id
  secret_data_wo         = ephemeral.random_password.generated[each.key].result
  secret_data_wo_version = each.value.generation
  # A key rotated by hand must not be destroyed by a later apply.
  deletion_policy = "ABANDON"
}
