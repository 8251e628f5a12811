# -----------------------------------------------------------------------------
# Pub/Sub: one topic per event type, one dead-letter topic per topic, one push
# subscription per (topic, subscriber) and one never-expiring pull subscription
# per dead-letter topic for operators. Names are used exactly as in
# shared/topology.json (the Python publisher and ops CLI use them verbatim).
# -----------------------------------------------------------------------------

locals {
  # Ack deadline of a push subscription = how long Pub/Sub waits for the
  # subscriber's HTTP answer. It must cover the function timeout, or Pub/Sub
  # redelivers while the first attempt is still writing. Pub/Sub caps it at 600 s.
  push_ack_deadline_seconds = {
    for subscription, sub in local.push_subscriptions :
    subscription => min(600, max(10, local.function_settings[sub.function].timeout_seconds))
  }
}

resource "google_pubsub_topic" "event" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest is used on purpose; CMEK would add a KMS dependency and key-rotation duty this small pack does not need.
  for_each = local.topics

  project                    = var.project_id
  name                       = each.value
  message_retention_duration = var.topic_message_retention

  labels = {
    event_type = each.key
    role       = "events"
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest is used on purpose; CMEK would add a KMS dependency and key-rotation duty this small pack does not need.
  for_each = local.dead_letter_topics

  project                    = var.project_id
  name                       = each.value
  message_retention_duration = var.topic_message_retention

  labels = {
    event_type = each.key
    role       = "dead-letter"
  }

  depends_on = [time_sleep.api_propagation]
}

# Push subscription per (topic, subscriber function). Owned here rather than an
# Eventarc trigger, because an Eventarc-managed subscription cannot carry a
# dead-letter policy.
resource "google_pubsub_subscription" "push" {
  for_each = local.push_subscriptions

  project = var.project_id
  name    = each.key
  topic   = google_pubsub_topic.event[each.value.event_type].id

  ack_deadline_seconds       = local.push_ack_deadline_seconds[each.key]
  message_retention_duration = var.subscription_message_retention

  # Never delete the subscription for inactivity (default is 31 days idle):
  # a quiet event type must not silently lose its subscriber.
  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.event_type].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    # functions-framework takes the CloudEvent `source` (and so the topic) from the
    # request path, so the endpoint ends in /projects/<project>/topics/<topic>,
    # exactly like the local stack. The wrapped push body is kept (no no_wrapper):
    # functions-framework converts it into a CloudEvent.
    push_endpoint = "${google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri}/projects/${var.project_id}/topics/${each.value.topic}"

    # Subscribers are private: Pub/Sub signs each push with an OIDC token of the
    # dedicated push service account, the only identity allowed to invoke them.
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.fn[each.value.function].service_config[0].uri
    }
  }

  labels = {
    event_type = each.value.event_type
    role       = "push"
  }

  lifecycle {
    precondition {
      condition     = contains(keys(local.subscriber_functions), each.value.function)
      error_message = "shared/topology.json: subscription ${each.key} names function ${each.value.function}, which is not a function with trigger \"pubsub\"."
    }
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_service_account_iam_member.pubsub_agent_push_token_creator,
    google_cloud_run_service_iam_member.push_invoker,
  ]
}

# Pull subscription on every dead-letter topic, for operators to inspect and
# redrive. Without a subscription, messages published to a topic are dropped.
resource "google_pubsub_subscription" "dead_letter_ops" {
  for_each = local.dead_letter_subscriptions

  project = var.project_id
  name    = each.value
  topic   = google_pubsub_topic.dead_letter[each.key].id

  ack_deadline_seconds       = 60
  message_retention_duration = var.subscription_message_retention
  # Keep acknowledged messages too, so an operator can seek back after a redrive.
  retain_acked_messages = true

  # Never expires, however long no one pulls from it.
  expiration_policy {
    ttl = ""
  }

  labels = {
    event_type = each.key
    role       = "dead-letter-ops"
  }
}

# --- Pub/Sub service agent ---------------------------------------------------
# Without these grants dead-lettering silently fails: the service agent must be
# able to publish to the dead-letter topic and to ack (subscriber) on the source
# subscription it forwards from.

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.dead_letter_topics

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "source_subscriber" {
  for_each = local.push_subscriptions

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
