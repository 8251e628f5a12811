"""The sellers' console: users and sessions, reads for its pages, actions published as events."""
