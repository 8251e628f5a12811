# -----------------------------------------------------------------------------
# Project and naming
# -----------------------------------------------------------------------------

variable "project_id" {
  description = "ID of the Google Cloud project to deploy into (an empty project is fine: every API is enabled here)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid Google Cloud project ID (6-30 chars, lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region for the functions, the source bucket and Cloud SQL."
  type        = string
  default     = "southamerica-east1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like a Google Cloud region, e.g. southamerica-east1."
  }
}

variable "name_prefix" {
  description = "Prefix of every name this module invents (functions, service accounts, secrets, log metric). Topic and subscription names come verbatim from shared/topology.json and are NOT prefixed, because the Python publisher uses them as they are."
  type        = string
  default     = "ct-"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,9}$", var.name_prefix))
    error_message = "name_prefix must start with a lowercase letter and have at most 10 chars of [a-z0-9-]."
  }
}

variable "labels" {
  description = "Labels added to every resource that supports them (provider default_labels)."
  type        = map(string)
  default = {
    app = "control-tower"
  }

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values may only hold [a-z0-9_-] (max 63 chars)."
  }
}

# -----------------------------------------------------------------------------
# Functions
# -----------------------------------------------------------------------------

variable "runtime" {
  description = "Cloud Functions (gen2) Python runtime for every function."
  type        = string
  default     = "python311"

  validation {
    condition     = contains(["python311", "python312", "python313"], var.runtime)
    error_message = "runtime must be python311, python312 or python313."
  }
}

variable "log_level" {
  description = "LOG_LEVEL given to every function."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "edge_function_settings" {
  description = "Sizing of the HTTP (webhook edge) functions: memory (e.g. \"512Mi\"), cpu (e.g. \"1\"), timeout_seconds, min_instances, max_instances, concurrency (requests per instance; more than 1 needs cpu >= 1)."
  type = object({
    memory          = string
    cpu             = string
    timeout_seconds = number
    min_instances   = number
    max_instances   = number
    concurrency     = number
  })
  default = {
    memory          = "512Mi"
    cpu             = "1"
    timeout_seconds = 60
    min_instances   = 0
    max_instances   = 20
    concurrency     = 20
  }

  validation {
    condition = (
      var.edge_function_settings.timeout_seconds >= 1 && var.edge_function_settings.timeout_seconds <= 3600 &&
      var.edge_function_settings.min_instances >= 0 &&
      var.edge_function_settings.max_instances >= max(1, var.edge_function_settings.min_instances) &&
      var.edge_function_settings.concurrency >= 1 && var.edge_function_settings.concurrency <= 1000
    )
    error_message = "edge_function_settings: timeout 1..3600 s, 0 <= min_instances <= max_instances, max_instances >= 1, concurrency 1..1000."
  }
}

variable "writer_function_settings" {
  description = "Sizing of the Pub/Sub subscriber (database writer) functions. max_instances is only an upper cap: the effective value is the smaller of it and the connection budget (see output writer_max_instances). timeout_seconds is also the push subscription's ack deadline, so it may not exceed 600."
  type = object({
    memory          = string
    cpu             = string
    timeout_seconds = number
    min_instances   = number
    max_instances   = number
    concurrency     = number
  })
  default = {
    memory          = "512Mi"
    cpu             = "1"
    timeout_seconds = 120
    min_instances   = 0
    max_instances   = 100
    concurrency     = 4
  }

  validation {
    condition = (
      var.writer_function_settings.timeout_seconds >= 10 && var.writer_function_settings.timeout_seconds <= 600 &&
      var.writer_function_settings.min_instances >= 0 &&
      var.writer_function_settings.max_instances >= 1 &&
      var.writer_function_settings.concurrency >= 1
    )
    error_message = "writer_function_settings: timeout 10..600 s (Pub/Sub push ack deadline limit), min_instances >= 0, max_instances >= 1, concurrency >= 1."
  }
}

variable "function_overrides" {
  description = "Per-function overrides of the role settings above, keyed by the function name in shared/topology.json (e.g. { whatsapp = { min_instances = 1 } }). Any field left out keeps the role default; a writer's max_instances is still capped by the connection budget."
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    timeout_seconds = optional(number)
    min_instances   = optional(number)
    max_instances   = optional(number)
    concurrency     = optional(number)
  }))
  default = {}

  validation {
    condition = alltrue([
      for name, o in var.function_overrides :
      o.timeout_seconds == null ? true : (o.timeout_seconds >= 1 && o.timeout_seconds <= 3600)
    ])
    error_message = "function_overrides: timeout_seconds must be within 1..3600 (subscribers are further limited to 600)."
  }
}

