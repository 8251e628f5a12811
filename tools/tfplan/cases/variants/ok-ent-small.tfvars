# The smallest instance: ENTERPRISE on db-g1-small, one day of logs, one writer instance.
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
db_edition = "ENTERPRISE"
db_tier = "db-g1-small"
db_pitr_retention_days = 1
db_backup_retained_count = 2
db_max_connections = 200
db_pool_size = 1
writer_function_settings = { memory = "256Mi", cpu = "0.5", timeout_seconds = 10, min_instances = 0, max_instances = 1, concurrency = 1 }
