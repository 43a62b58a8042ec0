"""The WSGI entry for production servers: ``gunicorn -w 4 -b 0.0.0.0:8000 'kassa.wsgi:app'``.

Configuration comes from the KASSA_* environment (see README, "Running in
production"). Jobs need Redis and ``kassa worker`` beside the web processes: with
KASSA_REDIS_URL unset each web process would run jobs on a thread of its own and
nothing would run the schedule. Do not use gunicorn's ``--preload``: each worker
must open its own database connections.
"""
from __future__ import annotations

from . import create_app

app = create_app()
