"""Start and query a real Prometheus server (the Debian `prometheus` binary) from tests.

    prom = start_prometheus(tmp_path / "prom", targets=["127.0.0.1:3903"])
    try:
        prom.wait_for("sum(gwlog_requests_total)", lambda v: v == 42, timeout=30)
        rows = prom.query("sum by (user) (gwlog_requests_total)")   # the API's `result` list
    finally:
        prom.stop()

Prometheus listens on loopback on a free port, keeps its TSDB in the given directory, and scrapes
the targets as job "gwlog" (the job name the alerts and dashboard use) every `scrape_interval`;
rule files, when given, are evaluated at the same interval. Tests that need Prometheus are skipped
when the binary is not installed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
JOB = "gwlog"


def free_port() -> int:
    """A TCP port that was free a moment ago (bind to port 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_prometheus() -> None:
    if not Path(PROMETHEUS).exists():
        pytest.fail("prometheus binary not installed: run .ci/install-system-packages (make test does)")


@dataclass
class PromServer:
    url: str
    proc: subprocess.Popen
    data_dir: Path
    log_path: Path
    _log: object = field(repr=False, default=None)

    # ---- HTTP API -------------------------------------------------------------------------
    def api(self, path: str, **params: str) -> dict:
        query = urllib.parse.urlencode(params)
        req = urllib.request.Request(f"{self.url}{path}?{query}" if query else f"{self.url}{path}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as e:  # 400/422 carry a JSON error body
            body = json.loads(e.read() or b"{}")
            raise AssertionError(f"Prometheus API {path} {params}: HTTP {e.code}: {body.get('error')}") from e
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus API {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list:
        """Instant query at "now"; returns the `result` list (vector/matrix) or [scalar] for scalars."""
        data = self.api("/api/v1/query", query=expr)
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [result]
        return result

    def targets(self) -> list[dict]:
        return self.api("/api/v1/targets")["activeTargets"]

    def wait_for(self, expr: str, predicate: Callable[[float], bool], timeout: float = 30.0) -> list:
        """Poll `expr` until its first sample's value satisfies `predicate`; returns the result.

        Use an aggregating expression (sum(...), count(...)) when the result has several series.
        An empty result never satisfies the predicate. Raises AssertionError on timeout, with the
        last result and the scrape targets' health.
        """
        deadline = time.monotonic() + timeout
        last: list = []
        while True:
            last = self.query(expr)
            if last:
                sample = last[0]
                raw = sample["value"][1] if isinstance(sample, dict) else sample[1]
                if predicate(float(raw)):
                    return last
            if time.monotonic() > deadline:
                health = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in self.targets()]
                raise AssertionError(f"timeout after {timeout}s waiting on {expr!r}: last={last} targets={health}")
            time.sleep(0.2)

    def wait_for_scrapes(self, n: int = 2, timeout: float = 30.0) -> None:
        """Wait until every target has been scraped successfully at least `n` times."""
        self.wait_for(
            f'min(count_over_time(up{{job="{JOB}"}}[10m]) and on() min(up{{job="{JOB}"}}) == 1)',
            lambda v: v >= n,
            timeout,
        )

    # ---- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def write_config(path: Path, targets: Iterable[str], rule_files: Iterable[str | Path], scrape_interval: str) -> None:
    # JSON is valid YAML: no PyYAML needed to write the config.
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(Path(r).resolve()) for r in rule_files],
        "scrape_configs": [
            {
                "job_name": JOB,
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    path.write_text(json.dumps(config, indent=2))


def start_prometheus(
    tmp_path: Path,
    targets: list[str],
    rule_files: Iterable[str | Path] = (),
    scrape_interval: str = "1s",
    ready_timeout: float = 30.0,
    data_dir: Path | None = None,
    retention: str = "1d",
) -> PromServer:
    """Start Prometheus on 127.0.0.1:<free port> with its config under `tmp_path`; its TSDB is
    `data_dir` when given (e.g. blocks made by promtool), else a fresh one under `tmp_path`."""
    require_prometheus()
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "prometheus.yml"
    write_config(config, targets, rule_files, scrape_interval)
    last_error = ""
    for attempt in range(3):  # the free port can be taken between bind(0) and Prometheus' listen
        port = free_port()
        tsdb = data_dir or tmp_path / f"data{attempt}"
        log_path = tmp_path / f"prometheus{attempt}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tsdb}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.retention.time={retention}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        server = PromServer(f"http://127.0.0.1:{port}", proc, tsdb, log_path, log)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        last_error = server.log_tail()
        server.stop()
        if "address already in use" not in last_error:
            break
    raise RuntimeError(f"prometheus did not become ready:\n{last_error}")
