"""Local stand-ins of the Google APIs the cloud code paths call (tests and `make cloud-local`).

Small HTTP servers speaking each API's public REST shape closely enough for the official
client libraries, which the product points at them only through their ordinary endpoint
settings. Never part of a deployment (Terraform ships functions/, shared/ and sql/ only).
"""
