"""Moved to ops.loopback (the cloud stand-ins of `make cloud-local` use it too); kept for bench's imports."""

from ops.loopback import JsonHandler, serve, stop

__all__ = ["JsonHandler", "serve", "stop"]
