# Refused: point-in-time recovery logs are kept 1-7 days on ENTERPRISE.
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
db_pitr_retention_days = 8
