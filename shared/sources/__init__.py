"""Source adapters: one module per platform, turning its native body into envelopes."""
