terraform {
  # 1.11+: write-only arguments (secret_data_wo) and ephemeral resources, used so
  # the generated events API key never lands in the state or a plan file.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.25+ has secret_data_wo on google_secret_manager_secret_version and
      # build_config.service_account on google_cloudfunctions2_function.
      version = "~> 6.25"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
    random = {
      source = "hashicorp/random"
      # 3.7+ has the ephemeral random_password resource.
      version = "~> 3.7"
    }
    # Only for google_project_service_identity (main.tf): the GA provider has no
    # resource that creates a Google-managed service agent.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.25"
    }
    # time_sleep: waits the first apply needs for API, IAM and metric propagation.
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # Applied to every resource that supports labels.
  default_labels = var.labels
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
