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

data "google_project" "this" {
  project_id = var.project_id

  depends_on = [google_project_service.apis]
}

locals {
  # Google-managed Pub/Sub service agent: it writes to dead-letter topics, acks on
  # the source subscriptions when it dead-letters, and mints the push OIDC tokens.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