variable "subscriber_ingress" {
  description = "Ingress of the Pub/Sub subscriber functions. ALLOW_INTERNAL_ONLY still receives Pub/Sub pushes from the same project (Cloud Run treats them as internal) and keeps the internet out; ALLOW_ALL is an escape hatch (invocation still needs the push service account's token)."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_ALL"], var.subscriber_ingress)
    error_message = "subscriber_ingress must be ALLOW_INTERNAL_ONLY or ALLOW_ALL."
  }
}

variable "health_check_functions" {
  description = "Functions (names from shared/topology.json) that get roles/pubsub.viewer on every topic, so their detailed health check can confirm the topics exist."
  type        = list(string)
  default     = ["health"]
}

# -----------------------------------------------------------------------------
# Pub/Sub
# -----------------------------------------------------------------------------

variable "topic_message_retention" {
  description = "message_retention_duration of every topic and dead-letter topic, so messages can be replayed (seek) and redriven well after a failure. Between 600s and 2678400s (31 days)."
  type        = string
  default     = "1209600s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.topic_message_retention)) && tonumber(trimsuffix(var.topic_message_retention, "s")) >= 600 && tonumber(trimsuffix(var.topic_message_retention, "s")) <= 2678400
    error_message = "topic_message_retention must be like \"1209600s\", between 600s and 2678400s."
  }
}

variable "subscription_message_retention" {
  description = "message_retention_duration of every push subscription and every dead-letter ops subscription: how long an unacknowledged message is kept (a database outage of up to this long loses nothing). Between 600s and 604800s (7 days)."
  type        = string
  default     = "604800s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.subscription_message_retention)) && tonumber(trimsuffix(var.subscription_message_retention, "s")) >= 600 && tonumber(trimsuffix(var.subscription_message_retention, "s")) <= 604800
    error_message = "subscription_message_retention must be like \"604800s\", between 600s and 604800s."
  }
}

variable "retry_minimum_backoff" {
  description = "Push subscriptions' retry_policy.minimum_backoff (exponential backoff lower bound), 0s..600s."
  type        = string
  default     = "10s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.retry_minimum_backoff)) && tonumber(trimsuffix(var.retry_minimum_backoff, "s")) <= 600
    error_message = "retry_minimum_backoff must be like \"10s\", at most 600s."
  }
}

variable "retry_maximum_backoff" {
  description = "Push subscriptions' retry_policy.maximum_backoff (exponential backoff upper bound), 0s..600s and not below retry_minimum_backoff."
  type        = string
  default     = "600s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.retry_maximum_backoff)) && tonumber(trimsuffix(var.retry_maximum_backoff, "s")) <= 600 && tonumber(trimsuffix(var.retry_maximum_backoff, "s")) >= tonumber(trimsuffix(var.retry_minimum_backoff, "s"))
    error_message = "retry_maximum_backoff must be like \"600s\", at most 600s and >= retry_minimum_backoff."
  }
}

variable "max_delivery_attempts" {
  description = "dead_letter_policy.max_delivery_attempts of every push subscription: after this many failed deliveries a message moves to its dead-letter topic (5..100)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number between 5 and 100 (Pub/Sub limits)."
  }
}

# -----------------------------------------------------------------------------
# Cloud SQL
# -----------------------------------------------------------------------------

