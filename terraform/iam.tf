# -----------------------------------------------------------------------------
# Identity: one service account per function role, least privilege, resource-
# level grants wherever the service supports them. No primitive roles
# (owner/editor/viewer) and no default compute service account anywhere.
#
#   edge (one per HTTP function) : publisher on the topics it `publishes` only
#                                  (+ pubsub.viewer on all topics for health)
#                                  (+ accessor on its own source secrets)
#   writer (the other subscribers): cloudsql.client + cloudsql.instanceUser on the
#                                  instance, logging, accessor on its secrets
#   subscriber (one per function in var.isolated_subscribers, by default
#              assistant and reply_sender): the same Cloud SQL + logging grants
#                                  with its own IAM database user, and accessor
#                                  only on its own credentials (OpenAI key /
#                                  provider send credentials)
#   any function                 : publisher on exactly the topics its topology
#                                  entry `publishes`, whatever its trigger
#   push                         : run.invoker on the subscriber services only
#   build                        : Cloud Build for the function images
# -----------------------------------------------------------------------------

resource "google_service_account" "edge" {
  for_each = local.http_functions

  project      = var.project_id
  account_id   = trimsuffix(substr("${var.name_prefix}fn-${replace(each.key, "_", "-")}", 0, 30), "-")
  display_name = "Control Tower edge function ${each.key}"
  description  = "Runtime identity of the ${each.key} HTTP function: publishes only to its own topics."

  depends_on = [time_sleep.api_propagation]
}

resource "google_service_account" "writer" {
  project      = var.project_id
  account_id   = "${var.name_prefix}writer"
  display_name = "Control Tower writers"
  description  = "Runtime identity of the Pub/Sub subscriber (database writer) functions and their IAM database user."

  depends_on = [time_sleep.api_propagation]
}

resource "google_service_account" "subscriber" {
  for_each = toset(var.isolated_subscribers)

  project      = var.project_id
  account_id   = trimsuffix(substr("${var.name_prefix}fn-${replace(each.key, "_", "-")}", 0, 30), "-")
  display_name = "Control Tower subscriber ${each.key}"
  description  = "Runtime identity and IAM database user of the ${each.key} Pub/Sub subscriber: only it reads its own third-party credentials."

  lifecycle {
    precondition {
      condition     = contains(keys(local.subscriber_functions), each.key)
      error_message = "isolated_subscribers: ${each.key} is not a Pub/Sub subscriber function in shared/topology.json."
    }
  }

  depends_on = [time_sleep.api_propagation]
}

resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name_prefix}pubsub-push"
  display_name = "Control Tower Pub/Sub push"
  description  = "Identity in the OIDC token of every push subscription; the only one allowed to invoke subscribers."

  depends_on = [time_sleep.api_propagation]
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}build"
  display_name = "Control Tower function builds"
  description  = "Cloud Build identity for the function images (instead of the default compute service account)."

  depends_on = [time_sleep.api_propagation]
}

locals {
  # The identity each function runs as, named from configuration alone:
  # "edge/<fn>", "subscriber/<fn>" or "writer". Grants shared by several
  # functions are keyed by these names, never by emails: an email is known only
  # once the service account exists, and for_each keys must be known at plan time.
  function_identity = {
    for name, fn in local.functions : name => (
      fn.trigger != "pubsub" ? "edge/${name}" :
      contains(var.isolated_subscribers, name) ? "subscriber/${name}" :
      "writer"
    )
  }

  # identity => IAM member (the value may be unknown until apply; the key never is).
  identity_member = merge(
    { for name, sa in google_service_account.edge : "edge/${name}" => "serviceAccount:${sa.email}" },
    { for name, sa in google_service_account.subscriber : "subscriber/${name}" => "serviceAccount:${sa.email}" },
    { writer = "serviceAccount:${google_service_account.writer.email}" },
  )

  function_service_account_email = {
    for name, fn in local.functions : name => (
      fn.trigger != "pubsub" ? google_service_account.edge[name].email :
      contains(var.isolated_subscribers, name) ? google_service_account.subscriber[name].email :
      google_service_account.writer.email
    )
  }

  function_member = { for name, identity in local.function_identity : name => local.identity_member[identity] }

  # (health function, event type) pairs: pubsub.viewer so the detailed health
  # check can confirm each topic exists.
  topic_viewer_grants = merge([
    for name in var.health_check_functions : {
      for event_type, topic in local.topics : "${name}/${event_type}" => {
        function   = name
        event_type = event_type
      }
    } if contains(keys(local.http_functions), name)
  ]...)
}

# --- Topic-level publisher, only on the topics each function `publishes` ------
# Edge and subscribers alike (the assistant publishes reply_requested and
# stage_changed); a function with an empty `publishes` gets nothing.

moved {
  from = google_pubsub_topic_iam_member.edge_publisher
  to   = google_pubsub_topic_iam_member.publisher
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publish_grants

  project = var.project_id
  topic   = google_pubsub_topic.event[each.value.event_type].name
  role    = "roles/pubsub.publisher"
  member  = local.function_member[each.value.function]
}

resource "google_pubsub_topic_iam_member" "health_viewer" {
  for_each = local.topic_viewer_grants

  project = var.project_id
  topic   = google_pubsub_topic.event[each.value.event_type].name
  role    = "roles/pubsub.viewer"
  member  = local.function_member[each.value.function]
}

# --- Writer: Cloud SQL only (scoped to the one instance), logging ----------------

