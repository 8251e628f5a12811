# No tenants, no health checks, no operators, assistant on, secrets in one region.
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
assistant_enabled = true
tenants = {}
health_check_functions = []
operator_members = []
secret_replica_locations = ["southamerica-east1"]
