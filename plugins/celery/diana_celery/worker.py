"""``diana worker``: a Celery worker running Diana's units, with endpoints from this machine's service file.

Secrets come from this worker's environment (``${VAR}`` in the service file, ``DIANA_PSEUDONYM_KEY``), never from
the messages. Threads, not processes: units wait on the network, and ``kill -9`` of the worker takes all of its
units with it, so they are redelivered cleanly after the visibility timeout.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import click

from diana_core.cli.plugin_api import CliState, pass_state


@click.command("worker")
@click.option("--broker", envvar="DIANA_BROKER", metavar="URL",
              help="Broker, e.g. redis://host:6379/0 (env DIANA_BROKER; default: the executor service's).")
@click.option("--executor", "executor_name", default="executor", show_default=True,
              help="Service (ctype CeleryExecutor) whose settings to use, when the service file has it.")
@click.option("-c", "--concurrency", default=2, show_default=True, help="Units this worker runs at once (threads).")
@click.option("--visibility-timeout", type=float, help="Seconds before an unacknowledged unit is redelivered.")
@click.option("--claim-ttl", type=float, help="Seconds a dead worker's hold on a study lasts (renewed while alive).")
@click.option("-n", "--name", "worker_name", help="Worker name, unique on its host and the same across restarts "
              "(Celery's name@host) [default: diana@<host>].")
@click.option("-l", "--loglevel", default="WARNING", show_default=True, help="Celery log level.")
@pass_state
def worker_cmd(state: CliState, broker: str | None, executor_name: str, concurrency: int,
               visibility_timeout: float | None, claim_ttl: float | None, worker_name: str | None,
               loglevel: str) -> None:
    """Run a Celery worker for `diana collect|index|upload --executor celery`.

    \b
    Example (one per machine, same service file, secrets in each machine's environment):
      DIANA_PSEUDONYM_KEY=... diana -s services.yml worker --broker redis://queue:6379/0 -c 4
    """
    from diana_celery.app import make_app, redis_client
    from diana_celery.executor import CeleryExecutor
    from diana_celery.guard import RedisGuard
    from diana_celery.jobstate import worker_scratch
    from diana_celery.tasks import WorkerContext, configure
    from diana_core.services import build_endpoint

    services = state.services
    config: CeleryExecutor
    if executor_name in services and isinstance(services[executor_name], CeleryExecutor):
        config = services[executor_name]
    elif broker:
        config = build_endpoint("CeleryExecutor", {"broker": broker}, service_name="celery")
    else:
        raise click.UsageError("give --broker redis://HOST:PORT/DB (or $DIANA_BROKER), or an 'executor' service")
    if broker:
        config.broker = broker
    vt = visibility_timeout or config.visibility_timeout
    ttl = claim_ttl or config.claim_ttl
    name = worker_name or f"diana@{socket.gethostname()}"  # stable: a restart finds its predecessor's scratch
    worker_scratch(name, purge=True)  # killed workers' study archives (identified data) on this host go first
    client = redis_client(config.broker)
    configure(WorkerContext(services=services, redis=client, broker=config.broker, name=name, claim_ttl=ttl,
                            guard=RedisGuard(client, slot_ttl=ttl)))
    announce(client, name, concurrency)
    app: Any = make_app(config.broker, vt, config.queue)
    app.worker_main(["worker", "--pool=threads", f"--concurrency={concurrency}", f"--hostname={name}",
                     f"--queues={config.queue}", f"--loglevel={loglevel}", "--without-gossip", "--without-mingle",
                     "--without-heartbeat"])


WORKER_KEY = "diana:worker:"


def announce(client: Any, name: str, concurrency: int, every: float = 5.0) -> None:
    """Once consuming, keep ``diana:worker:<name>`` alive in Redis (TTL 3 x ``every``) for status views and tests."""
    import contextlib
    import json
    import threading
    import time

    from celery import signals

    stop = threading.Event()
    facts = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "concurrency": concurrency,
                        "started": time.time()})

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat only makes the worker look gone for a moment
                client.set(WORKER_KEY + name, facts, ex=int(every * 3))
            if stop.wait(every):
                return

    def ready(**_: Any) -> None:
        threading.Thread(target=beat, name="diana-announce", daemon=True).start()

    def shutdown(**_: Any) -> None:
        stop.set()
        with contextlib.suppress(Exception):  # the key expires by itself
            client.delete(WORKER_KEY + name)

    signals.worker_ready.connect(ready, weak=False)
    signals.worker_shutdown.connect(shutdown, weak=False)
