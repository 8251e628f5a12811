# A custom source with a reader that is not a function (ignored), one isolated subscriber.
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
source_catalog = {
  "leads/custom" = { secrets = { key = { flag = "--secret", readers = ["leads", "leads_writer", "not_a_function"] } } }
}
tenants = { t1 = { sources = ["leads/custom"] } }
isolated_subscribers = ["assistant"]
