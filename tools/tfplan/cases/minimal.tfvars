project_id   = "my-control-tower-prod"
alert_emails = ["ops@example.com"]
