# -----------------------------------------------------------------------------
# APIs and project facts.
#
# Eventarc is NOT enabled: subscribers are triggered by push subscriptions this
# module owns (an Eventarc-managed subscription cannot carry a dead-letter
# policy), so nothing here uses it.
# -----------------------------------------------------------------------------

locals {
  apis = toset([
    "artifactregistry.googleapis.com",     # Cloud Functions gen2 build images
    "cloudbuild.googleapis.com",           # Cloud Functions gen2 builds
    "cloudfunctions.googleapis.com",       # the functions
    "cloudresourcemanager.googleapis.com", # project IAM and data.google_project
    "iam.googleapis.com",                  # service accounts
    "iamcredentials.googleapis.com",       # OIDC tokens for push, impersonation by operators
    "logging.googleapis.com",              # log-based metric
    "monitoring.googleapis.com",           # alerts and dashboard
    "pubsub.googleapis.com",               # topics and subscriptions
    "run.googleapis.com",                  # gen2 functions run on Cloud Run
    "secretmanager.googleapis.com",        # webhook secrets, API keys
    "sqladmin.googleapis.com",             # Cloud SQL and the Cloud SQL connector
    "storage.googleapis.com",              # function source bucket
  ])
}

resource "google_project_service" "apis" {
  for_each = local.apis

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = false
}

# Enabling an API returns before every Google front end sees it: a call made
# seconds later can still fail with "API has not been used in project ... or it
# is disabled" (SERVICE_DISABLED). Everything that calls a freshly enabled API
# depends on this wait instead of on the APIs directly. It runs once, on the
# first apply (and again only if the API list changes).
resource "time_sleep" "api_propagation" {
  create_duration = "90s"

  triggers = {
    apis = join(",", sort(tolist(local.apis)))
  }

  depends_on = [google_project_service.apis]
}

data "google_project" "this" {
  project_id = var.project_id

  depends_on = [google_project_service.apis]
}

# The Pub/Sub service agent (service-<number>@gcp-sa-pubsub) is created lazily:
# enabling the API does not guarantee it exists yet, and an IAM grant to an agent
# that does not exist fails with "Service account ... does not exist". This asks
# Service Usage to create it now (generateServiceIdentity). Only google-beta has
# this resource; it has no delete (destroy only forgets it).
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.apis]
}

locals {
  # Google-managed Pub/Sub service agent: it writes to dead-letter topics, acks on
  # the source subscriptions when it dead-letters, and mints the push OIDC tokens.
  # The email comes from the identity resource (so every grant waits for it);
  # generateServiceIdentity may return no email, hence the documented
  # service-<number>@gcp-sa-pubsub form as the fallback.
  pubsub_service_agent = "serviceAccount:${coalesce(google_project_service_identity.pubsub.email, "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com")}"
}
