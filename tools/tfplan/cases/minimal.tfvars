project_id = "ct-prod-123"
alert_emails = ["ops@example.com"]