variable "db_instance_name" {
  description = "Cloud SQL instance name. Note: a deleted instance's name cannot be reused for about a week."
  type        = string
  default     = "control-tower-pg"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,96}[a-z0-9]$", var.db_instance_name))
    error_message = "db_instance_name must start with a letter and hold only [a-z0-9-]."
  }
}

variable "db_tier" {
  description = "Cloud SQL machine tier, valid for db_edition with the SSD (PD_SSD) disk this module uses: ENTERPRISE takes db-custom-<vCPUs>-<MB> (e.g. db-custom-1-3840, db-custom-2-7680) or the shared-core db-f1-micro / db-g1-small; ENTERPRISE_PLUS takes only the N2 performance-optimized db-perf-optimized-N-<vCPUs> (e.g. db-perf-optimized-N-2)."
  type        = string
  default     = "db-custom-1-3840"

  # What Cloud SQL accepts per edition (machine series overview,
  # https://cloud.google.com/sql/docs/postgres/machine-series-overview): Enterprise
  # Plus offers N2 (db-perf-optimized-N-*, SSD) and C4A (Hyperdisk only);
  # Enterprise offers shared-core and dedicated-core (db-custom-*, SSD/HDD) and N4
  # (Hyperdisk only). Hyperdisk series are refused because disk_type is PD_SSD.
  validation {
    condition = (
      var.db_edition == "ENTERPRISE_PLUS"
      ? can(regex("^db-perf-optimized-N-[0-9]+$", var.db_tier))
      : can(regex("^(db-custom-[0-9]+-[0-9]+|db-f1-micro|db-g1-small)$", var.db_tier))
    )
    error_message = "db_tier does not fit db_edition: ENTERPRISE_PLUS needs db-perf-optimized-N-<vCPUs> (e.g. db-perf-optimized-N-2); ENTERPRISE needs db-custom-<vCPUs>-<MB> (e.g. db-custom-1-3840), db-f1-micro or db-g1-small."
  }
}

variable "db_edition" {
  description = "Cloud SQL edition: ENTERPRISE or ENTERPRISE_PLUS (PostgreSQL 16 defaults to ENTERPRISE_PLUS if unset, which rejects small tiers)."
  type        = string
  default     = "ENTERPRISE"

  validation {
    condition     = contains(["ENTERPRISE", "ENTERPRISE_PLUS"], var.db_edition)
    error_message = "db_edition must be ENTERPRISE or ENTERPRISE_PLUS."
  }
}

variable "db_availability_type" {
  description = "ZONAL (single zone) or REGIONAL (high availability with a standby in another zone)."
  type        = string
  default     = "ZONAL"

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.db_availability_type)
    error_message = "db_availability_type must be ZONAL or REGIONAL."
  }
}

variable "db_disk_size_gb" {
  description = "Initial SSD size in GB (auto-resize is on)."
  type        = number
  default     = 10

  validation {
    condition     = var.db_disk_size_gb >= 10
    error_message = "db_disk_size_gb must be at least 10."
  }
}

variable "db_name" {
  description = "Name of the application database (DB_NAME given to the writers)."
  type        = string
  default     = "control_tower"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must be a lowercase PostgreSQL identifier."
  }
}

variable "db_max_connections" {
  description = "PostgreSQL max_connections, set as a database flag so the connection budget is known, not guessed. Writer max instances are derived from it."
  type        = number
  default     = 100

  validation {
    condition     = var.db_max_connections >= 25 && var.db_max_connections <= 10000
    error_message = "db_max_connections must be between 25 and 10000."
  }
}

variable "db_reserved_connections" {
  description = "Connections kept out of the writers' budget: Cloud SQL's own superuser/maintenance connections, the ops CLI, migrations and manual psql sessions."
  type        = number
  default     = 10

  validation {
    condition     = var.db_reserved_connections >= 3
    error_message = "db_reserved_connections must be at least 3 (Cloud SQL reserves superuser connections)."
  }
}