resource "google_project_iam_member" "writer_cloudsql" {
  for_each = toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.writer.email}"

  # Cloud SQL has no instance-level IAM; an IAM condition limits the grant to
  # this instance.
  condition {
    title       = "only-${var.db_instance_name}"
    description = "Only the Control Tower Cloud SQL instance."
    expression  = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"projects/${var.project_id}/instances/${var.db_instance_name}\""
  }
}

resource "google_project_iam_member" "writer_logging" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.writer.email}"
}

# --- Isolated subscribers: the writer's Cloud SQL + logging grants, own identity --

resource "google_project_iam_member" "subscriber_cloudsql" {
  for_each = {
    for pair in setproduct(var.isolated_subscribers, ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]) :
    "${pair[0]}/${pair[1]}" => { function = pair[0], role = pair[1] }
  }

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.subscriber[each.value.function].email}"

  condition {
    title       = "only-${var.db_instance_name}"
    description = "Only the Control Tower Cloud SQL instance."
    expression  = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"projects/${var.project_id}/instances/${var.db_instance_name}\""
  }
}

resource "google_project_iam_member" "subscriber_logging" {
  for_each = toset(var.isolated_subscribers)

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.subscriber[each.key].email}"
}

# --- HTTP functions with a database role (the console): Cloud SQL on the one instance -----

resource "google_project_iam_member" "edge_cloudsql" {
  for_each = {
    for pair in setproduct(keys(local.edge_db_functions), ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]) :
    "${pair[0]}/${pair[1]}" => { function = pair[0], role = pair[1] }
  }

  project = var.project_id
  role    = each.value.role
  member  = local.function_member[each.value.function]

  condition {
    title       = "only-${var.db_instance_name}"
    description = "Only the Control Tower Cloud SQL instance."
    expression  = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"projects/${var.project_id}/instances/${var.db_instance_name}\""
  }
}

# --- Push identity: run.invoker on subscriber services only --------------------

resource "google_cloud_run_service_iam_member" "push_invoker" {
  for_each = local.subscriber_functions

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

# The Pub/Sub service agent mints the push OIDC tokens for the push account
# (granted automatically only in projects created after April 2021).
resource "google_service_account_iam_member" "pubsub_agent_push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# --- Public HTTP functions ---------------------------------------------------------
# allUsers may invoke ONLY the functions marked "public": true in the topology.
# Webhook platforms cannot present Google identity tokens; each request is proven
# by the source's own check (HMAC signature, verify token, per-tenant token, API
# key) in the code, before anything is published.

resource "google_cloud_run_service_iam_member" "public_invoker" {
  #checkov:skip=CKV_GCP_102:Public on purpose, only for functions with "public": true: webhook receivers (WhatsApp providers and form platforms cannot sign Google tokens; every request is authenticated by the source's signature/token check in code) and the console (it signs its users in itself: Argon2id passwords, sessions, CSRF).
  for_each = local.public_functions

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"

  lifecycle {
    precondition {
      condition     = each.value.trigger == "http"
      error_message = "shared/topology.json: only HTTP functions may be public; ${each.key} is a subscriber."
    }
  }
}

# --- Build identity ----------------------------------------------------------------

resource "google_project_iam_member" "build" {
  # Narrow roles instead of roles/cloudbuild.builds.builder: write build logs,
  # push the function image to the gcf-artifacts repository, read the source
  # that Cloud Functions stages in its gcf-v2-sources bucket.
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectViewer"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.build.email}"
}

# --- Waiting for IAM before the first build and deploy ----------------------------
# IAM grants are eventually consistent: "typically 2 minutes, potentially 7
# minutes or longer" (https://cloud.google.com/iam/docs/access-change-propagation).
# A function created right after its grants can fail its first build (the build
# account cannot write logs or push the image yet) or its deploy (the runtime
# account cannot read a mounted secret yet: the events API key, the console's
# session key). The functions wait for this; it runs on the first apply and
# whenever the build or mounted-secret grants are recreated.
resource "time_sleep" "iam_propagation" {
  create_duration = "120s"

  triggers = {
    build_grants  = join(",", sort([for g in google_project_iam_member.build : g.id]))
    secret_grants = join(",", sort([for key, g in google_secret_manager_secret_iam_member.this : g.id if contains(keys(local.generated_secrets), split("|", key)[0])]))
  }
}

# --- Operators (ops CLI) -------------------------------------------------------------

# Impersonate the writer for migrations, tenants, replay and trace over IAM
# database auth (`gcloud auth application-default login --impersonate-service-account`).
resource "google_service_account_iam_member" "operator_impersonates_writer" {
  for_each = toset(var.operator_members)

  service_account_id = google_service_account.writer.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}

# Pull/inspect dead letters.
resource "google_pubsub_subscription_iam_member" "operator_dead_letter" {
  for_each = { for pair in setproduct(var.operator_members, keys(local.dead_letter_subscriptions)) : "${pair[0]}/${pair[1]}" => { member = pair[0], event_type = pair[1] } }

  project      = var.project_id
  subscription = google_pubsub_subscription.dead_letter_ops[each.value.event_type].name
  role         = "roles/pubsub.subscriber"
  member       = each.value.member
}

# Redrive: publish dead letters back to their source topic.
resource "google_pubsub_topic_iam_member" "operator_redrive" {
  for_each = { for pair in setproduct(var.operator_members, keys(local.topics)) : "${pair[0]}/${pair[1]}" => { member = pair[0], event_type = pair[1] } }

  project = var.project_id
  topic   = google_pubsub_topic.event[each.value.event_type].name
  role    = "roles/pubsub.publisher"
  member  = each.value.member
}
