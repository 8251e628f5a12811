locals {
  function_uris = { for name, fn in google_cloudfunctions2_function.fn : name => fn.service_config[0].uri }

  all_secret_ids = concat(
    [for key in sort(keys(local.tenant_secrets)) : google_secret_manager_secret.this[key].secret_id],
    [google_secret_manager_secret.this["openai-api-key"].secret_id],
    [for id in sort(keys(google_secret_manager_secret.sender)) : google_secret_manager_secret.sender[id].secret_id],
  )
}

output "function_urls" {
  description = "URL of every deployed function, keyed by its name in shared/topology.json."
  value       = local.function_uris
}

output "webhook_url_patterns" {
  description = "URL shape of each HTTP function: whatsapp <uri>/{tenant}/{provider}, leads <uri>/{tenant}/{source}, events and health <uri>."
  value = {
    for name, fn in local.http_functions : name => (
      name == "whatsapp" ? "${local.function_uris[name]}/{tenant}/{provider}" :
      name == "leads" ? "${local.function_uris[name]}/{tenant}/{source}" :
      local.function_uris[name]
    )
  }
}

output "webhook_urls" {
  description = "URL to configure on each platform, per tenant and source: { tenant = { \"channel/source\" = url } }, i.e. <channel function uri>/<tenant>/<source>."
  value = {
    for tenant, cfg in var.tenants : tenant => {
      for source in distinct(cfg.sources) : source => "${local.function_uris[split("/", source)[0]]}/${tenant}/${split("/", source)[1]}"
    }
  }
}

output "tenant_secret_ids" {
  description = "The empty secret created per tenant, source and kind: { tenant = { \"channel/source\" = { kind = secret id } } }."
  value = {
    for tenant, cfg in var.tenants : tenant => {
      for source in distinct(cfg.sources) : source => {
        for key, s in local.tenant_secrets : s.kind => s.secret_id if s.tenant == tenant && s.source == source
      }
    }
  }
}

output "tenant_setup_commands" {
  description = "`ctower tenants` commands that register each tenant and source with the names of the secrets created here (add --id <platform id> to set-source for sources that check an instance/app/page id)."
  value = {
    for tenant, cfg in var.tenants : tenant => concat(
      ["ctower tenants add ${tenant} --name '${tenant}' --to secret:${google_secret_manager_secret.this["tenants-config"].secret_id}"],
      [
        for source in distinct(cfg.sources) : join(" ", concat(
          ["ctower tenants set-source ${tenant} ${source}"],
          [for key, s in local.tenant_secrets : "${s.flag} ${s.secret_id}" if s.tenant == tenant && s.source == source],
          ["--to secret:${google_secret_manager_secret.this["tenants-config"].secret_id}"],
        ))
      ],
    )
  }
}

output "events_url" {
  description = "URL of the events function (back-office systems; needs the bearer API key)."
  value       = try(local.function_uris["events"], null)
}

output "health_url" {
  description = "URL of the health function."
  value       = try(local.function_uris["health"], null)
}

output "topics" {
  description = "Topic name per event type."
  value       = { for event_type, topic in google_pubsub_topic.event : event_type => topic.name }
}

output "dead_letter_topics" {
  description = "Dead-letter topic name per event type."
  value       = { for event_type, topic in google_pubsub_topic.dead_letter : event_type => topic.name }
}

output "dead_letter_subscriptions" {
  description = "Operators' pull subscription on each dead-letter topic, per event type."
  value       = { for event_type, sub in google_pubsub_subscription.dead_letter_ops : event_type => sub.name }
}

output "push_subscriptions" {
  description = "Push subscription name => subscriber function name."
  value       = { for name, sub in local.push_subscriptions : name => sub.function }
}

output "db_connection_name" {
  description = "Cloud SQL instance connection name (CLOUD_SQL_INSTANCE), project:region:instance."
  value       = google_sql_database_instance.main.connection_name
}

output "db_name" {
  description = "Application database name (DB_NAME)."
  value       = google_sql_database.app.name
}

output "db_user" {
  description = "IAM database user of the writers and the ops CLI (DB_USER): the writer service account email without .gserviceaccount.com. Isolated subscribers log in as their own user (output subscriber_db_role_commands)."
  value       = google_sql_user.writer.name
}

output "writer_max_instances" {
  description = "Max instances of each Pub/Sub subscriber (every one uses Cloud SQL), derived as floor((db_max_connections - db_reserved_connections) / (subscriber functions in shared/topology.json * db_pool_size))."
  value       = local.writer_max_instances
}

output "db_bootstrap_command" {
  description = "Gives the writers' IAM database user the cloudsqlsuperuser role so migrations can create the schema (run automatically when grant_db_roles_with_gcloud is true)."
  value       = local.db_bootstrap_command
}

output "service_accounts" {
  description = "Service account emails per role: edge functions, writer (shared by the other subscribers), isolated subscribers (assistant, reply_sender), push, build."
  value = {
    edge        = { for name, sa in google_service_account.edge : name => sa.email }
    writer      = google_service_account.writer.email
    subscribers = { for name, sa in google_service_account.subscriber : name => sa.email }
    push        = google_service_account.push.email
    build       = google_service_account.build.email
  }
}

output "subscriber_db_role_commands" {
  description = "Per isolated subscriber: makes its IAM database user a member of the writer's database role, so it has the writer's table privileges (run automatically when grant_db_roles_with_gcloud is true, after db_bootstrap_command)."
  value       = local.subscriber_db_role_commands
}

output "secret_set_commands" {
  description = "Command that adds the value of each secret created empty (the value is read from stdin, never from the command line): secret id => command."
  value = {
    for id in local.all_secret_ids : id => "printf '%s' \"$SECRET_VALUE\" | gcloud secrets versions add ${id} --project=${var.project_id} --data-file=-"
  }
}

output "events_api_key_read_command" {
  description = "Prints the events API key that Terraform generated (give it to the back-office systems as their bearer token)."
  value       = "gcloud secrets versions access latest --secret=${google_secret_manager_secret.this["events-api-key"].secret_id} --project=${var.project_id}"
}

output "events_api_key_rotate_command" {
  description = "Adds a new events API key version (new instances pick it up)."
  value       = "openssl rand -hex 32 | tr -d '\\n' | gcloud secrets versions add ${google_secret_manager_secret.this["events-api-key"].secret_id} --project=${var.project_id} --data-file=-"
}

output "tenants_config_secret" {
  description = "Secret that holds the tenants document (TENANTS_SECRET); `ctower tenants` publishes new versions of it."
  value       = google_secret_manager_secret.this["tenants-config"].secret_id
}

output "source_bucket" {
  description = "Bucket holding the function source archives."
  value       = google_storage_bucket.source.name
}

output "dashboard_url" {
  description = "Cloud Monitoring dashboard."
  value       = "https://console.cloud.google.com/monitoring/dashboards/builder/${element(split("/", google_monitoring_dashboard.main.id), length(split("/", google_monitoring_dashboard.main.id)) - 1)}?project=${var.project_id}"
}

output "console_url" {
  description = "The sellers' console (sign in with a user made by `ctower users add`; see the README)."
  value       = try(local.function_uris["console"], null)
}

output "edge_db_role_commands" {
  description = "Per HTTP function with a database role (the console): the command that makes its IAM database user a member of that role. Run each after `ctower db migrate`, which creates the role."
  value       = local.edge_db_role_commands
}
