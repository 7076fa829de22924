"""The Celery application: JSON messages carrying job ids, late acks, two queues.

Broker from settings: Redis in deployments, kombu's SQLAlchemy transport on SQLite by
default (no server to run). Results are not stored in Celery: job records in
:class:`workers.store.JobStore` are the source of truth.
"""

from __future__ import annotations

import sys

from celery import Celery

from gantry.core.settings import Settings, get_settings
from workers.kinds import INFERENCE_QUEUE, TRAINING_QUEUE


def worker_command(queues: str = "inference,training", name: str | None = None) -> list[str]:
    """The command line of one job worker: prefork pool of one process (time limits work),
    no gossip or mingle (the embedded broker has no broadcast)."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.tasks",
        "worker",
        "-Q",
        queues,
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    if name:
        command += ["-n", name]
    return command


def create_celery(settings: Settings | None = None) -> Celery:
    """A configured Celery app (also used by the gateway, to send tasks)."""
    settings = settings or get_settings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    app = Celery("gantry", broker=settings.effective_broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        # Ack after the work: a worker killed mid-job leaves the message to be redelivered.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=INFERENCE_QUEUE,
        task_routes={"gantry.train.*": {"queue": TRAINING_QUEUE}},
        task_soft_time_limit=settings.job_soft_time_limit_s,
        task_time_limit=settings.job_hard_time_limit_s,
        broker_transport_options=(
            {"visibility_timeout": settings.broker_visibility_timeout_s}
            if settings.effective_broker_url.startswith("redis")
            else {}
        ),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app
