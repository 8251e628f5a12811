"""Control Tower's library: everything the deployed functions share.

Nothing here touches a framework global or opens a client at import time; heavy
clients (Pub/Sub, Postgres, Secret Manager) are created lazily, once per instance.
"""
