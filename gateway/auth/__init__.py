"""API keys: who may call what, and how often (``GANTRY_AUTH_MODE=keys``)."""
