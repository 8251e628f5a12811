# Every subscriber isolated, one tenant with Lead Ads, one with nothing.
project_id = "my-ct-test-01"
alert_emails = ["a@example.com"]
isolated_subscribers = ["leads_writer", "conversations_writer", "pipeline_writer", "obras_writer", "leadgen_fetcher", "assistant", "reply_sender"]
tenants = { t1 = { sources = ["leads/meta"] }, t2 = { sources = [] } }
