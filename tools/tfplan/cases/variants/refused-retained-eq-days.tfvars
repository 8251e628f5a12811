# Refused: retained backups must be more than the days of transaction logs (the API says ">").
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
db_backup_retained_count = 7
