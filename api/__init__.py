"""API tokens and the REST API (/api/) for bots and integrations."""
