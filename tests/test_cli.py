"""The command line as users type it: help with examples, explain, backfill ≡ parse, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from gwlog.events import ARCHIVE_FIELDS

GWLOG = [sys.executable, "-m", "gwlog"]
ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())
W01 = (
    "agentgateway-1  | 2026-08-20T09:16:41.203377Z\tinfo\trequest gateway=default/default listener=llm "
    "route=default/openai endpoint=api.openai.com:443 src.addr=172.18.0.7:38810 http.method=POST "
    "http.host=agentgateway:4000 http.path=/v1/chat/completions http.version=HTTP/1.1 http.status=200 "
    "protocol=llm gen_ai.operation.name=chat gen_ai.provider.name=openai gen_ai.request.model=gpt-4o "
    'gen_ai.usage.input_tokens=311 gen_ai.usage.output_tokens=97 duration=1733ms user.email="alice@example.com" '
    'user.name="J%C3%BCrgen M%C3%BCller"'
)


def gwlog(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GWLOG, *args], input=stdin.decode() if stdin else None, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", ["parse", "tail", "backfill", "report", "explain", "check-config"])
def test_every_command_documents_examples(command: str) -> None:
    out = gwlog(command, "--help")
    assert out.returncode == 0, out.stderr
    assert "Examples" in out.stdout or "Example:" in out.stdout


def test_explain_shows_wrappers_fields_and_decoded_identity() -> None:
    out = gwlog("explain", W01)
    assert out.returncode == 0, out.stderr
    assert "PARSED by scanner" in out.stdout and "compose-v2:agentgateway-1" in out.stdout
    assert "alice@example.com" in out.stdout and "Jürgen Müller" in out.stdout
    assert "gen_ai.usage.input_tokens = 311" in out.stdout


def test_explain_json_is_the_archive_schema_and_skips_go_to_stderr() -> None:
    trap = "2026-08-20T09:26:00.000100Z\twarn\trequest\tfailed to enqueue request log database record\terr=Full(..)"
    out = gwlog("explain", "--json", stdin=f"{W01}\n{trap}\n".encode())
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    record = orjson.loads(line)
    assert tuple(record) == ARCHIVE_FIELDS
    assert record["user"] == "alice@example.com" and record["user_name"] == "Jürgen Müller"
    assert record["input_tokens"] == 311 and record["duration_ms"] == 1733 and record["provider"] == "openai"
    assert "line 2: skipped" in out.stderr and "\n" not in out.stderr.strip()


def test_backfill_equals_parse_for_any_jobs(tmp_path: Path) -> None:
    logs = sorted(SAMPLES.glob("*.log"))
    outs = {}
    for jobs in ("1", "2"):
        outs[jobs] = tmp_path / f"backfill{jobs}.prom"
        result = gwlog("backfill", "--jobs", jobs, "--metrics-out", str(outs[jobs]), *map(str, logs))
        assert result.returncode == 0, result.stderr
    parsed = {}
    for log in logs:  # one `gwlog parse` per file, as each file is its own stream
        out = tmp_path / f"{log.stem}.prom"
        result = subprocess.run([*GWLOG, "parse", "--no-serve", "--metrics-out", str(out)], stdin=log.open("rb"),
                                capture_output=True, timeout=120)  # fmt: skip
        assert result.returncode == 0, result.stderr
        parsed[log.name] = out.read_text()
    assert outs["1"].read_text() == outs["2"].read_text()
    requests = sum(
        float(line.rsplit(" ", 1)[1])
        for text in parsed.values()
        for line in text.splitlines()
        if line.startswith("gwlog_requests_total{")
    )
    backfilled = sum(
        float(line.rsplit(" ", 1)[1])
        for line in outs["1"].read_text().splitlines()
        if line.startswith("gwlog_requests_total{")
    )
    truth = sum(f["request_lines"] for f in EXPECTED["files"].values())
    assert requests == backfilled == truth


def test_report_from_the_archive_answers_per_team(tmp_path: Path) -> None:
    archive = tmp_path / "events.jsonl"
    result = gwlog("backfill", "--config", str(SAMPLES / "gwlog.toml"), "--archive", str(archive),
                   str(SAMPLES / "compose.log"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = gwlog("report", str(archive), "--by", "team", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = {row["team"]: row for row in orjson.loads(out.stdout)["rows"]}
    truth = EXPECTED["files"]["compose.log"]["per_team"]
    assert {team: row["requests"] for team, row in rows.items()} == truth
    bad = gwlog("report", str(archive), "--by", "planet")
    assert bad.returncode == 2 and "--by" in bad.stderr


def test_report_reprice_uses_the_archived_tokens(tmp_path: Path) -> None:
    archive = tmp_path / "events.jsonl"
    result = gwlog("backfill", "--archive", str(archive), str(SAMPLES / "compose.log"))
    assert result.returncode == 0, result.stderr
    rows = {}
    for flag in ((), ("--reprice",)):
        out = gwlog("report", str(archive), "--by", "provider", "--format", "json", *flag)
        assert out.returncode == 0, out.stderr
        rows[bool(flag)] = {row["provider"]: row for row in orjson.loads(out.stdout)["rows"]}
    assert rows[True].keys() == rows[False].keys()
    assert all(rows[True][p]["requests"] == rows[False][p]["requests"] for p in rows[True])
    # Repricing fills in what genai-prices knows: never more unpriced requests than before.
    assert sum(r["unpriced"] for r in rows[True].values()) <= sum(r["unpriced"] for r in rows[False].values())
    assert sum(float(r["cost_usd"]) for r in rows[True].values()) > 0
