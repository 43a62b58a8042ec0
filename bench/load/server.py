"""The app in a real server process on 127.0.0.1 (gunicorn, else werkzeug threaded)."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(url: str, gateway_db: str, instance: str, secret_key: str, workers: int = 2, threads: int = 4):
    """The app in its own process on 127.0.0.1 (the seeding app's secret key, which
    encrypted the gateway's settings); yields the base URL; stopped afterwards."""
    import httpx

    port = free_port()
    env = {**os.environ, "KASSA_DATABASE_URL": url, "KASSA_LOAD_GATEWAY_DB": gateway_db,
           "KASSA_INSTANCE_PATH": instance, "KASSA_REDIS_URL": "", "KASSA_SECRET_KEY": secret_key,
           "KASSA_LOAD_ENTRYPOINTS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                      os.environ.get("PYTHONPATH")]))}
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or shutil.which("gunicorn")
    if gunicorn:
        cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--worker-class", "gthread", "--threads", str(threads), "--log-level", "warning",
               "--timeout", "60", "bench.load.gateway:wsgi()"]
        kind = f"gunicorn {workers}×{threads}"
    else:
        cmd = [sys.executable, "-c", "from werkzeug.serving import run_simple; from bench.load.gateway import wsgi; "
               f"run_simple('127.0.0.1', {port}, wsgi(), threaded=True)"]
        kind = "werkzeug threaded"
    log = open(os.path.join(instance, "server.log"), "w+")
    proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the server exited ({proc.returncode}):\n{log.read()[-3000:]}")
            try:  # ready when a worker answers, not when the master listens
                if httpx.get(f"{base}/api/v1/openapi.json", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start within 60 s") from None
                time.sleep(0.2)
        yield base, kind, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
