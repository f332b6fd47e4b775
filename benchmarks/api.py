"""HTTP API benchmark: prints figures, asserts nothing about speed.

Serves the API as `lendcore serve` does (uvicorn running the `create_app`
factory, JSON request logs on) in a subprocess on 127.0.0.1 and a free port,
on a fresh SQLite file and then on a fresh PostgreSQL schema. Users, API keys
and accounts are made through the services before the server starts. A bounded
load (a request count and a time limit per phase) is driven from this process
over loopback by a lean asyncio HTTP/1.1 client (see LoadClient) with a fixed
number of concurrent kept-alive connections, one phase at a time:

- reads: GET /v1/accounts/{code}/balance, as a servicing user;
- manual entries, maker-checker (the permission table requires a second
  accountant for them): POST /v1/journal-entries (submits, as the maker), then
  POST /v1/approvals/{id}/approve (as a second accountant; the approval books
  the two-posting entry);
- direct bookings by a servicing user, the one booking path the permission
  table lets a single person take today: POST /v1/holds (places holds), then
  POST /v1/holds/{id}/post (each books a two-posting entry).

Per operation: requests, requests/s, p50 and p99 latency (ms, as the client
sees it). Targets are printed beside: >= 1,000 bookings/s, reads p99 <= 20 ms.
The client shares the machine with the server: on a small machine its own CPU
use lowers the figures, which the notes say.

    python benchmarks/api.py                    # full run, both databases
    python benchmarks/api.py --quick            # smoke run, about a minute
    python benchmarks/api.py --sqlite-only
    python benchmarks/api.py --pg-workers 1,2   # uvicorn worker processes on PostgreSQL
    python benchmarks/api.py --sqlite-workers 1 # and on SQLite (one writer at a time)
    python benchmarks/api.py --concurrency 8    # client connections (reads also run over 1)
    python benchmarks/api.py --json             # one JSON document on stdout
    python benchmarks/api.py --py-spy DIR       # also profile the server per phase
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy
from rich.console import Console, JustifyMethod
from rich.table import Table
from sqlalchemy import create_engine, text

from lendcore.ledger.model import AccountSpec, AccountType
from lendcore.services import identity, ledger
from lendcore.services.clock import current_business_date
from lendcore.store.database import Database, open_database

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"
CURRENCY = "USD"

TARGET_BOOKINGS_PER_S = 1_000
TARGET_READ_P99_MS = 20.0

# Accounts the load books between and reads (pairs drawn at random).
ACCOUNTS = 64
# Untimed requests before the timed phases: imports, statement caches, pools.
WARMUP_READS = 200
WARMUP_BOOKINGS = 20
# How long the server may take to answer /readyz.
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 15.0
CLIENT_TIMEOUT_S = 60.0
PG_CONNECT_TIMEOUT_S = 3
TABLE_WIDTH_PIPED = 200
# Lines of a profile summary.
PROFILE_TOP = 15


@dataclass(frozen=True)
class Counts:
    """How much each phase does; each phase also stops at `phase_time_limit_s`."""

    reads: int
    submits: int
    holds: int
    concurrency: int
    phase_time_limit_s: float


# Eight connections: enough to keep both CPUs of this machine busy (two server
# processes, each with requests queued while another waits on the database),
# not so many that the figures measure queueing in front of two CPUs. Reads are
# also measured over one connection: the latency of a request that waits for
# no other.
CONCURRENCY_DEFAULT = 8
FULL = Counts(
    reads=20_000,
    submits=4_000,
    holds=3_000,
    concurrency=CONCURRENCY_DEFAULT,
    phase_time_limit_s=60.0,
)
QUICK = Counts(
    reads=2_000,
    submits=400,
    holds=300,
    concurrency=CONCURRENCY_DEFAULT,
    phase_time_limit_s=15.0,
)


@dataclass
class Figure:
    database: str
    server_workers: int
    connections: int
    operation: str
    requests: int
    seconds: float
    per_s: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    # CPU time of the server processes per request during the phase (ms), and of
    # this load generator (% of one CPU): load-independent where req/s is not.
    server_cpu_ms_per_request: float | None = None
    client_cpu_pct: float | None = None
    target: str = ""
    passed: bool | None = None
    detail: str = ""


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    profiles: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


# --- a lean HTTP/1.1 client -------------------------------------------------------------
#
# httpx costs about 2 ms of CPU per request, as much as the server's work, and
# the load generator shares the server's 2 CPUs: its cost lowered the figures.
# This client writes each request as one buffer over a kept-alive connection and
# reads the response by Content-Length (or chunks): what a load generator needs
# and no more.


class HttpError(Exception):
    """The connection failed, timed out or returned something that is not HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> tuple[Reply, bool]:
        """Send one request; the reply, and whether the connection may be reused."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 "):
            raise HttpError(f"not an HTTP/1.1 response: {lines[0][:80]!r}")
        status = int(lines[0][9:12])
        length: int | None = None
        chunked = False
        keep = True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                keep = "close" not in value.lower()
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(p[:-2] for p in parts)
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body = await self.reader.read()
            keep = False
        return Reply(status, body), keep

    def close(self) -> None:
        self.writer.close()


class LoadClient:
    """At most `connections` kept-alive connections to one server; a request
    waits for a free one."""

    def __init__(self, host: str, port: int, connections: int, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(connections)
        self._host_header = f"Host: {host}:{port}\r\n"

    async def get(self, path: str, headers: dict[str, str]) -> Reply:
        return await self._request("GET", path, headers, None)

    async def post(self, path: str, body: Any, headers: dict[str, str]) -> Reply:
        return await self._request("POST", path, headers, json.dumps(body).encode())

    async def _request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> Reply:
        head = [f"{method} {path} HTTP/1.1\r\n", self._host_header]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if body is not None:
            head.append(f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
        head.append("\r\n")
        request = "".join(head).encode() + (body or b"")
        async with self._slots:
            connection = self._idle.pop() if self._idle else None
            try:
                async with asyncio.timeout(self.timeout_s):
                    if connection is None:
                        reader, writer = await asyncio.open_connection(self.host, self.port)
                        connection = _Connection(reader, writer)
                    reply, keep = await connection.exchange(request)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                if connection is not None:
                    connection.close()
                raise HttpError(f"{type(exc).__name__}: {exc}") from exc
            if keep:
                self._idle.append(connection)
            else:
                connection.close()
            return reply

    async def aclose(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


# --- measuring -----------------------------------------------------------------------


def percentile_ms(latencies_ns: Sequence[int], fraction: float) -> float | None:
    """Nearest-rank percentile of nanosecond latencies, in milliseconds."""
    if not latencies_ns:
        return None
    ordered = sorted(latencies_ns)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1] / 1e6


@dataclass
class Recorder:
    """Latencies and failures per operation during one phase."""

    latencies_ns: dict[str, list[int]] = field(default_factory=dict)
    successes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    # One failed response per operation, to show what went wrong.
    samples: dict[str, str] = field(default_factory=dict)

    async def call(self, operation: str, request: Awaitable[Reply], expect: int) -> Reply | None:
        started = time.perf_counter_ns()
        try:
            response = await request
        except HttpError as exc:
            self.failures[operation] += 1
            self.samples.setdefault(operation, str(exc))
            return None
        self.latencies_ns.setdefault(operation, []).append(time.perf_counter_ns() - started)
        if response.status_code != expect:
            self.failures[operation] += 1
            self.samples.setdefault(operation, f"{response.status_code} {response.text[:200]}")
            return None
        self.successes[operation] += 1
        return response


@dataclass(frozen=True)
class Phase:
    units: int
    seconds: float
    server_cpu_s: float | None
    client_cpu_s: float


def process_tree_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of `pid` and its descendants (Linux /proc), or None."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        parent_of: dict[int, int] = {}
        cpu_of: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after the command (which may hold spaces) closing parenthesis.
            fields = stat[stat.rindex(")") + 2 :].split()
            parent_of[int(entry.name)] = int(fields[1])
            cpu_of[int(entry.name)] = int(fields[11]) + int(fields[12])
    except (OSError, ValueError):
        return None
    tree = {pid}
    grew = True
    while grew:
        children = {p for p, parent in parent_of.items() if parent in tree} - tree
        grew = bool(children)
        tree |= children
    return sum(cpu_of.get(p, 0) for p in tree) / ticks


async def drive(
    count: int,
    concurrency: int,
    time_limit_s: float,
    unit: Callable[[int], Awaitable[None]],
    server_pid: int,
) -> Phase:
    """Run `unit(0..count-1)` on `concurrency` tasks until done or out of time."""
    next_index = 0
    deadline = time.perf_counter() + time_limit_s

    async def worker() -> None:
        nonlocal next_index
        while next_index < count and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            await unit(index)

    server_before = process_tree_cpu_s(server_pid)
    client_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    server_after = process_tree_cpu_s(server_pid)
    server_cpu = (
        None if server_before is None or server_after is None else server_after - server_before
    )
    return Phase(next_index, seconds, server_cpu, time.process_time() - client_before)


# --- the database and the server ------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    keys: dict[str, str]
    accounts: list[str]
    hold_expiry: str


def seed(db: Database) -> Seeded:
    """Users with API keys and a chart of accounts, through the services."""
    keys = {}
    for username, role in (
        ("maker", "accountant"),
        ("checker", "accountant"),
        ("teller", "servicing"),
    ):
        identity.create_user(db, username, [role])
        keys[username] = identity.create_api_key(db, username, label="benchmark").token
    accounts = [f"B{n:04d}" for n in range(ACCOUNTS)]
    for code in accounts:
        ledger.open_account(db, AccountSpec(code, f"Bench {code}", AccountType.ASSET, CURRENCY))
    with db.reading() as conn:
        expiry = current_business_date(conn) + timedelta(days=30)
    return Seeded(keys, accounts, expiry.isoformat())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    base_url: str
    log_path: Path


@contextmanager
def serve(db_url: str, workers: int, directory: Path) -> Iterator[Server]:
    """`lendcore serve` on a free loopback port, stopped (by its pid) on exit."""
    port = free_port()
    log_path = directory / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "lendcore.api.app:create_app",
                "--factory",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env={**os.environ, "LENDCORE_DB_URL": db_url},
            stdout=log,
            stderr=log,
        )
    server = Server(process, port, f"http://{HOST}:{port}", log_path)
    try:
        wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(server: Server) -> None:
    deadline = time.perf_counter() + SERVER_START_TIMEOUT_S
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if httpx.get(server.base_url + "/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = server.log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the server did not become ready:\n{tail}")


@contextmanager
def sqlite_url() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="lendcore-bench-api-")
    try:
        yield f"sqlite:///{directory}/bench.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _pg_admin(base_url: str) -> sqlalchemy.Engine:
    return create_engine(
        base_url.replace("postgresql://", "postgresql+psycopg://", 1),
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
    )


def pg_server_version(base_url: str) -> str | None:
    engine = _pg_admin(base_url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
    except sqlalchemy.exc.OperationalError:
        return None
    finally:
        engine.dispose()


@contextmanager
def pg_schema_url(base_url: str) -> Iterator[str]:
    """A fresh schema, dropped on exit; yields a URL whose search_path is it."""
    schema = f"bench_api_{uuid.uuid4().hex[:10]}"
    engine = _pg_admin(base_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


# --- profiling ------------------------------------------------------------------------


def py_spy_executable() -> str:
    """py-spy beside this interpreter (a virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"


@contextmanager
def py_spy(pid: int, output: Path | None) -> Iterator[None]:
    """Sample the server (and its worker processes) while the block runs."""
    if output is None:
        yield
        return
    spy = subprocess.Popen(
        [
            py_spy_executable(),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            # Only the thread holding the GIL: where the server spends its CPU,
            # not threads waiting for work, a lock or the database.
            "--gil",
            "--rate",
            "100",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        # SIGINT makes py-spy write its samples and exit.
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def summarise_profile(path: Path) -> dict[str, list[tuple[str, float]]]:
    """Top frames of a py-spy raw (collapsed) profile: by own samples, and the
    lendcore functions by samples spent in them or below (% of all samples)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        count = int(samples)
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if "lendcore" in frame:
                inclusive[frame] += count
    if total == 0:
        return {}

    def top(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, 100.0 * n / total) for frame, n in counter.most_common(PROFILE_TOP)]

    return {"own": top(own), "lendcore inclusive": top(inclusive)}


# --- the load ---------------------------------------------------------------------------


def add_figure(
    report: Report,
    database: str,
    workers: int,
    operation: str,
    recorder: Recorder,
    key: str,
    phase: Phase,
    *,
    connections: int,
    target: str = "",
    passed: bool | None = None,
    detail: str = "",
) -> Figure:
    """One line of the table."""
    latencies = recorder.latencies_ns.get(key, [])
    seconds = phase.seconds
    sent = len(latencies) + recorder.failures[key]
    figure = Figure(
        database=database,
        server_workers=workers,
        connections=connections,
        operation=operation,
        requests=len(latencies),
        seconds=round(seconds, 3),
        per_s=len(latencies) / seconds if seconds > 0 else 0.0,
        p50_ms=percentile_ms(latencies, 0.50),
        p99_ms=percentile_ms(latencies, 0.99),
        errors=recorder.failures[key],
        server_cpu_ms_per_request=None
        if phase.server_cpu_s is None or sent == 0
        else 1000.0 * phase.server_cpu_s / sent,
        client_cpu_pct=100.0 * phase.client_cpu_s / seconds if seconds > 0 else None,
        target=target,
        passed=passed,
        detail=(detail + " " + recorder.samples.get(key, "")).strip(),
    )
    report.figures.append(figure)
    return figure


async def run_load(
    server: Server,
    seeded: Seeded,
    database: str,
    workers: int,
    counts: Counts,
    report: Report,
    profile_dir: Path | None,
) -> None:
    rng = random.Random(7)
    pid = server.process.pid
    run = uuid.uuid4().hex[:8]
    auth = {name: {"X-API-Key": key} for name, key in seeded.keys.items()}

    def pair() -> tuple[str, str]:
        debit, credit = rng.sample(seeded.accounts, 2)
        return debit, credit

    def entry(key: str) -> dict[str, Any]:
        debit, credit = pair()
        return {
            "idempotency_key": key,
            "postings": [
                {"account": debit, "side": "debit", "amount": "1.00"},
                {"account": credit, "side": "credit", "amount": "1.00"},
            ],
        }

    def hold(key: str) -> dict[str, Any]:
        debit, credit = pair()
        return {
            "idempotency_key": key,
            "debit_account": debit,
            "credit_account": credit,
            "amount": "5.00",
            "currency": CURRENCY,
            "expires_on": seeded.hold_expiry,
        }

    def profile(phase: str) -> Path | None:
        if profile_dir is None:
            return None
        return profile_dir / f"{database.lower()}-w{workers}-{phase}.txt"

    async def phase(
        name: str,
        count: int,
        unit: Callable[[int], Awaitable[None]],
        concurrency: int = counts.concurrency,
    ) -> Phase:
        with py_spy(pid, profile(name)):
            return await drive(count, concurrency, counts.phase_time_limit_s, unit, pid)

    client = LoadClient(HOST, server.port, counts.concurrency, CLIENT_TIMEOUT_S)
    try:
        # Warm up: every path, several times, untimed.
        warm = Recorder()
        for n in range(WARMUP_READS):
            code = seeded.accounts[n % len(seeded.accounts)]
            await warm.call("read", client.get(f"/v1/accounts/{code}/balance", auth["teller"]), 200)
        for n in range(WARMUP_BOOKINGS):
            submitted = await warm.call(
                "submit",
                client.post("/v1/journal-entries", entry(f"{run}-warm-{n}"), auth["maker"]),
                202,
            )
            if submitted is not None:
                await warm.call(
                    "approve",
                    client.post(
                        f"/v1/approvals/{submitted.json()['id']}/approve", {}, auth["checker"]
                    ),
                    200,
                )
            placed = await warm.call(
                "place", client.post("/v1/holds", hold(f"{run}-warm-hold-{n}"), auth["teller"]), 201
            )
            if placed is not None:
                await warm.call(
                    "post",
                    client.post(
                        f"/v1/holds/{placed.json()['id']}/post",
                        {"idempotency_key": f"{run}-warm-post-{n}"},
                        auth["teller"],
                    ),
                    201,
                )
        if warm.failures:
            report.notes.append(f"{database} warm-up failures: {dict(warm.samples)}")

        # Reads: over one connection (no queueing), then over all of them.
        for connections in sorted({1, counts.concurrency}):
            reads = Recorder()

            async def read(_index: int, reads: Recorder = reads) -> None:
                code = rng.choice(seeded.accounts)
                await reads.call(
                    "read", client.get(f"/v1/accounts/{code}/balance", auth["teller"]), 200
                )

            single = connections == 1 and counts.concurrency > 1
            reading = await phase(
                "reads-1" if single else "reads",
                max(1, counts.reads // 4) if single else counts.reads,
                read,
                connections,
            )
            figure = add_figure(
                report,
                database,
                workers,
                "GET balance",
                reads,
                "read",
                reading,
                connections=connections,
                target=f"p99 <= {TARGET_READ_P99_MS:.0f} ms",
            )
            figure.passed = figure.p99_ms is not None and figure.p99_ms <= TARGET_READ_P99_MS

        # Manual entries, maker-checker: submits, then approvals (the bookings).
        submits = Recorder()
        approval_ids: list[int] = []

        async def submit(index: int) -> None:
            response = await submits.call(
                "submit",
                client.post("/v1/journal-entries", entry(f"{run}-{index}"), auth["maker"]),
                202,
            )
            if response is not None:
                approval_ids.append(response.json()["id"])

        submitting = await phase("submits", counts.submits, submit)
        add_figure(
            report,
            database,
            workers,
            "POST journal-entries (submit)",
            submits,
            "submit",
            submitting,
            connections=counts.concurrency,
        )

        approvals = Recorder()

        async def approve(index: int) -> None:
            await approvals.call(
                "approve",
                client.post(f"/v1/approvals/{approval_ids[index]}/approve", {}, auth["checker"]),
                200,
            )

        approving = await phase("approvals", len(approval_ids), approve)
        figure = add_figure(
            report,
            database,
            workers,
            "POST approvals/{id}/approve (books)",
            approvals,
            "approve",
            approving,
            connections=counts.concurrency,
            target=f">= {TARGET_BOOKINGS_PER_S:,}/s",
        )
        figure.passed = figure.per_s >= TARGET_BOOKINGS_PER_S
        booked = approvals.successes["approve"]
        if submitting.seconds + approving.seconds > 0:
            end_to_end = booked / (submitting.seconds + approving.seconds)
            report.notes.append(
                f"{database} (workers {workers}): maker-checker end to end {end_to_end:,.0f} "
                f"bookings/s (submit + approve, {booked:,} entries)"
            )

        # Direct bookings by a servicing user: place holds, then post them (each
        # post books a two-posting entry, no second person needed).
        places = Recorder()
        hold_ids: list[int] = []

        async def place(index: int) -> None:
            response = await places.call(
                "place", client.post("/v1/holds", hold(f"{run}-hold-{index}"), auth["teller"]), 201
            )
            if response is not None:
                hold_ids.append(response.json()["id"])

        placing = await phase("places", counts.holds, place)
        add_figure(
            report,
            database,
            workers,
            "POST holds (place)",
            places,
            "place",
            placing,
            connections=counts.concurrency,
        )

        posts = Recorder()

        async def post(index: int) -> None:
            await posts.call(
                "post",
                client.post(
                    f"/v1/holds/{hold_ids[index]}/post",
                    {"idempotency_key": f"{run}-post-{index}"},
                    auth["teller"],
                ),
                201,
            )

        posting = await phase("posts", len(hold_ids), post)
        figure = add_figure(
            report,
            database,
            workers,
            "POST holds/{id}/post (books)",
            posts,
            "post",
            posting,
            connections=counts.concurrency,
            target=f">= {TARGET_BOOKINGS_PER_S:,}/s",
        )
        figure.passed = figure.per_s >= TARGET_BOOKINGS_PER_S
    finally:
        await client.aclose()

    if profile_dir is not None:
        for name in ("reads-1", "reads", "submits", "approvals", "places", "posts"):
            path = profile(name)
            if path is not None:
                summary = summarise_profile(path)
                if summary:
                    report.profiles[f"{database} w{workers} {name}"] = summary


def run_async(work: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (uvicorn[standard] brings it): the
    load generator then takes less of the CPUs it shares with the server."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(work)
        return
    uvloop.run(work)


def bench(
    database: str,
    db_url: str,
    workers: int,
    counts: Counts,
    report: Report,
    profile_dir: Path | None,
    console: Console,
) -> None:
    """Seed a fresh database, serve it with `workers` processes, drive the load."""
    db = open_database(db_url)
    try:
        seeded = seed(db)
    finally:
        db.dispose()
    with tempfile.TemporaryDirectory(prefix="lendcore-bench-api-") as logs:
        console.log(f"{database}: serving with {workers} worker(s)")
        with serve(db_url, workers, Path(logs)) as server:
            run_async(run_load(server, seeded, database, workers, counts, report, profile_dir))


# --- output ----------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    def load() -> float | None:
        try:
            return round(os.getloadavg()[0], 2)
        except OSError:
            return None

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "httpx": httpx.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "load_average_1min": load(),
    }


def render(report: Report, console: Console) -> None:
    table = Table(title="lendcore HTTP API benchmark", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("database", "left"),
        ("workers", "right"),
        ("conns", "right"),
        ("operation", "left"),
        ("requests", "right"),
        ("seconds", "right"),
        ("req/s", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("errors", "right"),
        ("server CPU ms/req", "right"),
        ("client CPU", "right"),
        ("target", "left"),
        ("", "left"),
        ("notes", "left"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify)

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.2f}"

    for f in report.figures:
        mark = {True: "[green]✓ pass[/]", False: "[red]✗ miss[/]", None: ""}[f.passed]
        table.add_row(
            f.database,
            str(f.server_workers),
            str(f.connections),
            f.operation,
            f"{f.requests:,}",
            f"{f.seconds:,.2f}",
            f"{f.per_s:,.0f}",
            ms(f.p50_ms),
            ms(f.p99_ms),
            f"{f.errors:,}",
            ms(f.server_cpu_ms_per_request),
            "-" if f.client_cpu_pct is None else f"{f.client_cpu_pct:.0f}%",
            f.target or "-",
            mark,
            f.detail,
        )
    console.print(table)
    for name, summary in report.profiles.items():
        for kind, rows in summary.items():
            profile = Table(title=f"server profile: {name} ({kind})", title_justify="left")
            profile.add_column("% samples", justify="right")
            profile.add_column("frame")
            for frame, share in rows:
                profile.add_row(f"{share:.1f}", frame)
            console.print(profile)
    env = report.environment
    console.print(
        f"Python {env['python']}, httpx {env['httpx']}, SQLAlchemy {env['sqlalchemy']}, "
        f"{env['cpu_count']} CPUs, load {env['load_average_1min']} -> "
        f"{env.get('load_average_1min_at_end')}, {env['platform']}"
    )
    for note in report.notes:
        console.print(f"note: {note}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL database URL")
    parser.add_argument(
        "--pg-workers", default="1,2", help="uvicorn worker counts to try on PostgreSQL"
    )
    parser.add_argument(
        "--sqlite-workers", default="1", help="uvicorn worker counts to try on SQLite"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help=f"concurrent client connections (default {CONCURRENCY_DEFAULT})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--py-spy", type=Path, help="write py-spy profiles of the server here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # A terminated run still stops its servers and drops its schema (finally blocks run).
    signal.signal(signal.SIGTERM, lambda _signo, _frame: sys.exit(128 + signal.SIGTERM))
    counts = QUICK if args.quick else FULL
    if args.concurrency is not None:
        counts = Counts(**{**asdict(counts), "concurrency": max(1, args.concurrency)})
    pg_workers = [max(1, int(w)) for w in args.pg_workers.split(",") if w.strip()]
    sqlite_workers = [max(1, int(w)) for w in args.sqlite_workers.split(",") if w.strip()]
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    log_console = Console(stderr=True)
    out = Console() if Console().is_terminal else Console(width=TABLE_WIDTH_PIPED)
    report = Report(
        config={"mode": "quick" if args.quick else "full", **asdict(counts)},
        environment=environment(),
    )
    started = time.perf_counter()
    for workers in sqlite_workers:
        # SQLite has one writer at a time; several processes queue for it in
        # SQLite's busy handler, which sleeps: one process is the default.
        with sqlite_url() as url:
            bench("SQLite", url, workers, counts, report, args.py_spy, log_console)
    if args.sqlite_only:
        report.notes.append("PostgreSQL skipped (--sqlite-only)")
    elif (version := pg_server_version(args.pg_url)) is None:
        report.notes.append(f"PostgreSQL skipped: no answer at {args.pg_url}")
    else:
        report.environment["postgresql"] = version
        for workers in pg_workers:
            with pg_schema_url(args.pg_url) as url:
                bench("PostgreSQL", url, workers, counts, report, args.py_spy, log_console)
    report.config["wall_seconds"] = round(time.perf_counter() - started, 2)
    report.environment["load_average_1min_at_end"] = environment()["load_average_1min"]
    cpus = os.cpu_count() or 1
    report.notes.append(
        f"the load generator runs on the same {cpus} CPU(s) as the server "
        f"({counts.concurrency} connections, one asyncio process): figures include its cost"
    )
    load = max(
        report.environment.get("load_average_1min") or 0.0,
        report.environment.get("load_average_1min_at_end") or 0.0,
    )
    if load > cpus / 2:
        report.notes.append(
            f"the machine was busy (1-min load average up to {load:.1f} on {cpus} CPUs): "
            "figures are pessimistic; rerun on a quiet machine"
        )
    if args.json:
        document = {
            "figures": [asdict(f) for f in report.figures],
            "profiles": report.profiles,
            "notes": report.notes,
            "environment": report.environment,
            "config": report.config,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        render(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
