"""Traffic for tests, drills and the bench: the webhooks every source sends (sources), the tenants
they are sent for (tenants), a bounded HTTP load runner (load) and its statistics (stats).

It lives with the tests because tests use it; bench/ imports it from here, never the reverse.
"""