variable "db_pool_size" {
  description = "Connections each writer instance may open (DB_POOL_SIZE). Should be >= the writer concurrency."
  type        = number
  default     = 4

  validation {
    condition     = var.db_pool_size >= 1 && var.db_pool_size <= 100
    error_message = "db_pool_size must be between 1 and 100."
  }
}

variable "db_ssl_mode" {
  description = "Cloud SQL ssl_mode. TRUSTED_CLIENT_CERTIFICATE_REQUIRED only accepts clients holding a certificate issued by the instance, i.e. the Cloud SQL connectors / Auth Proxy; ENCRYPTED_ONLY also accepts plain TLS clients."
  type        = string
  default     = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"

  validation {
    condition     = contains(["ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"], var.db_ssl_mode)
    error_message = "db_ssl_mode must be ENCRYPTED_ONLY or TRUSTED_CLIENT_CERTIFICATE_REQUIRED (unencrypted connections are never allowed)."
  }
}

variable "db_backup_start_time" {
  description = "Daily backup window start, HH:MM in UTC."
  type        = string
  default     = "05:00"

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.db_backup_start_time))
    error_message = "db_backup_start_time must be HH:MM (UTC)."
  }
}

variable "db_backup_retained_count" {
  description = "Number of automated daily backups kept (1..365), more than db_pitr_retention_days."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retained_count >= 1 && var.db_backup_retained_count <= 365 && floor(var.db_backup_retained_count) == var.db_backup_retained_count
    error_message = "db_backup_retained_count must be a whole number between 1 and 365."
  }

  # Cloud SQL refuses otherwise: "Invalid request: backup retention should be >
  # transaction log retention." (quoted in
  # https://github.com/terraform-google-modules/terraform-google-sql-db/pull/785,
  # whose fix keeps 8 backups for 7 days of logs).
  validation {
    condition     = var.db_backup_retained_count > var.db_pitr_retention_days
    error_message = "db_backup_retained_count must be greater than db_pitr_retention_days (Cloud SQL: backup retention should be > transaction log retention)."
  }
}

variable "db_pitr_retention_days" {
  description = "Days of transaction logs kept for point-in-time recovery: 1..7 on ENTERPRISE, 1..35 on ENTERPRISE_PLUS."
  type        = number
  default     = 7

  # Cloud SQL docs (https://cloud.google.com/sql/docs/mysql/backup-recovery/configure-pitr,
  # same ranges on the PostgreSQL PITR page): days of logs "from 1-35 for Cloud SQL
  # Enterprise Plus edition, or 1-7 for Cloud SQL Enterprise edition". Beyond that
  # the API answers "The number of transaction log retention days must be between
  # 1 and 7" (https://github.com/langfuse/langfuse-terraform-gcp/issues/8).
  validation {
    condition = (
      floor(var.db_pitr_retention_days) == var.db_pitr_retention_days &&
      var.db_pitr_retention_days >= 1 &&
      var.db_pitr_retention_days <= (var.db_edition == "ENTERPRISE_PLUS" ? 35 : 7)
    )
    error_message = "db_pitr_retention_days must be a whole number from 1 to 7 on ENTERPRISE, or from 1 to 35 on ENTERPRISE_PLUS."
  }
}

variable "db_maintenance_window" {
  description = "Cloud SQL maintenance window: day (1 = Monday .. 7 = Sunday) and hour (0..23, UTC)."
  type = object({
    day  = number
    hour = number
  })
  default = {
    day  = 7
    hour = 6
  }

  validation {
    condition     = var.db_maintenance_window.day >= 1 && var.db_maintenance_window.day <= 7 && var.db_maintenance_window.hour >= 0 && var.db_maintenance_window.hour <= 23
    error_message = "db_maintenance_window: day 1..7, hour 0..23."
  }
}

variable "grant_db_roles_with_gcloud" {
  description = "Run `gcloud sql users assign-roles` (local-exec, needs a recent gcloud on the machine running terraform) to give the writer's IAM database user the cloudsqlsuperuser role, so migrations can create the schema. Set false to run the command from output db_bootstrap_command yourself."
  type        = bool
  default     = true
}

