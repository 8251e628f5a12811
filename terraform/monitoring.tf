# -----------------------------------------------------------------------------
# Observability: a log-based metric of failed events, one alert policy per
# condition (each carries user_labels.alert_key, listed in local.alerts), an
# email notification channel per address, and a dashboard.
# -----------------------------------------------------------------------------

locals {
  quoted_edge_services       = join(", ", [for name in sort(keys(local.http_functions)) : "\"${local.function_names[name]}\""])
  quoted_subscriber_services = join(", ", [for name in sort(keys(local.subscriber_functions)) : "\"${local.function_names[name]}\""])
  quoted_push_subscriptions  = join(", ", [for name in sort(keys(local.push_subscriptions)) : "\"${name}\""])
  quoted_dead_letter_subs    = join(", ", [for et in sort(keys(local.dead_letter_subscriptions)) : "\"${local.dead_letter_subscriptions[et]}\""])
  quoted_topics              = join(", ", [for et in sort(keys(local.topics)) : "\"${local.topics[et]}\""])

  cloudsql_database_id = "${var.project_id}:${var.db_instance_name}"

  run_requests_edge        = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND resource.label.service_name = one_of(${local.quoted_edge_services})"
  push_requests            = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/push_request_count\" AND resource.label.subscription_id = one_of(${local.quoted_push_subscriptions})"
  failed_events_metric     = "logging.googleapis.com/user/${google_logging_metric.failed_events.name}"
  notification_channel_ids = [for ch in google_monitoring_notification_channel.email : ch.id]
}

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.alert_emails)

  project      = var.project_id
  display_name = "Control Tower alerts: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }

  depends_on = [time_sleep.api_propagation]
}

# The Python writer logs one structured line per failed event:
#   {"severity": "ERROR", "event_status": "failed", "event_type": "...", ...}
# The ledger logs "failed" on an event's first failed attempt only ("failed_again" after),
# so the metric counts failed events, not retries.
resource "google_logging_metric" "failed_events" {
  project     = var.project_id
  name        = "${var.name_prefix}failed-events"
  description = "Events a Control Tower writer could not apply (structured log field event_status = failed)."
  filter      = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^${var.name_prefix}\" AND jsonPayload.event_status=\"failed\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Control Tower failed events"

    labels {
      key         = "event_type"
      value_type  = "STRING"
      description = "Event type of the failed envelope."
    }
  }

  label_extractors = {
    event_type = "EXTRACT(jsonPayload.event_type)"
  }

  depends_on = [time_sleep.api_propagation]
}

# A new log-based metric is not visible to Cloud Monitoring at once: an alert
# policy on it created in the same apply fails with "Cannot find metric(s) that
# match type = logging.googleapis.com/user/... If a metric was created recently,
# it could take up to 10 minutes to become available" and the provider does not
# retry it (https://github.com/hashicorp/terraform-provider-google/issues/11102).
# The failed-events alert waits those 10 minutes after the metric is created;
# nothing else waits for this alert, and Cloud SQL and the function builds take
# longer, so the first apply is not made longer by it.
resource "time_sleep" "failed_events_metric" {
  create_duration = "600s"

  triggers = {
    metric = google_logging_metric.failed_events.id
  }
}

