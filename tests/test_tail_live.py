"""`gwlog tail` as a process: --docker by name under a docker root, self-metrics on /metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.test_parse_live import free_port, series_value

GWLOG = [sys.executable, "-m", "gwlog"]
CID = "3f4e5d6c7b8a" * 5 + "9f0e"  # 64 hex digits, like a real container id


def envelope(n: int, user: str) -> str:
    line = (
        f"2026-08-20T09:16:{n % 60:02d}.{n}Z\tinfo\trequest gateway=default/default listener=llm "
        f"src.addr=172.18.0.7:38810 http.method=POST http.host=gw http.path=/v1/chat/completions "
        f"http.version=HTTP/1.1 http.status=200 protocol=llm gen_ai.provider.name=openai "
        f"gen_ai.request.model=gpt-4o gen_ai.usage.input_tokens=10 gen_ai.usage.output_tokens=2 duration=5ms "
        f'user.email="{user}"\n'
    )
    return json.dumps({"log": line, "stream": "stdout", "time": "2026-08-20T09:16:41.203391112Z"}) + "\n"


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()


def wait_until(port: int, check, timeout: float = 20.0) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = scrape(port)
            if check(text):
                return text
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"condition not met; last scrape:\n{text[-3000:]}")


def test_docker_container_by_name_rotation_and_self_metrics(tmp_path: Path) -> None:
    root = tmp_path / "docker"
    container = root / "containers" / CID
    container.mkdir(parents=True)
    (container / "config.v2.json").write_text(json.dumps({"Name": "/agentgateway", "ID": CID}))
    log = container / f"{CID}-json.log"
    log.write_text("".join(envelope(n, "alice@example.com") for n in range(10)))
    port = free_port()
    proc = subprocess.Popen(
        [*GWLOG, "tail", "--docker", "agentgateway", "--docker-root", str(root), "--state-dir",
         str(tmp_path / "state"), "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_until(port, lambda t: series_value(t, "gwlog_requests_total", user="alice@example.com") == 10)
        # docker's max-file rotation: the live file becomes .1 and a new one starts
        os.rename(log, f"{log}.1")
        log.write_text("".join(envelope(n, "bob@example.com") for n in range(10, 15)))
        text = wait_until(port, lambda t: series_value(t, "gwlog_requests_total", user="bob@example.com") == 5)
        assert series_value(text, "gwlog_requests_total", user="alice@example.com") == 10
        source = f"docker:{CID}"
        text = wait_until(port, lambda t: series_value(t, "gwlog_rotations_total", source=source) >= 1)
        assert f'gwlog_source_lag_bytes{{source="{source}"}} 0.0' in text
        assert series_value(text, "gwlog_open_files") >= 1
        assert series_value(text, "gwlog_checkpoint_age_seconds") < 5
        assert series_value(text, "gwlog_lines_total", outcome="parsed") == 15
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read().decode() if proc.stderr else ""


def test_unknown_container_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "containers").mkdir()
    out = subprocess.run([*GWLOG, "tail", "--docker", "nope", "--docker-root", str(tmp_path), "--no-serve"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "nope" in out.stderr