# -----------------------------------------------------------------------------
# Tenants, sources and secrets
# -----------------------------------------------------------------------------

variable "source_catalog" {
  description = "Webhook sources a tenant can turn on, keyed CHANNEL/SOURCE exactly as `ctower tenants set-source` takes them; the channel is the edge function (name in shared/topology.json) whose URL the platform calls. For each source, its secrets: { kind = { flag = the set-source option that names it, readers = functions that may read it } }. Per tenant and enabled source one empty secret <name_prefix><tenant>-<channel>-<source>-<kind> is created."
  type = map(object({
    secrets = map(object({
      flag    = string
      readers = list(string)
    }))
  }))
  default = {
    "whatsapp/evolution" = {
      secrets = { token = { flag = "--secret", readers = ["whatsapp"] } }
    }
    "whatsapp/zapi" = {
      secrets = { token = { flag = "--secret", readers = ["whatsapp"] } }
    }
    "whatsapp/360dialog" = {
      secrets = { token = { flag = "--secret", readers = ["whatsapp"] } }
    }
    "whatsapp/gupshup" = {
      secrets = { token = { flag = "--secret", readers = ["whatsapp"] } }
    }
    "whatsapp/meta" = {
      secrets = {
        app-secret   = { flag = "--secret", readers = ["whatsapp"] }
        verify-token = { flag = "--verify-token-secret", readers = ["whatsapp"] }
      }
    }
    "leads/form" = {
      secrets = { token = { flag = "--secret", readers = ["leads"] } }
    }
    "leads/meta" = {
      secrets = {
        app-secret   = { flag = "--secret", readers = ["leads"] }
        verify-token = { flag = "--verify-token-secret", readers = ["leads"] }
        # Used by the subscriber that fetches the lead's fields from the Graph
        # API, never by the edge.
        page-token = { flag = "--page-token-secret", readers = ["leadgen_fetcher"] }
      }
    }
    "leads/typeform" = {
      secrets = { secret = { flag = "--secret", readers = ["leads"] } }
    }
    "leads/google_ads" = {
      secrets = { key = { flag = "--secret", readers = ["leads"] } }
    }
    # The events API of a tenant (`/<tenant>/events`): its bearer key. The tenant-less URL stays the
    # default tenant's, with the EVENTS_API_KEY this module writes.
    "events/api" = {
      secrets = { api-key = { flag = "--secret", readers = ["events"] } }
    }
  }

  validation {
    condition     = alltrue([for s in keys(var.source_catalog) : can(regex("^[a-z][a-z0-9_]*/[a-z0-9][a-z0-9_]{1,30}$", s))])
    error_message = "source_catalog keys must be CHANNEL/SOURCE, e.g. whatsapp/evolution."
  }

  validation {
    condition = alltrue(flatten([for s, c in var.source_catalog : [
      for k, v in c.secrets : can(regex("^[a-z0-9][a-z0-9-]{1,20}$", k)) && contains(["--secret", "--verify-token-secret", "--jwt-secret", "--page-token-secret"], v.flag)
    ]]))
    error_message = "source_catalog secret kinds must be 2-21 chars of [a-z0-9-] and flag one of --secret, --verify-token-secret, --jwt-secret, --page-token-secret."
  }
}

