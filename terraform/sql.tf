# -----------------------------------------------------------------------------
# Cloud SQL for PostgreSQL 16, the source of truth.
#
# Access: connector-only. The instance has a public IPv4 address but ZERO
# authorized networks, so nothing can reach it directly; the only way in is the
# Cloud SQL connector / Auth Proxy, which authenticates with IAM
# (roles/cloudsql.client), tunnels over mTLS with an instance-issued client
# certificate (ssl_mode TRUSTED_CLIENT_CERTIFICATE_REQUIRED by default) and logs
# in with IAM database authentication (no passwords exist).
# Chosen over private IP because private IP would need a VPC, a private service
# connection and a Serverless VPC Access connector (always-on VMs) for the
# functions, and a bastion for the operators' ops CLI, for no gain in who can
# connect: identity, not network position, is the gate here.
# -----------------------------------------------------------------------------

locals {
  # Connection budget: every instance of every DB-using function (local.db_functions
  # = every "pubsub" function of the topology, so leadgen_fetcher, assistant and
  # reply_sender count as soon as they are in the JSON) may hold db_pool_size
  # connections. Max instances = floor((max_connections - reserved) / (db functions * pool)).
  db_connection_budget = var.db_max_connections - var.db_reserved_connections
  writer_max_instances = (
    length(local.db_functions) == 0 ? 0 :
    floor(local.db_connection_budget / (length(local.db_functions) * var.db_pool_size))
  )

  # Alert when connections exceed 80 % of the limit.
  db_connections_alert_threshold = floor(var.db_max_connections * 0.8)

  # IAM database user of a service account: its email without the domain suffix.
  writer_db_user = trimsuffix(google_service_account.writer.email, ".gserviceaccount.com")

  # DB_USER per database function: its own IAM database user when it has its own identity
  # (an isolated subscriber, an HTTP function with a database_role), else the writer's.
  function_db_user = merge(
    {
      for name, fn in local.subscriber_functions : name => (
        contains(var.isolated_subscribers, name) ? google_sql_user.subscriber[name].name : google_sql_user.writer.name
      )
    },
    { for name, fn in local.edge_db_functions : name => google_sql_user.edge[name].name },
  )
}

resource "google_sql_database_instance" "main" {
  #checkov:skip=CKV_GCP_60:Connector-only access: public IPv4 with zero authorized networks and TRUSTED_CLIENT_CERTIFICATE_REQUIRED, so only IAM-authorized Cloud SQL connectors can connect; private IP would need a VPC connector and a bastion (see header).
  #checkov:skip=CKV_GCP_108:log_hostname makes every connection do a reverse DNS lookup; connector clients all appear from Google's proxy, so the hostname carries no information.
  #checkov:skip=CKV_GCP_110:pgAudit is not needed: every application write is recorded in the events table with its correlation_id, and schema changes are logged by log_statement=ddl.
  #checkov:skip=CKV_GCP_79:PostgreSQL 16 is required by the design (the local stack and tests run an embedded PostgreSQL 16); upgrade deliberately, with the local stack, not by a scanner's default.
  #checkov:skip=CKV2_GCP_13:log_duration=on writes a log line for every statement (several per event), a Cloud Logging cost with no signal that Query Insights (enabled) does not already give.
  project          = var.project_id
  name             = var.db_instance_name
  region           = var.region
  database_version = "POSTGRES_16"

  # Terraform refuses to destroy it ...
  deletion_protection = true

  settings {
    tier              = var.db_tier
    edition           = var.db_edition
    availability_type = var.db_availability_type
    disk_type         = "PD_SSD"
    disk_size         = var.db_disk_size_gb
    disk_autoresize   = true

    # ... and so does the Cloud SQL API (console, gcloud).
    deletion_protection_enabled = true

    user_labels = var.labels

    ip_configuration {
      ipv4_enabled = true
      ssl_mode     = var.db_ssl_mode
      # No authorized_networks block: no address range may connect directly.
    }

    backup_configuration {
      enabled                        = true
      start_time                     = var.db_backup_start_time
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = var.db_pitr_retention_days

      backup_retention_settings {
        retained_backups = var.db_backup_retained_count
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = var.db_maintenance_window.day
      hour         = var.db_maintenance_window.hour
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = true
      record_client_address   = false
    }

    # IAM database authentication: the writers log in as their service account.
    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }

    # The connection limit is set, not guessed, so the writers' budget is exact.
    database_flags {
      name  = "max_connections"
      value = tostring(var.db_max_connections)
    }

    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }

    database_flags {
      name  = "log_connections"
      value = "on"
    }

    database_flags {
      name  = "log_disconnections"
      value = "on"
    }

    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }

    database_flags {
      name  = "log_min_messages"
      value = "error"
    }

    database_flags {
      name  = "log_temp_files"
      value = "0"
    }

    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }

    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }

    # Schema changes only: full statement logging would copy lead phones and
    # emails (personal data) into Cloud Logging.
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
  }

  lifecycle {
    # disk_autoresize grows the disk; without this, the next plan would try to
    # shrink it back to db_disk_size_gb, which Cloud SQL can only do by
    # replacing the instance (provider docs of disk_size / disk_autoresize).
    ignore_changes = [settings[0].disk_size]
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_sql_database" "app" {
  project  = var.project_id
  name     = var.db_name
  instance = google_sql_database_instance.main.name
  # Never drop the data with the resource.
  deletion_policy = "ABANDON"
}

