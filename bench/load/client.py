"""The client mix: a fixed, shuffled list of requests sent by a bounded pool of
asyncio tasks over httpx; what came back, kept for the report and the checks."""
from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from kassa.testing.fake_gateway import FakeGateway, sign

from .gateway import SharedGateway
from .seeding import WEBHOOK_SECRET, Seeded

CAPTURES_PER_INVOICE = 3
KINDS = ("list", "get", "order", "capture", "webhook")
MIX = {"list": 0.45, "get": 0.15, "order": 0.10, "capture": 0.18, "webhook": 0.12}
READS = {"list": 0.75, "get": 0.25}  # reads alone: their latency without the writes' CPU (password hashing)
EXPECTED = {"list": {200}, "get": {200}, "order": {201}, "capture": {201, 409}, "webhook": {200}}


@dataclass
class Outcome:
    times: dict = field(default_factory=lambda: defaultdict(list))
    statuses: dict = field(default_factory=lambda: defaultdict(Counter))
    errors: list = field(default_factory=list)
    captured: dict = field(default_factory=lambda: defaultdict(list))  # invoice id -> 201 payment bodies
    orders: int = 0
    webhook_events: dict = field(default_factory=dict)  # event id -> body
    webhook_sends: Counter = field(default_factory=Counter)
    applied: int = 0
    replayed: int = 0
    seconds: float = 0.0


def plan(requests: int, seeded: Seeded, rng: random.Random, mix: dict = MIX) -> list[tuple]:
    """A fixed list of ``requests`` requests: the mix, shuffled in groups so that the
    captures of one invoice and the two copies of one webhook run at the same time."""
    counts = {k: int(requests * mix.get(k, 0)) for k in KINDS}
    counts["list"] += requests - sum(counts.values())
    groups: list[list[tuple]] = []
    for _ in range(counts["list"]):
        groups.append([("list", _list_params(rng, seeded))])
    for _ in range(counts["get"]):
        groups.append([("get", rng.choice(seeded.invoice_ids))])
    for n in range(counts["order"]):
        groups.append([("order", n)])
    targets = list(seeded.capture_ids)
    n = counts["capture"]
    while n > 0:
        invoice_id = targets.pop(0) if targets else rng.choice(seeded.capture_ids)
        size = min(CAPTURES_PER_INVOICE, n)
        groups.append([("capture", invoice_id)] * size)
        n -= size
    n, event = counts["webhook"], 0
    while n > 0:
        size = min(2, n)
        groups.append([("webhook", f"evt_{seeded.tag}_{event}")] * size)
        n, event = n - size, event + 1
    rng.shuffle(groups)
    return [item for group in groups for item in group]


def _list_params(rng: random.Random, seeded: Seeded) -> dict:
    params = {"limit": rng.choice((20, 50, 100)), "pages": rng.choice((1, 1, 2, 3))}
    shape = rng.randrange(4)
    if shape in (0, 1):
        params["org_id"] = rng.choice(seeded.org_ids)
    if shape in (1, 2):
        frm = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 600))
        params["date_from"], params["date_to"] = frm.isoformat(), (frm + timedelta(days=120)).isoformat()
    if shape == 3:
        params["status"] = "unpaid"
    return params


ORDER_TEMPLATE = {"contact_name": "Load Contact", "address_line1": "1 MG Road", "address_line2": "Floor 2",
                  "city": "Bengaluru", "state": "Karnataka", "country": "IN", "postal_code": "560001",
                  "mobile": "+91-9382126757"}


async def _send(client, kind: str, arg, seeded: Seeded, out: Outcome, gateway: SharedGateway):
    headers = {"Authorization": f"Bearer {seeded.token}"}
    calls = []  # (status, seconds, response) of each HTTP request this item made
    if kind == "list":
        params = {k: v for k, v in arg.items() if k != "pages"}
        for _ in range(arg["pages"]):
            t = time.perf_counter()
            r = await client.get("/api/v1/invoices", params=params, headers=headers)
            calls.append((r, time.perf_counter() - t))
            cursor = r.json().get("next") if r.status_code == 200 else None
            if not cursor:
                break
            params["after"] = cursor
    elif kind == "get":
        t = time.perf_counter()
        r = await client.get(f"/api/v1/invoices/{arg}", headers=headers)
        calls.append((r, time.perf_counter() - t))
    elif kind == "order":
        body = {**ORDER_TEMPLATE, "organization_name": f"Load Order {arg}", "contact_email": f"order{arg}-{seeded.tag}@load.example",
                "items": [{"service_id": seeded.service_ids[0], "units": 1 + arg % 3}]}
        t = time.perf_counter()
        r = await client.post("/api/v1/orders", json=body, headers=headers)
        calls.append((r, time.perf_counter() - t))
        if r.status_code == 201:
            out.orders += 1
    elif kind == "capture":
        t = time.perf_counter()
        r = await client.post(f"/api/v1/invoices/{arg}/capture", headers=headers)
        calls.append((r, time.perf_counter() - t))
        if r.status_code == 201:
            out.captured[arg].append(r.json())
    else:
        body = out.webhook_events.get(arg)
        if body is None:  # built once, on first send: a charge the gateway really took, or a neutral event
            taken = await asyncio.to_thread(gateway.taken)
            if taken:
                key = sorted(taken)[len(out.webhook_events) % len(taken)]
                event = {"id": arg, "type": "charge.succeeded", "key": key, "reference": taken[key][1]}
            else:
                event = {"id": arg, "type": "customer.updated"}
            body = out.webhook_events[arg] = json.dumps({"events": [event]}).encode()
        out.webhook_sends[arg] += 1
        t = time.perf_counter()
        r = await client.post(f"/webhooks/{seeded.provider_id}/{FakeGateway.CARD}", content=body,
                              headers={"X-Fake-Signature": sign(WEBHOOK_SECRET, body),
                                       "Content-Type": "application/json"})
        calls.append((r, time.perf_counter() - t))
        if r.status_code == 200:
            result = r.json()
            out.applied += result["applied"]
            out.replayed += result["replayed"]
    for r, seconds in calls:
        out.times[kind].append(seconds)
        out.statuses[kind][r.status_code] += 1
        if r.status_code not in EXPECTED[kind]:
            out.errors.append(f"{kind} {r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")


async def drive(base: str, items: list[tuple], concurrency: int, seeded: Seeded, gateway: SharedGateway,
                timeout: float) -> Outcome:
    import httpx

    out = Outcome()
    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def worker():
            while True:
                try:
                    kind, arg = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    await _send(client, kind, arg, seeded, out, gateway)
                except httpx.HTTPError as exc:
                    out.errors.append(f"{kind} {arg}: {type(exc).__name__} {exc}")

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout)
        out.seconds = time.perf_counter() - started
    return out
