"""Job functions: ``run(ctx) -> result dict``, one module per job kind."""
