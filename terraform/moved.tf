# -----------------------------------------------------------------------------
# Where state written by earlier versions of this module moves to (`moved` blocks
# take no for_each, so there is one per address). A move whose source is not in
# the state does nothing. Checked offline: tools/tfplan --refactor-from <revision>
# applies the older configuration and plans this one on it: moves only.
# -----------------------------------------------------------------------------

# Seven alert policies became one google_monitoring_alert_policy.this over local.alerts.
moved {
  from = google_monitoring_alert_policy.function_5xx_rate
  to   = google_monitoring_alert_policy.this["function-5xx-rate"]
}
moved {
  from = google_monitoring_alert_policy.subscriber_failure_rate
  to   = google_monitoring_alert_policy.this["subscriber-failure-rate"]
}
moved {
  from = google_monitoring_alert_policy.dead_letter_messages
  to   = google_monitoring_alert_policy.this["dead-letter-messages"]
}
moved {
  from = google_monitoring_alert_policy.oldest_unacked_message_age
  to   = google_monitoring_alert_policy.this["oldest-unacked-message-age"]
}
moved {
  from = google_monitoring_alert_policy.cloudsql_cpu
  to   = google_monitoring_alert_policy.this["cloudsql-cpu"]
}
moved {
  from = google_monitoring_alert_policy.cloudsql_connections
  to   = google_monitoring_alert_policy.this["cloudsql-connections"]
}
moved {
  from = google_monitoring_alert_policy.failed_events
  to   = google_monitoring_alert_policy.this["failed-events"]
}

# The tenant sources' secrets and the module's own became google_secret_manager_secret.this,
# and their grants google_secret_manager_secret_iam_member.this over local.secret_grants.
moved {
  from = google_secret_manager_secret.tenant
  to   = google_secret_manager_secret.this
}
moved {
  from = google_secret_manager_secret.openai_api_key
  to   = google_secret_manager_secret.this["openai-api-key"]
}
moved {
  from = google_secret_manager_secret.events_api_key
  to   = google_secret_manager_secret.this["events-api-key"]
}
moved {
  from = google_secret_manager_secret.tenants_config
  to   = google_secret_manager_secret.this["tenants-config"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenant
  to   = google_secret_manager_secret_iam_member.this
}
moved {
  from = google_secret_manager_secret_iam_member.openai_api_key["assistant"]
  to   = google_secret_manager_secret_iam_member.this["openai-api-key|assistant"]
}
moved {
  from = google_secret_manager_secret_iam_member.events_api_key["events"]
  to   = google_secret_manager_secret_iam_member.this["events-api-key|events"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_publisher
  to   = google_secret_manager_secret_iam_member.this["tenants-config|publisher"]
}

# The tenants document's readers were keyed by identity: one move per identity the topology gives.
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["edge/whatsapp"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|edge/whatsapp"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["edge/leads"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|edge/leads"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["edge/events"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|edge/events"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["edge/health"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|edge/health"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["writer"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|writer"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["subscriber/leads_writer"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|subscriber/leads_writer"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["subscriber/conversations_writer"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|subscriber/conversations_writer"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["subscriber/pipeline_writer"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|subscriber/pipeline_writer"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["subscriber/obras_writer"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|subscriber/obras_writer"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["subscriber/leadgen_fetcher"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|subscriber/leadgen_fetcher"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["subscriber/assistant"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|subscriber/assistant"]
}
moved {
  from = google_secret_manager_secret_iam_member.tenants_config_reader["subscriber/reply_sender"]
  to   = google_secret_manager_secret_iam_member.this["tenants-config|subscriber/reply_sender"]
}

# The failed-events metric and its wait became one of several log-based metrics.
moved {
  from = google_logging_metric.failed_events
  to   = google_logging_metric.this["failed-events"]
}
moved {
  from = time_sleep.failed_events_metric
  to   = time_sleep.log_metrics
}

# The events API key's first version became one of the generated secrets' versions.
moved {
  from = google_secret_manager_secret_version.events_api_key
  to   = google_secret_manager_secret_version.generated["events-api-key"]
}