# The writers' IAM database user (no password). DB_USER = this name.
resource "google_sql_user" "writer" {
  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = local.writer_db_user
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
  # It owns the schema objects; Postgres refuses to drop a role that owns objects.
  deletion_policy = "ABANDON"
}

# A new IAM database user has no privileges, and on PostgreSQL 15+ nobody but the
# database owner (cloudsqlsuperuser) may create tables in schema public. The
# writer identity applies the migrations in sql/, so it needs that role. The
# google provider cannot assign database roles, gcloud can.
resource "terraform_data" "writer_db_roles" {
  count = var.grant_db_roles_with_gcloud ? 1 : 0

  triggers_replace = [google_sql_user.writer.id]

  provisioner "local-exec" {
    command = local.db_bootstrap_command
  }
}

# Isolated subscribers (assistant, reply_sender) log in as their own IAM database
# user. They need the writer's table privileges (the writer owns the schema), so
# each is made a member of the writer's database role: NOT cloudsqlsuperuser.
resource "google_sql_user" "subscriber" {
  for_each = toset(var.isolated_subscribers)

  project         = var.project_id
  instance        = google_sql_database_instance.main.name
  name            = trimsuffix(google_service_account.subscriber[each.key].email, ".gserviceaccount.com")
  type            = "CLOUD_IAM_SERVICE_ACCOUNT"
  deletion_policy = "ABANDON"
}

resource "terraform_data" "subscriber_db_roles" {
  for_each = var.grant_db_roles_with_gcloud ? toset(var.isolated_subscribers) : toset([])

  triggers_replace = [google_sql_user.subscriber[each.key].id, google_sql_user.writer.id]

  provisioner "local-exec" {
    command = local.subscriber_db_role_commands[each.key]
  }

  depends_on = [terraform_data.writer_db_roles]
}

locals {
  subscriber_db_role_commands = {
    for name in var.isolated_subscribers : name => "gcloud sql users assign-roles ${trimsuffix(google_service_account.subscriber[name].email, ".gserviceaccount.com")} --instance=${var.db_instance_name} --project=${var.project_id} --type=CLOUD_IAM_SERVICE_ACCOUNT --database-roles=${local.writer_db_user}"
  }

  db_bootstrap_command = "gcloud sql users assign-roles ${local.writer_db_user} --instance=${var.db_instance_name} --project=${var.project_id} --type=CLOUD_IAM_SERVICE_ACCOUNT --database-roles=cloudsqlsuperuser"
}

# HTTP functions that read the database (the console) log in as their own IAM database
# user, made a member of their topology `database_role` only (created by the migrations:
# ct_console in sql/021_console_role.sql), never cloudsqlsuperuser.
resource "google_sql_user" "edge" {
  for_each = local.edge_db_functions

  project         = var.project_id
  instance        = google_sql_database_instance.main.name
  name            = trimsuffix(google_service_account.edge[each.key].email, ".gserviceaccount.com")
  type            = "CLOUD_IAM_SERVICE_ACCOUNT"
  deletion_policy = "ABANDON"
}

# The role is made by the migrations (`ctower db migrate`), which run after the first
# apply, so Terraform cannot grant it: the operator runs edge_db_role_commands after
# migrating (docs/deploy.md, step 4). Until then the console answers 503.
locals {
  edge_db_role_commands = {
    for name, fn in local.edge_db_functions : name => "gcloud sql users assign-roles ${trimsuffix(google_service_account.edge[name].email, ".gserviceaccount.com")} --instance=${var.db_instance_name} --project=${var.project_id} --type=CLOUD_IAM_SERVICE_ACCOUNT --database-roles=${fn.database_role}"
  }
}