variable "tenants" {
  description = "Tenants and the sources each one uses, e.g. { acme = { sources = [\"whatsapp/evolution\", \"leads/typeform\"] } }. Keys are tenant ids as in webhook URLs and `ctower tenants`; every source must be a key of source_catalog."
  type = map(object({
    sources = list(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for t in keys(var.tenants) : can(regex("^[a-z0-9][a-z0-9_-]{1,40}$", t))])
    error_message = "Tenant ids must be 2-41 chars of [a-z0-9_-], starting with a letter or digit."
  }

  validation {
    condition     = alltrue(flatten([for t, c in var.tenants : [for s in c.sources : contains(keys(var.source_catalog), s)]]))
    error_message = "Every tenant source must be a key of source_catalog (CHANNEL/SOURCE)."
  }
}

variable "secret_replica_locations" {
  description = "Regions to pin Secret Manager replicas to (data residency). Empty = automatic replication."
  type        = list(string)
  default     = []
}

variable "console_session_secret_generation" {
  description = "Generation of the console's session key that Terraform writes (write-only, never stored in state). Bump it to write a new random key: every console session ends."
  type        = number
  default     = 1

  validation {
    condition     = var.console_session_secret_generation >= 1 && floor(var.console_session_secret_generation) == var.console_session_secret_generation
    error_message = "console_session_secret_generation must be a whole number >= 1."
  }
}

variable "events_api_key_generation" {
  description = "Generation of the events API key that Terraform creates (write-only, never stored in state). Bump it to have Terraform write a new random key; or add versions yourself with gcloud."
  type        = number
  default     = 1

  validation {
    condition     = var.events_api_key_generation >= 1 && floor(var.events_api_key_generation) == var.events_api_key_generation
    error_message = "events_api_key_generation must be a whole number >= 1."
  }
}

variable "operator_members" {
  description = "IAM members (e.g. \"user:ana@example.com\", \"group:ops@example.com\") who run the ops CLI: they may impersonate the writer service account (migrations, tenants, replay, trace over IAM database auth), pull from the dead-letter ops subscriptions and publish to the source topics (redrive)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.operator_members : can(regex("^(user|group|serviceAccount|domain):", m))])
    error_message = "operator_members entries must start with user:, group:, serviceAccount: or domain:."
  }
}

# -----------------------------------------------------------------------------
# Observability
# -----------------------------------------------------------------------------

variable "alert_emails" {
  description = "Email addresses that receive every alert (one notification channel each)."
  type        = list(string)

  validation {
    condition     = length(var.alert_emails) >= 1 && alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "alert_emails must hold at least one valid email address."
  }
}

variable "oldest_unacked_age_threshold_seconds" {
  description = "Alert when the oldest unacknowledged message of a push subscription is older than this many seconds (writers falling behind or failing)."
  type        = number
  default     = 900

  validation {
    condition     = var.oldest_unacked_age_threshold_seconds >= 60
    error_message = "oldest_unacked_age_threshold_seconds must be at least 60."
  }
}

variable "failed_events_per_hour_threshold" {
  description = "Alert when more than this many events are logged with event_status=failed within one hour."
  type        = number
  default     = 10

  validation {
    condition     = var.failed_events_per_hour_threshold >= 0
    error_message = "failed_events_per_hour_threshold must be >= 0."
  }
}

# --- Assistant and reply sender ------------------------------------------------

variable "isolated_subscribers" {
  description = "Pub/Sub subscriber functions (names in shared/topology.json) that run as their OWN service account and IAM database user instead of the shared writer identity, so only they can read their third-party credentials (the OpenAI key for assistant, the provider send credentials for reply_sender). Each gets Cloud SQL client/instanceUser on the one instance, logging, membership in the writer's database role (table privileges) and publisher on the topics its topology entry `publishes`."
  type        = list(string)
  default     = ["assistant", "reply_sender"]

  validation {
    condition     = length(var.isolated_subscribers) == length(distinct(var.isolated_subscribers))
    error_message = "isolated_subscribers must not repeat a function."
  }
}

variable "assistant_enabled" {
  description = "ASSISTANT_ENABLED of the assistant function. false turns the assistant off for every tenant (messages are acknowledged, nothing is sent), e.g. until the OpenAI key has a value."
  type        = bool
  default     = true
}

variable "openai_base_url" {
  description = "OPENAI_BASE_URL of the assistant function: an OpenAI-compatible endpoint. Empty = not set, the OpenAI client's default (https://api.openai.com/v1)."
  type        = string
  default     = ""

  validation {
    condition     = var.openai_base_url == "" || can(regex("^https://[^\\s]+$", var.openai_base_url))
    error_message = "openai_base_url must be empty or an https:// URL."
  }
}

