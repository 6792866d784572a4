"""Load-test `registry-index serve` on loopback and report latency percentiles.

Run from the repository root:

    python benchmarks/serve_load.py [--clients 50] [--requests 10000] [--images 300] [--time-limit 300]

It writes a synthetic index of `--images` images in a temporary folder, builds
it, and starts `registry-index serve` on 127.0.0.1 in a subprocess. It fetches
every target once to record the expected response, then `--clients` threads send
`--requests` requests in total: searches, query-string pulls, static files,
missing paths and refused paths. Even-numbered clients keep one connection
open, odd-numbered ones connect for each request. Every response must equal
the recorded one in status and body. The script prints the machine, the command
and a latency table, and exits 1 on any error or when the time limit passes.

The clients run in this process, so on a small machine they compete with the
server for the CPU, and the figures include both sides' costs.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "tests"))

from registry_index import names  # noqa: E402
from registry_index.index import load_index  # noqa: E402
from synthetic import write_index  # noqa: E402

MAX_ERRORS_KEPT = 20


@dataclass
class LoadResult:
    """Latencies in seconds of the completed requests, by connection style, and what went wrong."""

    kept_alive: list[float] = field(default_factory=list)
    reconnecting: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    elapsed: float = 0.0

    @property
    def latencies(self) -> list[float]:
        return self.kept_alive + self.reconnecting

    def add_error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)


def cpu_model() -> str:
    """Return the CPU model from /proc/cpuinfo, or the platform's description where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def start_server(site: Path, environment: dict[str, str] | None = None) -> tuple[subprocess.Popen, tuple[str, int]]:
    """Start `registry-index serve` for `site` on a free loopback port; return the process and its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "registry_index", "-q", "serve", "--site", str(site), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment,
    )
    line = process.stdout.readline()
    if not line.startswith("serving "):
        process.kill()
        raise RuntimeError(f"registry-index serve did not start: {line!r}")
    host_port = line.rsplit("http://", 1)[1].strip().rstrip("/")
    host, port = host_port.rsplit(":", 1)
    return process, (host, int(port))


def request_targets(index_root: Path, seed: int = 1) -> list[str]:
    """Return a mix of request targets for the index at `index_root`: mostly valid, some missing or refused."""
    rng = random.Random(seed)
    index = load_index(index_root)
    images = index.sorted_images()
    chosen = rng.sample(images, min(20, len(images)))
    targets = ["/", "/v1/index.json", "/v1/search/_all.json", "/nowhere", "/v1/pull/nobody/x/1.json",
               "/v1/%2e%2e/%2e%2e/etc/passwd", "/v1/pull?uniqueName=nobody/x:1", "/v1/search?q=%ff"]
    for image in chosen:
        version = image.versions[0].version
        unique = names.unique_name(image.author, image.name, version)
        targets += [
            f"/v1/search?q={image.name[:3]}",
            f"/v1/search?q={image.name}",
            f"/v1/pull?uniqueName={unique}",
            f"/v1/pull?uniqueName=anonymous/{image.name}:latest",
            f"/v1/pull?name={image.name}&author={image.author}",
            f"/v1/pull/{names.identity(image.author)}/{names.identity(image.name)}/latest.json",
            f"/v1/images/{names.identity(image.author)}/{names.identity(image.name)}.json",
        ]
    return targets


def fetch(connection: http.client.HTTPConnection, target: str) -> tuple[int, bytes]:
    connection.request("GET", target)
    response = connection.getresponse()
    return response.status, response.read()


def record_responses(address: tuple[str, int], targets: list[str]) -> dict[str, tuple[int, bytes]]:
    """Fetch every target once, one at a time, and return the responses the load must reproduce."""
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        return {target: fetch(connection, target) for target in targets}
    finally:
        connection.close()


def _client(number: int, address, targets, expected, count: int, deadline: float, result: LoadResult, lock: threading.Lock, seed: int) -> None:
    rng = random.Random(seed * 1000 + number)
    keep_alive = number % 2 == 0
    connection = None
    latencies = []
    for _ in range(count):
        if time.monotonic() > deadline:
            with lock:
                result.add_error(f"client {number}: time limit passed")
            break
        target = rng.choice(targets)
        started = time.perf_counter()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(*address, timeout=30)
            response = fetch(connection, target)
        except (OSError, http.client.HTTPException) as error:
            with lock:
                result.add_error(f"client {number}: GET {target}: {type(error).__name__}: {error}")
            connection.close()
            connection = None
            continue
        latencies.append(time.perf_counter() - started)
        if response != expected[target]:
            with lock:
                result.add_error(f"client {number}: GET {target}: status {response[0]}, {len(response[1])} bytes, differs from the recorded response")
        if not keep_alive:
            connection.close()
            connection = None
    if connection is not None:
        connection.close()
    with lock:
        (result.kept_alive if keep_alive else result.reconnecting).extend(latencies)


def run_load(address, targets: list[str], expected: dict, clients: int, requests: int, time_limit: float, seed: int = 1) -> LoadResult:
    """Send `requests` requests from `clients` threads at once; stop at `time_limit` seconds."""
    result = LoadResult()
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit
    shares = [requests // clients + (1 if number < requests % clients else 0) for number in range(clients)]
    threads = [
        threading.Thread(target=_client, args=(number, address, targets, expected, share, deadline, result, lock, seed))
        for number, share in enumerate(shares)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    return result


def percentile(values: list[float], fraction: float) -> float:
    """Return the value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent client threads")
    parser.add_argument("--requests", type=int, default=10_000, help="requests in total")
    parser.add_argument("--images", type=int, default=300, help="images in the synthetic index")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds before the clients stop")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args(argv)

    # Other processes on the machine skew the figures, so the load average is printed with them.
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="serve-load-") as folder:
        index = write_index(Path(folder) / "index", images=arguments.images, seed=arguments.seed)
        site = Path(folder) / "site"
        environment = dict(os.environ, PYTHONPATH=str(REPOSITORY))
        subprocess.run([sys.executable, "-m", "registry_index", "-q", "build", "--index", str(index), "--out", str(site)],
                       check=True, stdout=subprocess.DEVNULL, env=environment)
        process, address = start_server(site, environment)
        try:
            targets = request_targets(index, arguments.seed)
            expected = record_responses(address, targets)
            result = run_load(address, targets, expected, arguments.clients, arguments.requests, arguments.time_limit, arguments.seed)
        finally:
            process.terminate()
            process.wait(timeout=10)

    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"command: python benchmarks/serve_load.py --clients {arguments.clients} --requests {arguments.requests} "
          f"--images {arguments.images} --seed {arguments.seed}")
    print(f"load average (1 min) before and after: {load_before:.2f}, {os.getloadavg()[0]:.2f}")
    print(f"targets: {len(targets)} distinct; completed: {len(result.latencies)} in {result.elapsed:.1f} s, "
          f"{len(result.latencies) / result.elapsed:.0f} requests/s; errors: {result.error_count}")
    print()
    print("| connections | clients | requests | p50 ms | p90 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = [("all", arguments.clients, result.latencies),
            ("kept alive", (arguments.clients + 1) // 2, result.kept_alive),
            ("one per request", arguments.clients // 2, result.reconnecting)]
    for label, clients, latencies in rows:
        if not latencies:
            continue
        milliseconds = [value * 1000 for value in latencies]
        print(f"| {label} | {clients} | {len(milliseconds)} | {percentile(milliseconds, 0.50):.1f} | "
              f"{percentile(milliseconds, 0.90):.1f} | {percentile(milliseconds, 0.99):.1f} | {max(milliseconds):.1f} |")
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if result.error_count else 0


if __name__ == "__main__":
    sys.exit(main())
