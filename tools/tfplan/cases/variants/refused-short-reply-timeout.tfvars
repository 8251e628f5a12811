# Refused: reply_sender waits up to 30 s to pace a send, then sends for up to 15 s (topology min_timeout_seconds = 60).
project_id   = "my-ct-test-01"
alert_emails = ["a@example.com"]
function_overrides = { reply_sender = { timeout_seconds = 30 } }
