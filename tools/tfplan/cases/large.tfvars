# The largest honest case: several tenants using every source, sender secrets,
# more isolated subscribers than the default, function overrides, and every
# optional knob the variables allow set to a non-default, valid value.
# Planned offline by `make test` (tools/tfplan) and by the independent checker.

project_id  = "ct-large-prod-01"
region      = "us-central1"
name_prefix = "ctl-"
labels = {
  app         = "control-tower"
  environment = "prod"
  cost-center = "ops_42"
}

runtime   = "python312"
log_level = "DEBUG"

edge_function_settings = {
  memory          = "1Gi"
  cpu             = "2"
  timeout_seconds = 120
  min_instances   = 1
  max_instances   = 50
  concurrency     = 40
}

writer_function_settings = {
  memory          = "1Gi"
  cpu             = "1"
  timeout_seconds = 300
  min_instances   = 1
  max_instances   = 40
  concurrency     = 8
}

function_overrides = {
  whatsapp        = { min_instances = 2, max_instances = 100 }
  leads           = { memory = "768Mi", timeout_seconds = 30 }
  events          = { concurrency = 80, cpu = "2" }
  health          = { memory = "256Mi", cpu = "1", min_instances = 0, max_instances = 2, concurrency = 10, timeout_seconds = 10 }
  assistant       = { memory = "2Gi", timeout_seconds = 600, concurrency = 2 }
  leadgen_fetcher = { max_instances = 5 }
  reply_sender    = { timeout_seconds = 90 }
}

subscriber_ingress     = "ALLOW_ALL"
health_check_functions = ["health", "events"]

topic_message_retention        = "2678400s"
subscription_message_retention = "86400s"
retry_minimum_backoff          = "5s"
retry_maximum_backoff          = "300s"
max_delivery_attempts          = 20

db_instance_name           = "control-tower-large"
db_edition                 = "ENTERPRISE_PLUS"
db_tier                    = "db-perf-optimized-N-8"
db_availability_type       = "REGIONAL"
db_disk_size_gb            = 250
db_name                    = "control_tower_prod"
db_max_connections         = 2000
db_reserved_connections    = 50
db_pool_size               = 8
db_ssl_mode                = "ENCRYPTED_ONLY"
db_backup_start_time       = "03:30"
db_pitr_retention_days     = 35
db_backup_retained_count   = 60
db_maintenance_window      = { day = 2, hour = 4 }
grant_db_roles_with_gcloud = false

# Every source of the default source_catalog is used by at least one tenant.
tenants = {
  pisos-sp = {
    sources = ["whatsapp/evolution", "leads/meta", "leads/typeform"]
  }
  imob-rio = {
    sources = ["whatsapp/zapi", "leads/google_ads", "leads/form"]
  }
  obras-bh = {
    sources = ["whatsapp/360dialog", "whatsapp/gupshup", "leads/meta"]
  }
  casa_poa = {
    sources = ["whatsapp/meta", "whatsapp/evolution", "leads/form", "leads/typeform", "leads/google_ads"]
  }
}

secret_replica_locations  = ["us-central1", "us-east1"]
events_api_key_generation = 3

operator_members = [
  "user:ana@example.com",
  "group:ops@example.com",
  "serviceAccount:ci-runner@ct-large-prod-01.iam.gserviceaccount.com",
  "domain:example.com",
]

alert_emails = ["ops@example.com", "oncall@example.com", "cto@example.com"]

oldest_unacked_age_threshold_seconds = 600
failed_events_per_hour_threshold     = 0

isolated_subscribers = ["assistant", "reply_sender", "leadgen_fetcher"]
assistant_enabled    = false
openai_base_url      = "https://llm-gateway.example.com/v1"
evolution_api_url    = "https://evolution.example.com"
zapi_api_url         = "https://api.z-api.io"
meta_graph_base_url  = "https://graph.facebook.com"
meta_graph_version   = "v24.0"

sender_secret_ids = [
  "ctl-pisos-sp-evolution-api-key",
  "ctl-imob-rio-zapi-token",
  "ctl-imob-rio-zapi-client-token",
  "ctl-casa-poa-meta-access-token",
]
