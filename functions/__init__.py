"""Deployed function targets: thin, one module each (parse request -> call shared -> respond)."""
