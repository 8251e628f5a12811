"""The assistant: answers and qualifies leads on WhatsApp per tenant, and steps aside for people.

One concern per module: `config` (the tenant's files), `schema` (the structured output),
`prompt`, `llm` (the OpenAI port), `guardrails`, `handoff`, `budget`, `context` (history
from Postgres), `turns` (the idempotency record), `facts` (lead and stage), `engine`
(one pure decision, shared by the subscriber and the simulator) and `service`.
"""
