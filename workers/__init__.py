"""Celery workers for long jobs (2K synthesis, batch super-resolution, training).

Front doors import :mod:`workers.interface` only; the rest (Celery app, tasks, runner, job
functions) is how a worker runs what they submit. Job functions run the pipelines of
``gantry.serving``, the same code the gateway answers synchronous requests with.
"""
