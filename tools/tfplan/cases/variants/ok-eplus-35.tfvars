# ENTERPRISE_PLUS at its limits: 35 days of logs, 36 backups.
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
db_edition = "ENTERPRISE_PLUS"
db_tier = "db-perf-optimized-N-2"
db_pitr_retention_days = 35
db_backup_retained_count = 36
