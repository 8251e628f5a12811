# -----------------------------------------------------------------------------
# Functions: every function in shared/topology.json, all from ONE source archive.
# -----------------------------------------------------------------------------

locals {
  repo_root = abspath("${path.module}/..")

  # Allow-list of what the runtime needs: main.py (re-exports every target),
  # requirements.txt, and the text files of functions/, shared/ and sql/. Tests,
  # terraform/, docs/, ops/, .local/, virtualenvs and caches never ship.
  source_files = sort(setunion(
    fileset(local.repo_root, "main.py"),
    fileset(local.repo_root, "requirements.txt"),
    fileset(local.repo_root, "{functions,shared,sql}/**/*.{py,pyi,typed,json,sql,txt,md,yaml,yml,toml,jinja,j2}"),
  ))

  # Role defaults: subscribers ("pubsub") are database writers, the rest are edge.
  role_settings = {
    for name, fn in local.functions : name => fn.trigger == "pubsub" ? var.writer_function_settings : var.edge_function_settings
  }

  # Role defaults merged with var.function_overrides. The max instances of a function
  # that uses the database are capped by the connection budget (local.writer_max_instances
  # in sql.tf): every instance may hold db_pool_size connections.
  function_settings = {
    for name, fn in local.functions : name => {
      memory          = coalesce(try(var.function_overrides[name].memory, null), local.role_settings[name].memory)
      cpu             = coalesce(try(var.function_overrides[name].cpu, null), local.role_settings[name].cpu)
      timeout_seconds = coalesce(try(var.function_overrides[name].timeout_seconds, null), local.role_settings[name].timeout_seconds)
      min_instances   = coalesce(try(var.function_overrides[name].min_instances, null), local.role_settings[name].min_instances)
      concurrency     = coalesce(try(var.function_overrides[name].concurrency, null), local.role_settings[name].concurrency)
      max_instances = (
        contains(keys(local.db_functions), name)
        ? min(coalesce(try(var.function_overrides[name].max_instances, null), local.role_settings[name].max_instances), local.writer_max_instances)
        : coalesce(try(var.function_overrides[name].max_instances, null), local.role_settings[name].max_instances)
      )
    }
  }

  # Runtime environment contract read by the Python code.
  common_env = {
    GOOGLE_CLOUD_PROJECT = var.project_id
    CT_ENV               = "cloud"
    LOG_LEVEL            = var.log_level
    # Secret values come from Secret Manager, read at run time and cached.
    SECRETS_BACKEND = "secretmanager"
    # The tenants document published by `ctower tenants`.
    TENANTS_SECRET = google_secret_manager_secret.this["tenants-config"].secret_id
  }

  db_env = {
    CLOUD_SQL_INSTANCE = google_sql_database_instance.main.connection_name
    DB_NAME            = google_sql_database.app.name
    DB_USER            = google_sql_user.writer.name
    DB_IAM_AUTH        = "true"
    DB_POOL_SIZE       = tostring(var.db_pool_size)
  }

  # Per-function settings, declared in shared/topology.json (empty values are left
  # unset so the code's own default applies):
  # - `env`: ENV => one of these settings (Terraform variables the code reads);
  # - `secret_names`: ENV => a module secret whose NAME the code reads at run time (the
  #   assistant's OpenAI key: created empty, and a function whose mounted secret has
  #   no version cannot deploy, so it is not mounted);
  # - `mounted_secrets` (below): ENV => a module secret Cloud Run mounts as the value.
  function_settings_values = {
    openai_base_url         = var.openai_base_url
    assistant_enabled       = tostring(var.assistant_enabled)
    meta_graph_base_url     = var.meta_graph_base_url
    meta_graph_version      = var.meta_graph_version
    evolution_api_url       = var.evolution_api_url
    zapi_api_url            = var.zapi_api_url
    dialog360_api_url       = var.dialog360_api_url
    gupshup_api_url         = var.gupshup_api_url
    reply_reconcile_seconds = tostring(var.reply_reconcile_seconds)
    # The webhook bases the console's settings page shows, in the cloudfunctions.net form: a
    # run.app URI would make the console's function depend on the function resource itself.
    console_whatsapp_url = "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.function_names["whatsapp"]}"
    console_leads_url    = "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.function_names["leads"]}"
  }
  function_extra_env = {
    for name, fn in local.functions : name => merge(
      { for key, setting in try(fn.env, {}) : key => local.function_settings_values[setting] },
      { for key, secret in try(fn.secret_names, {}) : key => google_secret_manager_secret.this[secret].secret_id },
    )
  }

  # Every subscriber gets the Cloud SQL environment, with its own DB_USER.
  function_env = {
    for name, fn in local.functions : name => merge(
      contains(keys(local.db_functions), name) ? merge(local.common_env, local.db_env, { DB_USER = local.function_db_user[name] }) : local.common_env,
      { for key, value in local.function_extra_env[name] : key => value if value != "" },
    )
  }

  # Secrets exposed as environment variables: { function => { ENV_NAME => secret id } }.
  # "latest" is resolved when an instance starts, so a rotated key reaches new
  # instances without a deploy.
  function_secret_env = {
    for name, fn in local.functions : name => {
      for key, secret in try(fn.mounted_secrets, {}) : key => google_secret_manager_secret.this[secret].secret_id
    }
  }
}

