"""Celery workers for long jobs (2K synthesis, batch super-resolution, training).

Built in the async-jobs issue; the gateway already names the batch job (`superres_batch`)
when a synchronous request is over its compute budget.
"""
