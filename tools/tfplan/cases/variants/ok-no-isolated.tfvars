# No isolated subscribers, sender secrets, a source listed twice.
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
isolated_subscribers = []
sender_secret_ids = ["ct-x-evolution-key"]
tenants = { t1 = { sources = ["leads/meta", "leads/meta"] } }