variable "evolution_api_url" {
  description = "EVOLUTION_API_URL of reply_sender: base URL of your self-hosted Evolution API (no public default; a tenant's senders.evolution.base_url in its assistant settings wins). Empty = not set: Evolution sends fail unless the tenant's settings name a base_url."
  type        = string
  default     = ""

  validation {
    condition     = var.evolution_api_url == "" || can(regex("^https://[^\\s]+$", var.evolution_api_url))
    error_message = "evolution_api_url must be empty or an https:// URL (the API key travels in a header)."
  }
}

variable "zapi_api_url" {
  description = "ZAPI_API_URL of reply_sender: Z-API base URL (a tenant's senders.zapi.base_url wins)."
  type        = string
  default     = "https://api.z-api.io"

  validation {
    condition     = can(regex("^https://[^\\s]+$", var.zapi_api_url))
    error_message = "zapi_api_url must be an https:// URL."
  }
}

variable "meta_graph_base_url" {
  description = "META_GRAPH_BASE_URL of leadgen_fetcher (Lead Ads fetch) and reply_sender (WhatsApp Cloud API sends; a tenant's senders.meta.base_url wins)."
  type        = string
  default     = "https://graph.facebook.com"

  validation {
    condition     = can(regex("^https://[^\\s]+$", var.meta_graph_base_url))
    error_message = "meta_graph_base_url must be an https:// URL."
  }
}

variable "meta_graph_version" {
  description = "META_GRAPH_VERSION of leadgen_fetcher and reply_sender (a tenant's senders.meta.version wins for sends)."
  type        = string
  default     = "v23.0"

  validation {
    condition     = can(regex("^v[0-9]+\\.[0-9]+$", var.meta_graph_version))
    error_message = "meta_graph_version must look like v23.0."
  }
}

variable "dialog360_api_url" {
  description = "DIALOG360_API_URL of reply_sender: 360dialog's WhatsApp API base URL (a tenant's senders.dialog360.base_url wins)."
  type        = string
  default     = "https://waba-v2.360dialog.io"

  validation {
    condition     = can(regex("^https://[^\\s]+$", var.dialog360_api_url))
    error_message = "dialog360_api_url must be an https:// URL."
  }
}

variable "gupshup_api_url" {
  description = "GUPSHUP_API_URL of reply_sender: Gupshup's send API base URL (a tenant's senders.gupshup.base_url wins)."
  type        = string
  default     = "https://api.gupshup.io"

  validation {
    condition     = can(regex("^https://[^\\s]+$", var.gupshup_api_url))
    error_message = "gupshup_api_url must be an https:// URL."
  }
}

variable "reply_reconcile_seconds" {
  description = "REPLY_RECONCILE_SECONDS of reply_sender: how long a reply whose send outcome is unknown waits for the provider's status before it is taken as not sent and sent again (shared/outbox.py)."
  type        = number
  default     = 120

  validation {
    condition     = var.reply_reconcile_seconds >= 30 && var.reply_reconcile_seconds <= 3600
    error_message = "reply_reconcile_seconds must be between 30 and 3600."
  }
}

variable "sender_secret_ids" {
  description = "Secret ids of the provider send credentials that tenants' assistant settings name (shared/assistant/tenants/*/settings.json `senders`: evolution.api_key_secret, zapi.token_secret / client_token_secret, meta.access_token_secret, dialog360.api_key_secret, gupshup.api_key_secret), e.g. [\"ct-default-evolution-api-key\"]. Each is created empty (value added with output secret_set_commands) and readable only by the reply_sender identity."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.sender_secret_ids : can(regex("^[A-Za-z][A-Za-z0-9_-]{2,254}$", id))])
    error_message = "Each sender_secret_ids entry must be a valid secret id (letter first, then letters, digits, _ or -; 3 to 255 characters)."
  }
  validation {
    condition     = length(var.sender_secret_ids) == length(distinct(var.sender_secret_ids))
    error_message = "sender_secret_ids must not repeat an id."
  }
}
