"""`gwlog parse` as users run it: a subprocess fed on stdin, scraped by a real Prometheus."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.promhelpers import start_prometheus

GWLOG = [sys.executable, "-m", "gwlog"]
USERS = {
    "alice@example.com": "Marketing",
    "bob@example.com": "Platform",
    "carol@example.com": "Security",
}
TEAMS_TOML = """
[teams.members]
Marketing = ["alice@example.com"]
Platform = ["bob@example.com"]
Security = ["carol@example.com"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request_line(n: int, user: str, provider: str, status: int, tokens_in: int, tokens_out: int) -> str:
    model = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-20250514"}[provider]
    error = ' error="upstream call failed" reason=UpstreamFailure' if status >= 500 else ""
    return (
        f"agentgateway-1  | 2026-08-20T09:16:{n % 60:02d}.{n}Z\tinfo\trequest gateway=default/default "
        f"listener=llm route=default/{provider} endpoint=api.{provider}.com:443 src.addr=172.18.0.7:38810 "
        f"http.method=POST http.host=agentgateway:4000 http.path=/v1/chat/completions http.version=HTTP/1.1 "
        f"http.status={status} protocol=llm gen_ai.operation.name=chat gen_ai.provider.name={provider} "
        f"gen_ai.request.model={model} gen_ai.usage.input_tokens={tokens_in} "
        f"gen_ai.usage.output_tokens={tokens_out}{error} duration={100 + n}ms "
        f'user.email="{user}" user.name="{user.split("@")[0].title()}" user.role="user"'
    )


def workload(count: int) -> tuple[list[str], dict]:
    """Lines plus the truth computed from how they were made (not from gwlog)."""
    lines, requests, tokens_by_team, errors, by_provider = [], Counter(), Counter(), Counter(), Counter()
    users = list(USERS)
    for n in range(count):
        user = users[n % 3]
        provider = "openai" if n % 4 else "anthropic"
        status = 503 if n % 10 in (7, 8) else 200
        tin, tout = 100 + n, 10 + n % 7
        lines.append(request_line(n, user, provider, status, tin, tout))
        requests[user] += 1
        tokens_by_team[USERS[user]] += tin + tout
        by_provider[provider] += 1
        errors[provider] += status >= 500
        if n % 25 == 0:
            lines.append('open-webui-1    | INFO:     172.18.0.1:51234 - "GET /api/models HTTP/1.1" 200 OK')
            trap = "2026-08-20T09:26:00.000100Z\twarn\trequest\tfailed to enqueue\terr=Full(..)"
            lines.append(f"agentgateway-1  | {trap}")
    truth = {"requests": requests, "tokens_by_team": tokens_by_team, "errors": errors, "by_provider": by_provider}
    return lines, truth


def start_gwlog(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = tmp_path / "gwlog.toml"
    config.write_text(TEAMS_TOML)
    proc = subprocess.Popen(
        [*GWLOG, "parse", "--listen", f"127.0.0.1:{port}", "--config", str(config), *args],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"gwlog did not serve /metrics: {proc.stderr.read().decode() if proc.stderr else ''}")


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()


def test_prometheus_answers_equal_the_input(tmp_path: Path) -> None:
    lines, truth = workload(300)
    proc, port = start_gwlog(tmp_path)
    prom = start_prometheus(tmp_path / "prom", targets=[f"127.0.0.1:{port}"])
    try:
        assert proc.stdin is not None
        proc.stdin.write(("\n".join(lines) + "\n").encode())
        proc.stdin.flush()
        total = sum(truth["requests"].values())
        prom.wait_for("sum(gwlog_requests_total)", lambda v: v == total, timeout=30)

        by_user = prom.query("sum by (user) (gwlog_requests_total)")
        per_user = {r["metric"]["user"]: float(r["value"][1]) for r in by_user}
        assert per_user == {u: float(c) for u, c in truth["requests"].items()}

        per_team = {r["metric"]["team"]: float(r["value"][1]) for r in prom.query("sum by (team) (gwlog_tokens_total)")}
        assert per_team == {t: float(c) for t, c in truth["tokens_by_team"].items()}

        ratio = {
            r["metric"]["provider"]: float(r["value"][1])
            for r in prom.query(
                'sum by (provider) (gwlog_requests_total{status=~"5.."}) / sum by (provider) (gwlog_requests_total)'
            )
        }
        assert ratio == pytest.approx({p: truth["errors"][p] / truth["by_provider"][p] for p in truth["by_provider"]})
        skipped = prom.query('gwlog_lines_total{outcome="skipped"}')
        assert float(skipped[0]["value"][1]) == 2 * len(range(0, 300, 25))
    finally:
        prom.stop()
        proc.terminate()
        proc.wait(10)


def test_a_line_is_on_metrics_within_100ms(tmp_path: Path) -> None:
    proc, port = start_gwlog(tmp_path)
    try:
        assert proc.stdin is not None
        for n, user in enumerate(["alice@example.com", "bob@example.com", "carol@example.com"]):
            line = request_line(n, user, "openai", 200, 5, 5)
            sent = time.monotonic()
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
            while f'user="{user}"' not in scrape(port):
                assert time.monotonic() - sent < 0.1, "line not visible on /metrics within 100 ms"
                time.sleep(0.002)
    finally:
        proc.terminate()
        proc.wait(10)


def test_sigterm_mid_stream_loses_nothing_accepted(tmp_path: Path) -> None:
    archive, final = tmp_path / "events.jsonl", tmp_path / "final.prom"
    proc, _ = start_gwlog(tmp_path, "--archive", str(archive), "--metrics-out", str(final))
    lines, _ = workload(5000)
    assert proc.stdin is not None
    for start in range(0, 3000, 500):  # stream part of it, then stop the process mid-stream
        proc.stdin.write(("\n".join(lines[start : start + 500]) + "\n").encode())
        proc.stdin.flush()
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0, proc.stderr.read().decode() if proc.stderr else ""
    parsed = next(
        float(line.split()[-1])
        for line in final.read_text().splitlines()
        if line.startswith('gwlog_lines_total{outcome="parsed"}')
    )
    records = [orjson.loads(line) for line in archive.read_bytes().splitlines()]
    assert parsed > 0 and len(records) == parsed
    assert len({r["id"] for r in records}) == len(records)


def test_eof_writes_final_exposition_that_promtool_accepts(tmp_path: Path) -> None:
    lines, truth = workload(200)
    final = tmp_path / "final.prom"
    out = subprocess.run(
        [*GWLOG, "parse", "--no-serve", "--metrics-out", str(final)],
        input=("\n".join(lines) + "\n").encode(),
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr.decode()
    check = subprocess.run(["promtool", "check", "metrics"], input=final.read_bytes(), capture_output=True)
    assert check.returncode == 0 and check.stdout == b"" and check.stderr == b"", check.stderr.decode()
    text = final.read_text()
    for user, count in truth["requests"].items():
        assert (
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("gwlog_requests_total{") and f'user="{user}"' in line
            )
            == count
        )


def test_port_taken_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = subprocess.run(
            [*GWLOG, "parse", "--listen", f"127.0.0.1:{port}"], input=b"", capture_output=True, timeout=30
        )
    assert out.returncode != 0
    message = out.stderr.decode().strip()
    assert "\n" not in message and str(port) in message


def test_garbage_never_crashes_and_good_lines_around_it_count(tmp_path: Path) -> None:
    lines, truth = workload(30)
    garbage = [b"\x00\x01\x02\xff\xfe", b"x" * 3_000_000, lines[0][:120].encode(), os.urandom(2000).replace(b"\n", b"")]
    blob = b"\n".join([lines[0].encode(), *garbage, *(line.encode() for line in lines[1:])]) + b"\n"
    final = tmp_path / "final.prom"
    out = subprocess.run([*GWLOG, "parse", "--no-serve", "--metrics-out", str(final)], input=blob,
                         capture_output=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in final.read_text().splitlines()
        if line.startswith("gwlog_requests_total{")
    )
    assert total == sum(truth["requests"].values())


def series_value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_sighup_reloads_teams_without_losing_counters(tmp_path: Path) -> None:
    proc, port = start_gwlog(tmp_path)
    config = tmp_path / "gwlog.toml"
    assert proc.stdin is not None

    def send(count: int, start: int) -> None:
        lines = (request_line(n, "alice@example.com", "openai", 200, 1, 1) for n in range(start, start + count))
        block = "\n".join(lines)
        proc.stdin.write(block.encode() + b"\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    def wait_total(total: int) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = scrape(port)
            if series_value(text, "gwlog_requests_total", user="alice@example.com") == total:
                return text
            time.sleep(0.02)
        raise AssertionError(f"never reached {total}")

    try:
        send(5, 0)
        wait_total(5)
        config.write_text(
            TEAMS_TOML.replace('Marketing = ["alice@example.com"]', "Marketing = []").replace(
                'Platform = ["bob@example.com"]', 'Platform = ["bob@example.com", "alice@example.com"]'
            )
        )
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        send(3, 5)
        text = wait_total(8)
        assert series_value(text, "gwlog_requests_total", user="alice@example.com", team="Marketing") == 5
        assert series_value(text, "gwlog_requests_total", user="alice@example.com", team="Platform") == 3

        config.write_text("[teams\n")  # broken: reported, previous rules kept, still serving
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        send(2, 8)
        text = wait_total(10)
        assert series_value(text, "gwlog_requests_total", user="alice@example.com", team="Platform") == 5
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert "team rules reloaded" in stderr and "keeping the previous team rules" in stderr


def peak_rss_mib(proc: subprocess.Popen) -> float:
    """VmHWM of a running child (reset at exec, unlike ru_maxrss of a forked pytest), until it exits."""
    peak = 0.0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            break
        hwm = [line for line in status.splitlines() if line.startswith("VmHWM:")]
        if hwm:
            peak = max(peak, int(hwm[0].split()[1]) / 1024)
        time.sleep(0.01)
    return peak


def test_an_endless_line_on_stdin_keeps_memory_bounded(tmp_path: Path) -> None:
    lines, truth = workload(20)
    final, blob = tmp_path / "final.prom", tmp_path / "input.log"
    with blob.open("wb") as out:
        out.write(lines[0].encode() + b"\n")
        for _ in range(200):  # one 200 MiB line
            out.write(b"x" * (1 << 20))
        out.write(b"\n" + "\n".join(lines[1:]).encode() + b"\n")
    with blob.open("rb") as stdin:
        proc = subprocess.Popen([*GWLOG, "parse", "--no-serve", "--metrics-out", str(final)],
                                stdin=stdin, stderr=subprocess.PIPE)  # fmt: skip
        peak = peak_rss_mib(proc)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr.decode()
    assert peak < 120, f"peak RSS {peak:.0f} MiB for a 200 MiB line"
    text = final.read_text()
    assert series_value(text, "gwlog_requests_total") == sum(truth["requests"].values())
    assert series_value(text, "gwlog_lines_total", outcome="malformed") == 1
    assert b"longer than 8 MiB; skipped" in stderr


def test_forged_identity_tokens_are_counted_not_fatal(tmp_path: Path) -> None:
    """A JWT with a bad signature is rejected, counted by reason, and the request still counts."""
    secret = tmp_path / "jwt.key"
    secret.write_text("s" * 32)
    config = tmp_path / "jwt.toml"
    config.write_text(f'[identity]\njwt_field = "user.jwt"\njwt_secret_file = "{secret}"\n')
    forged = "eyJhbGciOiJIUzI1NiJ9.eyJlbWFpbCI6ImNlb0Bjb3JwIn0.c2lnbmF0dXJl"
    line = request_line(1, "alice@example.com", "openai", 200, 1, 1) + f' user.jwt="{forged}"'
    final = tmp_path / "final.prom"
    out = subprocess.run([*GWLOG, "parse", "--no-serve", "--config", str(config), "--metrics-out", str(final)],
                         input=(line + "\n").encode(), capture_output=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    text = final.read_text()
    assert series_value(text, "gwlog_identity_rejected_total", reason="signature") == 1
    assert series_value(text, "gwlog_requests_total", user="alice@example.com") == 1
    assert "ceo@corp" not in text


def test_hashed_identities_keep_emails_out_of_labels_and_archive(tmp_path: Path) -> None:
    secret = tmp_path / "hash.key"
    secret.write_text("k" * 32)
    config = tmp_path / "privacy.toml"
    config.write_text(
        f'{TEAMS_TOML}\n[privacy]\nhash_identities = true\nhash_archive = true\nhash_secret_file = "{secret}"\n'
    )
    lines, truth = workload(30)
    final, archive = tmp_path / "final.prom", tmp_path / "events.jsonl"

    def run() -> str:
        out = subprocess.run(
            [*GWLOG, "parse", "--no-serve", "--config", str(config), "--metrics-out", str(final),
             "--archive", str(archive)],
            input=("\n".join(lines) + "\n").encode(), capture_output=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr.decode()
        return final.read_text()

    first = run()
    assert "@example.com" not in first and "@example.com" not in archive.read_text()
    # teams are decided on the clear values, before hashing
    assert series_value(first, "gwlog_requests_total", team="Marketing") == truth["requests"]["alice@example.com"]
    users = {line.split('user="')[1].split('"')[0] for line in first.splitlines() if 'user="' in line}
    assert len(users) == 3 and all(u.startswith("u_") for u in users)
    assert run() == first  # the same pseudonyms after a restart (keyed, not random)
