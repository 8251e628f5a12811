# Refused: an HTTP (edge) function cannot be an isolated subscriber.
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
isolated_subscribers = ["whatsapp"]