# One alert policy per condition, all of one shape: local.alerts says what differs.
locals {
  alerts = {
    "function-5xx-rate" = {
      display_name       = "Control Tower: function 5xx error rate > 5% over 5 min"
      severity           = "ERROR"
      condition_name     = "5xx responses / all responses > 5% (5 min) per HTTP function"
      filter             = "${local.run_requests_edge} AND metric.label.response_code_class = \"5xx\""
      denominator_filter = local.run_requests_edge
      threshold_value    = 0.05
      duration           = "0s"
      alignment_period   = "300s"
      per_series_aligner = "ALIGN_DELTA"
      reducer            = "REDUCE_SUM"
      group_by_fields    = ["resource.label.service_name"]
      documentation      = "A webhook function answers 5xx to more than 5% of requests. 503 means Pub/Sub publishing failed (the platform will retry); check the function's logs by correlation_id."
    }
    "subscriber-failure-rate" = {
      display_name       = "Control Tower: subscriber failure rate > 10% over 15 min"
      severity           = "ERROR"
      condition_name     = "non-ack push responses / all push requests > 10% (15 min) per subscription"
      filter             = "${local.push_requests} AND NOT metric.label.response_class = \"ack\""
      denominator_filter = local.push_requests
      threshold_value    = 0.1
      duration           = "0s"
      alignment_period   = "900s"
      per_series_aligner = "ALIGN_DELTA"
      reducer            = "REDUCE_SUM"
      group_by_fields    = ["resource.label.subscription_id"]
      documentation      = "A writer fails (5xx, timeout, unreachable) on more than 10% of pushes. Pub/Sub retries with backoff and dead-letters after max_delivery_attempts; check the writer logs and Cloud SQL."
    }
    "dead-letter-messages" = {
      display_name       = "Control Tower: message in a dead-letter subscription"
      severity           = "CRITICAL"
      condition_name     = "num_undelivered_messages > 0 on a dead-letter ops subscription"
      filter             = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = one_of(${local.quoted_dead_letter_subs})"
      threshold_value    = 0
      duration           = "0s"
      alignment_period   = "60s"
      per_series_aligner = "ALIGN_MAX"
      reducer            = "REDUCE_MAX"
      group_by_fields    = ["resource.label.subscription_id"]
      documentation      = "An envelope exhausted its delivery attempts and sits in a dead-letter subscription. Inspect it with the ops CLI, fix the cause, then redrive it. Nothing is lost while it is there (retention: subscription_message_retention)."
    }
    "oldest-unacked-message-age" = {
      display_name       = "Control Tower: oldest unacked message older than ${var.oldest_unacked_age_threshold_seconds}s"
      severity           = "WARNING"
      condition_name     = "oldest_unacked_message_age > threshold on a push subscription"
      filter             = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.label.subscription_id = one_of(${local.quoted_push_subscriptions})"
      threshold_value    = var.oldest_unacked_age_threshold_seconds
      duration           = "60s"
      alignment_period   = "60s"
      per_series_aligner = "ALIGN_MAX"
      reducer            = "REDUCE_MAX"
      group_by_fields    = ["resource.label.subscription_id"]
      documentation      = "Writers are falling behind or failing (for example Cloud SQL is down). Envelopes wait safely in Pub/Sub; check the writers and the database."
    }
    "cloudsql-cpu" = {
      display_name       = "Control Tower: Cloud SQL CPU > 80% for 10 min"
      severity           = "WARNING"
      condition_name     = "cpu/utilization > 0.8 for 10 min"
      filter             = "resource.type = \"cloudsql_database\" AND metric.type = \"cloudsql.googleapis.com/database/cpu/utilization\" AND resource.label.database_id = \"${local.cloudsql_database_id}\""
      threshold_value    = 0.8
      duration           = "600s"
      alignment_period   = "60s"
      per_series_aligner = "ALIGN_MEAN"
      documentation      = "Cloud SQL CPU has been above 80% for 10 minutes. Look at Query Insights; consider a larger db_tier."
    }
    "cloudsql-connections" = {
      display_name       = "Control Tower: Cloud SQL connections > 80% of the limit"
      severity           = "WARNING"
      condition_name     = "num_backends > 80% of max_connections (${var.db_max_connections})"
      filter             = "resource.type = \"cloudsql_database\" AND metric.type = \"cloudsql.googleapis.com/database/postgresql/num_backends\" AND resource.label.database_id = \"${local.cloudsql_database_id}\""
      threshold_value    = local.db_connections_alert_threshold
      duration           = "300s"
      alignment_period   = "60s"
      per_series_aligner = "ALIGN_MEAN"
      reducer            = "REDUCE_SUM"
      group_by_fields    = ["resource.label.database_id"]
      documentation      = "Connections exceed 80% of max_connections. Writer max instances are derived from db_max_connections, db_reserved_connections and db_pool_size; look for leaked connections or ops sessions."
    }
    "failed-events" = {
      display_name       = "Control Tower: more than ${var.failed_events_per_hour_threshold} failed events in an hour"
      severity           = "ERROR"
      condition_name     = "failed events (log metric) > ${var.failed_events_per_hour_threshold} per hour"
      filter             = "resource.type = \"cloud_run_revision\" AND metric.type = \"${local.failed_events_metric}\""
      threshold_value    = var.failed_events_per_hour_threshold
      duration           = "0s"
      alignment_period   = "3600s"
      per_series_aligner = "ALIGN_DELTA"
      reducer            = "REDUCE_SUM"
      documentation      = "Writers recorded many failed events in the last hour. List them with the ops CLI (failed events by time) and replay once the cause is fixed."
    }
  }
}

