"""Vendor API peers for gateway contract tests.

* :func:`prism_peer` serves a vendor's published OpenAPI document on 127.0.0.1 with
  Prism (``@stoplight/prism-cli`` from npm, installed on demand into ``.peers/``);
  the ``stripe_peer`` and ``paypal_peer`` fixtures give their base URLs.
* :class:`PeerServer` is a small local HTTP server: it answers the routes a test
  gives it, forwards anything else to an upstream peer, and records every request,
  so a test can check what the client really sent.
* :func:`spec_violations` checks a recorded request against the OpenAPI document
  where Prism 5 does not: it drops unknown form-encoded parameters silently and does
  not validate some JSON bodies (PayPal's Orders v2) at all.
* :func:`stalled_server` accepts connections and never answers (timeout tests).

Without npm, or when Prism cannot start, the tests that need a peer skip with the
reason, and fail when ``CI=true`` (:func:`kassa.testing.services.missing`).
"""
from __future__ import annotations

import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from .services import missing

PRISM_PACKAGE = "@stoplight/prism-cli@5"
START_TIMEOUT = 60.0
INSTALL_TIMEOUT = 300.0
REPO_ROOT = Path(__file__).resolve().parents[2]

STRIPE_SPEC = "stripe-openapi-subset.json"
PAYPAL_SPEC = "paypal-checkout-orders-v2.json"


def peers_dir() -> Path:
    """Where Prism is installed (git-ignored); ``KASSA_PEERS_DIR`` overrides it."""
    return Path(os.environ.get("KASSA_PEERS_DIR") or REPO_ROOT / ".peers")