# --- Source archive ----------------------------------------------------------

data "archive_file" "source" {
  type             = "zip"
  output_path      = "${path.module}/.build/control-tower-source.zip"
  output_file_mode = "0644"

  dynamic "source" {
    for_each = local.source_files
    content {
      content  = file("${local.repo_root}/${source.value}")
      filename = source.value
    }
  }
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:The bucket only holds build inputs (zips of this repository's code, no user data); Cloud Audit Logs already record admin access, and a second log bucket would need its own log bucket.
  project  = var.project_id
  name     = "${var.project_id}-${var.name_prefix}function-source"
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Keep a few previous archives for rollback, not all of them forever.
  lifecycle_rule {
    condition {
      num_newer_versions = 5
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 90
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_storage_bucket_object" "source" {
  # Content-addressed name: a code change is a new object, so every function is
  # rebuilt; an unchanged tree changes nothing.
  name   = "source/${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path

  lifecycle {
    precondition {
      condition     = contains(local.source_files, "main.py") && contains(local.source_files, "requirements.txt")
      error_message = "The source archive needs main.py and requirements.txt at the repository root."
    }
  }
}

# --- Functions -----------------------------------------------------------------

resource "google_cloudfunctions2_function" "fn" {
  #checkov:skip=CKV_GCP_124:ALLOW_ALL only for the HTTP (webhook) functions, which the platforms call from the internet and which verify every request's source in code; subscribers get ALLOW_INTERNAL_ONLY (var.subscriber_ingress).
  for_each = local.functions

  project     = var.project_id
  location    = var.region
  name        = local.function_names[each.key]
  description = "Control Tower ${each.key} (${each.value.trigger == "pubsub" ? "Pub/Sub push subscriber" : "HTTP edge"})"

  build_config {
    runtime     = var.runtime
    entry_point = each.value.entry_point
    # Dedicated build identity: never the default compute service account.
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = local.function_settings[each.key].memory
    available_cpu                    = local.function_settings[each.key].cpu
    timeout_seconds                  = local.function_settings[each.key].timeout_seconds
    min_instance_count               = local.function_settings[each.key].min_instances
    max_instance_count               = local.function_settings[each.key].max_instances
    max_instance_request_concurrency = local.function_settings[each.key].concurrency
    all_traffic_on_latest_revision   = true

    # Ingress:
    # - HTTP functions: ALLOW_ALL. WhatsApp providers, Meta, Typeform, Google Ads
    #   and back-office callers come from the internet and cannot sign Google
    #   tokens; they are protected by the per-source checks in the code.
    # - Subscribers: ALLOW_INTERNAL_ONLY. Cloud Run counts Pub/Sub push from the
    #   same project (to the run.app URL used in push_endpoint) as internal, so
    #   pushes still arrive while the internet cannot reach the writers at all.
    #   On top of that only the push service account holds run.invoker (iam.tf).
    ingress_settings = each.value.trigger == "pubsub" ? var.subscriber_ingress : "ALLOW_ALL"

    # Own identity per role; never the default compute service account.
    service_account_email = local.function_service_account_email[each.key]

    environment_variables = local.function_env[each.key]

    dynamic "secret_environment_variables" {
      for_each = local.function_secret_env[each.key]
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  labels = {
    function = replace(each.key, "_", "-")
    role     = each.value.trigger == "pubsub" ? "writer" : "edge"
  }

  lifecycle {
    precondition {
      condition     = each.value.trigger != "pubsub" || local.writer_max_instances >= 1
      error_message = "Connection budget too small: (db_max_connections - db_reserved_connections) / (number of writer functions * db_pool_size) is below 1. Raise db_max_connections or lower db_pool_size."
    }
    precondition {
      condition     = each.value.trigger != "pubsub" || local.function_settings[each.key].concurrency <= var.db_pool_size
      error_message = "A writer's concurrency must not exceed db_pool_size, or requests would queue for a connection."
    }
    precondition {
      condition     = each.value.trigger != "pubsub" || local.function_settings[each.key].timeout_seconds <= 600
      error_message = "A subscriber's timeout_seconds must be <= 600: it is also the push subscription's ack deadline."
    }
    precondition {
      condition     = contains(["http", "pubsub"], each.value.trigger)
      error_message = "shared/topology.json: trigger must be \"http\" or \"pubsub\"."
    }
    # A function that waits inside a request says how long at least (topology `min_timeout_seconds`:
    # reply_sender paces sends per number for up to 30 s, then sends for up to 15 s).
    precondition {
      condition     = local.function_settings[each.key].timeout_seconds >= try(each.value.min_timeout_seconds, 0)
      error_message = "${each.key}: timeout_seconds must be at least ${try(each.value.min_timeout_seconds, 0)} (shared/topology.json min_timeout_seconds): raise function_overrides or writer_function_settings."
    }
  }

  depends_on = [
    time_sleep.api_propagation,
    google_project_iam_member.build,
    google_secret_manager_secret_iam_member.this,
    google_secret_manager_secret_version.generated,
    time_sleep.iam_propagation,
  ]
}