resource "google_monitoring_alert_policy" "this" {
  for_each = local.alerts

  project               = var.project_id
  display_name          = each.value.display_name
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = local.notification_channel_ids
  user_labels           = { alert_key = each.key }

  conditions {
    display_name = each.value.condition_name

    condition_threshold {
      filter             = each.value.filter
      denominator_filter = try(each.value.denominator_filter, null)
      comparison         = "COMPARISON_GT"
      threshold_value    = each.value.threshold_value
      duration           = each.value.duration

      aggregations {
        alignment_period     = each.value.alignment_period
        per_series_aligner   = each.value.per_series_aligner
        cross_series_reducer = try(each.value.reducer, null)
        group_by_fields      = try(each.value.group_by_fields, null)
      }

      # A ratio (denominator_filter) is aggregated the same way as its numerator.
      dynamic "denominator_aggregations" {
        for_each = try(each.value.denominator_filter, null) == null ? [] : [1]
        content {
          alignment_period     = each.value.alignment_period
          per_series_aligner   = each.value.per_series_aligner
          cross_series_reducer = try(each.value.reducer, null)
          group_by_fields      = try(each.value.group_by_fields, null)
        }
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = each.value.documentation
  }

  # The failed-events policy names a log-based metric made in the same apply, which Cloud
  # Monitoring refuses for up to 10 minutes (see time_sleep.failed_events_metric). Terraform orders
  # whole resources, so every policy waits: alerts are ready about 12 minutes into a first apply,
  # while Cloud SQL and the function builds are still running, and nothing waits for them.
  depends_on = [time_sleep.failed_events_metric]
}

# --- Dashboard -------------------------------------------------------------------

locals {
  dashboard_tiles = [
    {
      title    = "Ingest rate per event type (messages/s published)"
      filter   = "resource.type = \"pubsub_topic\" AND metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\" AND resource.label.topic_id = one_of(${local.quoted_topics})"
      aligner  = "ALIGN_RATE"
      reducer  = "REDUCE_SUM"
      group_by = ["resource.label.topic_id"]
    },
    {
      title    = "Writer latency p95 (ms)"
      filter   = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_latencies\" AND resource.label.service_name = one_of(${local.quoted_subscriber_services})"
      aligner  = "ALIGN_PERCENTILE_95"
      reducer  = "REDUCE_MAX"
      group_by = ["resource.label.service_name"]
    },
    {
      title    = "Writer errors (non-ack push responses/s)"
      filter   = "${local.push_requests} AND NOT metric.label.response_class = \"ack\""
      aligner  = "ALIGN_RATE"
      reducer  = "REDUCE_SUM"
      group_by = ["resource.label.subscription_id", "metric.label.response_class"]
    },
    {
      title    = "Failed events per event type"
      filter   = "resource.type = \"cloud_run_revision\" AND metric.type = \"${local.failed_events_metric}\""
      aligner  = "ALIGN_DELTA"
      reducer  = "REDUCE_SUM"
      group_by = ["metric.label.event_type"]
    },
    {
      title    = "Dead-letter depth (undelivered messages)"
      filter   = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = one_of(${local.quoted_dead_letter_subs})"
      aligner  = "ALIGN_MAX"
      reducer  = "REDUCE_MAX"
      group_by = ["resource.label.subscription_id"]
    },
    {
      title    = "Oldest unacked message age (s) per push subscription"
      filter   = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.label.subscription_id = one_of(${local.quoted_push_subscriptions})"
      aligner  = "ALIGN_MAX"
      reducer  = "REDUCE_MAX"
      group_by = ["resource.label.subscription_id"]
    },
    {
      title    = "Cloud SQL CPU utilization"
      filter   = "resource.type = \"cloudsql_database\" AND metric.type = \"cloudsql.googleapis.com/database/cpu/utilization\" AND resource.label.database_id = \"${local.cloudsql_database_id}\""
      aligner  = "ALIGN_MEAN"
      reducer  = "REDUCE_MAX"
      group_by = []
    },
    {
      title    = "Cloud SQL connections (limit ${var.db_max_connections})"
      filter   = "resource.type = \"cloudsql_database\" AND metric.type = \"cloudsql.googleapis.com/database/postgresql/num_backends\" AND resource.label.database_id = \"${local.cloudsql_database_id}\""
      aligner  = "ALIGN_MEAN"
      reducer  = "REDUCE_SUM"
      group_by = []
    },
  ]
}

resource "google_monitoring_dashboard" "main" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "Control Tower"
    mosaicLayout = {
      columns = 48
      # The API drops zero positions and empty lists from what it stores, and the
      # provider compares its answer with this JSON: a `xPos = 0` or
      # `groupByFields = []` here would show as a change on every plan
      # (https://github.com/hashicorp/terraform-provider-google/issues/16173).
      # So zeros and empty lists are left out.
      tiles = [
        for i, t in local.dashboard_tiles : merge(
          { for k, v in { xPos = (i % 2) * 24, yPos = floor(i / 2) * 16 } : k => v if v != 0 },
          {
            width  = 24
            height = 16
            widget = {
              title = t.title
              xyChart = {
                dataSets = [{
                  plotType = "LINE"
                  timeSeriesQuery = {
                    timeSeriesFilter = {
                      filter = t.filter
                      aggregation = merge(
                        {
                          alignmentPeriod    = "60s"
                          perSeriesAligner   = t.aligner
                          crossSeriesReducer = t.reducer
                        },
                        { for k, v in { groupByFields = t.group_by } : k => v if length(v) > 0 },
                      )
                    }
                  }
                }]
              }
            }
          },
        )
      ]
    }
  })

  depends_on = [time_sleep.api_propagation]
}