def spec_path(name: str) -> Path:
    """A vendor document from ``shared/peers`` beside the repository (``KASSA_PEERS_SPECS`` overrides)."""
    folders = [Path(os.environ["KASSA_PEERS_SPECS"])] if os.environ.get("KASSA_PEERS_SPECS") else []
    folders += [REPO_ROOT.parent / "shared" / "peers", REPO_ROOT / "shared" / "peers"]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    missing(f"the OpenAPI document {name}", "not found in " + ", ".join(str(f) for f in folders))
    raise AssertionError("unreachable")  # missing() skips or fails


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def prism_executable() -> str:
    """The ``prism`` command: ``KASSA_PRISM``, else ``.peers/``, installing it there with npm once."""
    if os.environ.get("KASSA_PRISM"):
        return os.environ["KASSA_PRISM"]
    folder = peers_dir()
    prism = folder / "node_modules" / ".bin" / "prism"
    if prism.exists():
        return str(prism)
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        missing("Prism (the OpenAPI mock server)", "node/npm are not installed; apt-get install nodejs npm")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".install.lock", "w") as lock:  # two test runs at once install it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not prism.exists():
            try:
                done = subprocess.run(
                    [npm, "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error",
                     "--prefix", str(folder), PRISM_PACKAGE],
                    capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                missing("Prism (the OpenAPI mock server)", f"npm install took over {INSTALL_TIMEOUT:.0f} s")
            if done.returncode != 0 or not prism.exists():
                missing("Prism (the OpenAPI mock server)",
                        f"npm install {PRISM_PACKAGE} failed: {_tail(done.stderr or done.stdout)}")
    return str(prism)


@contextmanager
def prism_peer(spec_name: str):
    """Serve ``spec_name`` (a file of shared/peers) with ``prism mock`` on a free
    127.0.0.1 port; yields the base URL and stops Prism afterwards."""
    spec = spec_path(spec_name)
    prism = prism_executable()
    port = _free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        try:
            proc = subprocess.Popen([prism, "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        except OSError as exc:
            missing(f"Prism mock of {spec_name}", f"{prism} did not start: {exc}")
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _port_open(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    why = (f"exited with {proc.returncode}" if proc.poll() is not None
                           else f"not listening after {START_TIMEOUT:.0f} s")
                    missing(f"Prism mock of {spec_name}", f"{why}: {_tail(log.read())}")
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: Prism and the node processes it forked
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def stripe_peer():
    """Base URL of Prism serving Stripe's published OpenAPI document (the subset in shared/peers)."""
    with prism_peer(STRIPE_SPEC) as url:
        yield url


@pytest.fixture(scope="session")
def paypal_peer():
    """Base URL of Prism serving PayPal's published Orders v2 OpenAPI document."""
    with prism_peer(PAYPAL_SPEC) as url:
        yield url


# ---------------------------------------------------------------- a local server


@dataclass
class PeerRequest:
    """One request a :class:`PeerServer` received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    match: re.Match | None = field(default=None, repr=False)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self):
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """A form-encoded body as flat ``{"metadata[key]": value}`` pairs."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "date", "server"}


class PeerServer:
    """An HTTP server on 127.0.0.1 that answers the routes a test registers
    (``route(method, path_regex, handler)``; the handler takes the :class:`PeerRequest`
    and returns ``(status, body)`` or ``(status, body, headers)``, a dict or list body
    being sent as JSON), forwards any other request to ``upstream``, and records
    every request in ``requests``."""

    def __init__(self, upstream: str | None = None):
        self.upstream = upstream.rstrip("/") if upstream else None
        self.routes: list[tuple[str, re.Pattern, object]] = []
        self.requests: list[PeerRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, method: str, pattern: str, handler) -> None:
        self.routes.insert(0, (method.upper(), re.compile(pattern), handler))  # later routes win

    @property
    def url(self) -> str:
        assert self._server is not None, "PeerServer not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "PeerServer":
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = PeerRequest(method=self.command, path=parts.path, query=parse_qs(parts.query),
                                      headers={k.lower(): v for k, v in self.headers.items()}, body=body)
                with peer._lock:
                    peer.requests.append(request)
                status, payload, headers = peer._answer(request, self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="peer-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "PeerServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _answer(self, request: PeerRequest, raw_path: str) -> tuple[int, bytes, dict]:
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if method == request.method and match:
                request.match = match
                answer = handler(request)
                status, body, headers = answer if len(answer) == 3 else (*answer, None)
                headers = dict(headers or {})
                if isinstance(body, (dict, list)):
                    body = json.dumps(body).encode()
                    headers.setdefault("Content-Type", "application/json")
                elif isinstance(body, str):
                    body = body.encode()
                return status, body or b"", headers
        if self.upstream is None:
            return 404, json.dumps({"error": f"no route for {request.method} {request.path}"}).encode(), \
                {"Content-Type": "application/json"}
        return self._forward(request, raw_path)

    def _forward(self, request: PeerRequest, raw_path: str) -> tuple[int, bytes, dict]:
        target = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP}
            conn.request(request.method, (target.path or "") + raw_path, body=request.body or None, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            return response.status, payload, {k: v for k, v in response.getheaders()
                                              if k.lower() not in _HOP_BY_HOP}
        finally:
            conn.close()


@contextmanager
def stalled_server():
    """A 127.0.0.1 port that accepts connections and never answers; yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, name="stalled-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        listener.close()


# ---------------------------------------------------------------- the contract


@lru_cache(maxsize=None)
def _document(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _resolve(doc: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def find_operation(doc: dict, method: str, path: str) -> tuple[str, dict] | None:
    """The (template, operation) of the document that serves ``method path``."""
    for template, item in doc.get("paths", {}).items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    return None


def spec_violations(spec: str | Path, request: PeerRequest) -> list[str]:
    """What the vendor's OpenAPI document ``spec`` would refuse in ``request``: an
    unknown operation, a missing required header, a JSON body that does not match
    the schema, a form parameter the operation does not declare."""
    import jsonschema

    doc = _document(str(spec))
    found = find_operation(doc, request.method, request.path)
    if found is None:
        return [f"{request.method} {request.path}: no such operation in {Path(spec).name}"]
    template, op = found
    where = f"{request.method} {template}"
    problems = []
    for param in op.get("parameters", []):
        param = _resolve(doc, param)
        if param.get("in") == "header" and param.get("required") and not request.header(param["name"]):
            problems.append(f"{where}: required header {param['name']} is missing")
    body_spec = _resolve(doc, op.get("requestBody") or {})
    content = body_spec.get("content") or {}
    media = request.header("content-type").split(";")[0].strip().lower()
    if not request.body:
        if body_spec.get("required"):
            problems.append(f"{where}: the request body is required")
        return problems
    if media not in content:
        return problems + [f"{where}: body sent as {media or '(no type)'}, the operation takes {sorted(content)}"]
    schema = _resolve(doc, content[media].get("schema") or {})
    if media == "application/json":
        try:
            value = request.json()
        except ValueError as exc:
            return problems + [f"{where}: the body is not JSON ({exc})"]
        validator = jsonschema.Draft4Validator({**schema, "components": doc.get("components", {})})
        problems += [f"{where}: {'/'.join(str(p) for p in error.absolute_path) or 'body'}: {error.message}"
                     for error in validator.iter_errors(value)]
    elif media == "application/x-www-form-urlencoded":
        names = {key.split("[", 1)[0] for key in request.form()}
        declared = set((schema.get("properties") or {}))
        if schema.get("additionalProperties") is False:
            problems += [f"{where}: unknown parameter {name!r}" for name in sorted(names - declared)]
        problems += [f"{where}: required parameter {name!r} is missing"
                     for name in schema.get("required", []) if name not in names]
    return problems
