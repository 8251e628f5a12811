# Refused: ENTERPRISE edition cannot use a db-perf-optimized (ENTERPRISE_PLUS) tier.
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
db_tier = "db-perf-optimized-N-2"
