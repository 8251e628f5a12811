# Refused: ENTERPRISE_PLUS needs a db-perf-optimized-N-* tier (the default tier is db-custom).
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
db_edition = "ENTERPRISE_PLUS"
