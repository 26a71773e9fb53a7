"""The tailer against real files and real rotations (tailing.md §5): every line exactly once.

Lines are ``L000001``…; a writer keeps its own fd like a real logger, so writes after a rename land in
the rotated file. ``drain_grace`` is small so the suite stays fast.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from gwlog.checkpoint import StateFile
from gwlog.tailer import (
    FLAG_SPLIT,
    FLAG_SPLIT_LAST,
    FLAG_UNTERMINATED,
    Line,
    Tailer,
    TailerError,
    event_id,
    fingerprint,
    resolve_docker_container,
)

GRACE = 0.15


def ln(i: int) -> bytes:
    return b"L%06d\n" % i


def lines(a: int, b: int) -> bytes:
    return b"".join(ln(i) for i in range(a, b + 1))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def gzip_away(path: Path) -> Path:
    """Compress like logrotate/docker/kubelet: write ``.gz``, then unlink the plain file."""
    gz = path.with_name(path.name + ".gz")
    with open(path, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()
    return gz


def tailer(patterns: list[str], **kw: object) -> Tailer:
    kw.setdefault("drain_grace", GRACE)
    kw.setdefault("rescan_interval", 0.0)
    return Tailer(patterns, **kw)  # type: ignore[arg-type]


def collect(t: Tailer, settle: float = 0.0, ack: bool = True) -> list[Line]:
    """Poll until nothing new for a few rounds (and ``settle`` seconds passed); ack what came."""
    out: list[Line] = []
    deadline = time.monotonic() + settle
    quiet = 0
    while quiet < 3 or time.monotonic() < deadline:
        got = t.poll()
        if ack:
            t.ack(got)
        out.extend(got)
        quiet = 0 if got else quiet + 1
        if not got:
            time.sleep(0.01)
    return out


def nums(got: list[Line]) -> list[int]:
    return [int(x.data[1:]) for x in got]


def assert_once(got: list[Line], want: list[int]) -> None:
    """Exactly the wanted lines, each once, in per-file order, with unique ids and no junk."""
    assert sorted(nums(got)) == want, nums(got)
    ids = [event_id(x.source_key, x.fp, x.start) for x in got]
    assert len(set(ids)) == len(ids)
    assert all(x.flags == 0 and x.data.startswith(b"L") and len(x.data) == 7 for x in got)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    p = tmp_path / "app.log"
    p.write_bytes(lines(1, 10))
    return p


def started(log: Path, **kw: object) -> tuple[Tailer, object]:
    """A tailer that has read L1–10, and the writer's fd (kept across renames like a real logger)."""
    t = tailer([str(log)], **kw)
    assert nums(collect(t)) == list(range(1, 11))
    w = open(log, "ab", buffering=0)  # noqa: SIM115
    w.write(lines(11, 15))
    return t, w


# ---- G: generic rotations -----------------------------------------------------------------------


def test_g1_rename_late_writes_then_gzip(log: Path) -> None:
    t, w = started(log)
    os.rename(log, log.with_name("app.log.1"))
    log.write_bytes(lines(19, 25))
    w.write(lines(16, 18))  # writer still on the rotated inode
    w.close()
    gzip_away(log.with_name("app.log.1"))
    append(log, lines(26, 30))
    got = collect(t, settle=GRACE * 2)
    assert nums(got) == list(range(11, 31))
    assert_once(got, list(range(11, 31)))
    assert t.stats()["rotations"] == {str(log): 1}
    assert t.stats()["open_files"] == 1
    t.close()


def test_g2_moved_to_unknown_name(log: Path, tmp_path: Path) -> None:
    t, w = started(log)
    (tmp_path / "archive").mkdir()
    os.rename(log, tmp_path / "archive" / "x.log")
    w.write(lines(16, 18))
    log.write_bytes(lines(19, 28))
    assert_once(collect(t, settle=GRACE * 2), list(range(11, 29)))
    t.close()


def test_g3_two_rotations_between_polls_both_gzipped(log: Path) -> None:
    t, w = started(log)
    w.close()
    one, two = log.with_name("app.log.1"), log.with_name("app.log.2")
    os.rename(log, one)
    log.write_bytes(lines(16, 20))
    os.rename(one, two)
    os.rename(log, one)
    log.write_bytes(lines(21, 25))
    gzip_away(two)
    gzip_away(one)
    got = collect(t, settle=GRACE * 2)
    assert nums(got) == list(range(11, 26))
    assert_once(got, list(range(11, 26)))
    t.close()


@pytest.mark.parametrize(("case", "regrow_to", "gz"), [("G4a", 25, False), ("G4b", 40, False), ("G4c", 40, True)])
def test_g4_copytruncate(log: Path, case: str, regrow_to: int, gz: bool) -> None:
    t, w = started(log)
    shutil.copyfile(log, log.with_name("app.log.1"))
    w.write(ln(16))  # between copy and truncate: lost by copytruncate itself, for any reader
    os.truncate(log, 0)
    w.write(lines(17, regrow_to))
    if gz:
        gzip_away(log.with_name("app.log.1"))
    got = collect(t, settle=GRACE * 2)
    want = [*range(11, 16), *range(17, regrow_to + 1)]
    assert nums(got) == want, case
    assert_once(got, want)
    assert t.stats()["data_lost"] == {}
    t.close()


def test_g5_truncate_in_place_stale_sibling(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stale = tmp_path / "app.log.1"
    stale.write_bytes(b"OLD unrelated\n" * 50)
    log = tmp_path / "app.log"
    log.write_bytes(lines(1, 10))
    t, w = started(log)
    os.truncate(log, 0)
    w.write(lines(16, 20))
    with caplog.at_level(logging.ERROR, "gwlog.tailer"):
        got = collect(t, settle=GRACE * 2)
    assert_once(got, list(range(16, 21)))
    assert t.stats()["data_lost"] == {"truncated": 1}
    assert any("truncated" in r.getMessage() for r in caplog.records)
    t.close()


def test_g6_line_edge_cases(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"")
    t = tailer([str(p)])
    out: list[bytes] = []
    for chunk in [b"line1\nline2-par", b"tial\n", b"caf\xc3", b"\xa9\n", b"bad\xff\xfe\n", b"x\ry\r\n"]:
        append(p, chunk)
        out += [x.data for x in collect(t)]
    append(p, b"crlf\r")
    out += [x.data for x in collect(t)]
    append(p, b"\nlone\r")
    out += [x.data for x in collect(t)]
    append(p, b"\nline3\n")
    out += [x.data for x in collect(t)]
    text = [x.decode("utf-8", "replace") for x in out]
    assert text == [
        "line1",
        "line2-partial",
        "café",
        "bad\ufffd\ufffd",
        "x\ry\r",
        "crlf\r",
        "lone\r",
        "line3",
    ]
    t.close()


_G7_CHILD = """
import sys, time
from gwlog.checkpoint import StateFile
from gwlog.tailer import Tailer, event_id
log, state, ids = sys.argv[1:4]
t = Tailer([log], drain_grace=0.1, rescan_interval=0.0)
got = []
while len(got) < 1500:
    got += t.poll()
t.ack(got[:1000])
StateFile(state).save({"tailer": t.state()})
with open(ids, "w") as f:
    f.write("\\n".join(event_id(x.source_key, x.fp, x.start) for x in got))
print("ready", flush=True)
time.sleep(60)
"""


def test_g7_sigkill_with_uncommitted_lines_replays_same_ids(tmp_path: Path) -> None:
    log, state, ids = tmp_path / "app.log", tmp_path / "state.json", tmp_path / "ids.txt"
    log.write_bytes(lines(1, 1500))
    child = subprocess.Popen([sys.executable, "-c", _G7_CHILD, str(log), str(state), str(ids)], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    child.send_signal(signal.SIGKILL)
    child.wait()
    delivered = ids.read_text().split("\n")
    loaded = StateFile(state).load()
    assert loaded is not None
    t = tailer([str(log)], state=loaded["tailer"])
    got = collect(t)
    assert_once(got, list(range(1001, 1501)))
    assert [event_id(x.source_key, x.fp, x.start) for x in got] == delivered[1000:]
    t.close()


def stopped_after_10(log: Path) -> dict:
    t = tailer([str(log)])
    assert nums(collect(t)) == list(range(1, 11))
    state = json.loads(json.dumps(t.state()))
    t.close()
    return state


def test_g8_two_rotations_while_stopped_resume_from_gz(log: Path) -> None:
    state = stopped_after_10(log)
    one, two = log.with_name("app.log.1"), log.with_name("app.log.2")
    append(log, lines(11, 15))
    os.rename(log, one)
    log.write_bytes(lines(16, 20))
    os.rename(one, two)
    os.rename(log, one)
    log.write_bytes(lines(21, 25))
    gzip_away(two)
    gzip_away(one)
    t = tailer([str(log)], state=state)
    got = collect(t, settle=GRACE * 2)
    assert nums(got) == list(range(11, 26))
    assert_once(got, list(range(11, 26)))
    assert t.stats()["data_lost"] == {}
    t.close()


@pytest.mark.parametrize("how", ["unlink-create", "o_trunc-same-inode"])
def test_g9_recreated_with_same_inode_while_stopped(log: Path, how: str) -> None:
    state = stopped_after_10(log)
    ino = log.stat().st_ino
    if how == "unlink-create":
        log.unlink()  # ext4 usually hands the freed inode number to the next file
    log.write_bytes(lines(101, 105))
    if how == "o_trunc-same-inode":
        assert log.stat().st_ino == ino
    t = tailer([str(log)], state=state)
    assert_once(collect(t), list(range(101, 106)))
    assert t.stats()["data_lost"] == {}
    t.close()


def test_g10_rotated_file_ends_unterminated(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(lines(1, 5) + b"L000006-unterminated")
    t = tailer([str(log)], drain_grace=0.3)
    assert nums(collect(t)) == list(range(1, 6))
    os.rename(log, tmp_path / "app.log.1")
    log.write_bytes(lines(7, 20))
    assert nums(collect(t)) == list(range(7, 21))  # not yet: the rotated file may still grow
    time.sleep(0.35)
    tail = collect(t, settle=0.4)
    assert [(x.data, x.flags) for x in tail] == [(b"L000006-unterminated", FLAG_UNTERMINATED)]
    assert collect(t) == []
    assert t.state()["files"][tail[0].fp]["done"] is True
    t.close()


def test_g11_first_start_ignores_old_rotated_files(tmp_path: Path) -> None:
    (tmp_path / "app.log.1").write_bytes(b"OLD%03d\n" % 1 * 3)
    gz = tmp_path / "app.log-20240101"
    gz.write_bytes(b"OLDER\n")
    gzip_away(gz)
    log = tmp_path / "app.log"
    log.write_bytes(lines(1, 5))
    t = tailer([str(log)])
    assert_once(collect(t), list(range(1, 6)))
    assert len(t.state()["ignored"]) == 2
    t.close()


def test_from_end_starts_at_last_complete_line(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(lines(1, 5) + b"L0000")
    t = tailer([str(log)], from_end=True)
    assert collect(t) == []
    append(log, b"06\n" + lines(7, 8))
    assert_once(collect(t), [6, 7, 8])
    t.close()


# ---- D: docker json-file --------------------------------------------------------------------------

CID = "ab" * 32


def jline(i: int) -> bytes:
    return b'{"log":"L%06d\\n","stream":"stdout","time":"2024-01-01T00:00:00.%09dZ"}\n' % (i, i)


def jlines(a: int, b: int) -> bytes:
    return b"".join(jline(i) for i in range(a, b + 1))


def jnums(got: list[Line]) -> list[int]:
    return [int(json.loads(x.data)["log"][1:]) for x in got]


def docker_rotate(p: Path, max_file: int, compress: bool) -> None:
    """moby logfile.go: drop the oldest, shift .i-1 → .i, live → .1, new live; gzip .1 if asked."""
    if max_file == 1:
        p.unlink()
        p.write_bytes(b"")
        return
    for ext in ("", ".gz"):
        p.with_name(f"{p.name}.{max_file - 1}{ext}").unlink(missing_ok=True)
    for i in range(max_file - 1, 1, -1):
        for ext in ("", ".gz"):
            src = p.with_name(f"{p.name}.{i - 1}{ext}")
            if src.exists():
                os.rename(src, p.with_name(f"{p.name}.{i}{ext}"))
    os.rename(p, p.with_name(p.name + ".1"))
    p.write_bytes(b"")
    if compress:
        gzip_away(p.with_name(p.name + ".1"))


@pytest.fixture
def dlog(tmp_path: Path) -> Path:
    d = tmp_path / "containers" / CID
    d.mkdir(parents=True)
    (d / "config.v2.json").write_bytes(json.dumps({"ID": CID, "Name": "/agentgateway"}).encode())
    p = d / f"{CID}-json.log"
    p.write_bytes(jlines(1, 10))
    return p


@pytest.mark.parametrize(
    ("case", "max_file", "compress", "rotations"),
    [("D1", 3, False, 1), ("D2", 3, True, 1), ("D3", 3, True, 2), ("D4", 1, False, 1)],
)
def test_docker_rotations(dlog: Path, tmp_path: Path, case: str, max_file: int, compress: bool, rotations: int) -> None:
    t = tailer(["docker:agentgateway"], docker_root=str(tmp_path))
    first = collect(t)
    assert jnums(first) == list(range(1, 11))
    assert {x.source_key for x in first} == {f"docker:{CID}"}
    append(dlog, jlines(11, 15))
    docker_rotate(dlog, max_file, compress)
    append(dlog, jlines(16, 20))
    if rotations == 2:
        docker_rotate(dlog, max_file, compress)
        append(dlog, jlines(21, 25))
    got = collect(t, settle=GRACE * 2)
    want = list(range(11, 21 if rotations == 1 else 26))
    assert jnums(got) == want, case
    assert t.stats()["data_lost"] == {}
    t.close()


def test_d5_docker_o_trunc_in_place_reports_loss(dlog: Path, tmp_path: Path) -> None:
    t = tailer([str(tmp_path / "containers" / "*" / "*-json.log")])
    assert jnums(collect(t)) == list(range(1, 11))
    append(dlog, jlines(11, 15))
    with open(dlog, "wb") as f:  # old moby, max-file=1: same inode, O_TRUNC
        f.write(jlines(16, 20))
    assert jnums(collect(t, settle=GRACE * 2)) == list(range(16, 21))
    assert t.stats()["data_lost"] == {"truncated": 1}
    t.close()


def test_resolve_docker_container(dlog: Path, tmp_path: Path) -> None:
    root = str(tmp_path)
    assert resolve_docker_container(CID, root) == str(dlog)
    assert resolve_docker_container(CID[:12], root) == str(dlog)
    assert resolve_docker_container("agentgateway", root) == str(dlog)
    with pytest.raises(TailerError, match="no docker container"):
        resolve_docker_container("nope", root)


# ---- K: kubelet CRI -----------------------------------------------------------------------------

UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def cline(i: int) -> bytes:
    return b"2024-01-01T00:00:00.%09dZ stdout F L%06d\n" % (i, i)


def clines(a: int, b: int) -> bytes:
    return b"".join(cline(i) for i in range(a, b + 1))


def cnums(got: list[Line]) -> list[int]:
    return [int(x.data.rsplit(b" L", 1)[1]) for x in got]


def kubelet_rotate(p: Path, stamp: str, late: bytes = b"") -> None:
    """container_log_manager.go: gzip every plain rotated file, rename live → .stamp, reopen."""
    for old in p.parent.glob(p.name + ".*"):
        if not old.name.endswith((".gz", ".tmp")):
            gzip_away(old)
    os.rename(p, p.with_name(f"{p.name}.{stamp}"))
    if late:  # the runtime writes the renamed file until ReopenContainerLog
        append(p.with_name(f"{p.name}.{stamp}"), late)
    p.write_bytes(b"")


@pytest.fixture
def klog(tmp_path: Path) -> Path:
    d = tmp_path / "pods" / f"gw_agentgateway-7d9_{UID}" / "agentgateway"
    d.mkdir(parents=True)
    p = d / "0.log"
    p.write_bytes(clines(1, 10))
    return p


@pytest.mark.parametrize("case", ["K1", "K2", "K3"])
def test_kubelet_rotations(klog: Path, tmp_path: Path, case: str) -> None:
    t = tailer([str(tmp_path / "pods" / "*" / "*" / "*.log")])
    first = collect(t)
    assert cnums(first) == list(range(1, 11))
    assert {x.source_key for x in first} == {f"k8s:{UID}/agentgateway"}
    append(klog, clines(11, 15))
    kubelet_rotate(klog, "20240101-120000", late=clines(16, 17) if case == "K2" else b"")
    append(klog, clines(18, 20))
    want = [*range(11, 16), *([16, 17] if case == "K2" else []), *range(18, 21)]
    if case == "K3":  # the first rotated file gets gzipped, a second rotation follows
        kubelet_rotate(klog, "20240101-120001")
        append(klog, clines(21, 25))
        want += range(21, 26)
    got = collect(t, settle=GRACE * 2)
    assert cnums(got) == want, case
    assert t.stats()["data_lost"] == {}
    t.close()


def test_symlink_repointed(klog: Path, tmp_path: Path) -> None:
    links = tmp_path / "containers"
    links.mkdir()
    link = links / f"agentgateway-7d9_gw_agentgateway-{'c' * 64}.log"
    link.symlink_to(klog)
    t = tailer([str(links / "*.log")])
    assert cnums(collect(t)) == list(range(1, 11))
    restarted = klog.with_name("1.log")
    restarted.write_bytes(clines(101, 105))
    tmp_link = links / "tmp-link"
    tmp_link.symlink_to(restarted)
    os.replace(tmp_link, link)  # kubelet re-points atomically
    append(klog, clines(11, 12))  # the old container's last words
    got = collect(t, settle=GRACE * 2)
    assert cnums(got) == [11, 12, 101, 102, 103, 104, 105]
    assert {x.source_key for x in got} == {f"k8s:{UID}/agentgateway"}
    t.close()


def test_symlink_and_target_both_matched_are_read_once(klog: Path, tmp_path: Path) -> None:
    links = tmp_path / "containers"
    links.mkdir()
    (links / "x.log").symlink_to(klog)
    t = tailer([str(links / "*.log"), str(tmp_path / "pods" / "*" / "*" / "*.log")])
    assert cnums(collect(t)) == list(range(1, 11))
    t.close()


# ---- files coming and going -------------------------------------------------------------------


def test_deleted_while_open_is_drained(log: Path) -> None:
    t, w = started(log)
    log.unlink()
    w.write(lines(16, 18))
    w.close()
    assert_once(collect(t, settle=GRACE * 2), list(range(11, 19)))
    assert t.stats()["open_files"] == 0
    t.close()


def test_glob_match_appearing_after_start(tmp_path: Path) -> None:
    t = tailer([str(tmp_path / "*.log")])
    assert collect(t) == []
    (tmp_path / "late.log").write_bytes(lines(1, 3))
    assert_once(collect(t), [1, 2, 3])
    t.close()


def test_directory_matching_the_glob_is_reported_not_fatal(tmp_path: Path, caplog) -> None:
    (tmp_path / "dir.log").mkdir()
    (tmp_path / "ok.log").write_bytes(lines(1, 2))
    with caplog.at_level(logging.WARNING, "gwlog.tailer"):
        t = tailer([str(tmp_path / "*.log")])
        assert_once(collect(t), [1, 2])
        collect(t)
    msgs = [r.getMessage() for r in caplog.records if "dir.log" in r.getMessage()]
    assert len(msgs) == 1 and "Is a directory" in msgs[0]
    t.close()


_PERM_CHILD = """
import logging, os, sys, time
from gwlog.tailer import Tailer
logging.basicConfig(level=logging.WARNING, format="%(message)s")
os.setgid(65534); os.setuid(65534)  # root reads anything; drop to nobody after imports
t = Tailer([sys.argv[1]], rescan_interval=0.0, max_backoff=0.2)
got = []
deadline = time.monotonic() + 3
while time.monotonic() < deadline and len(got) < 3:
    got += t.poll(); time.sleep(0.02)
    if os.path.exists(sys.argv[2]):
        print("polled", flush=True); os.unlink(sys.argv[2])
print(b"|".join(x.data for x in got).decode(), flush=True)
"""


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory ``nobody`` can reach (pytest's tmp_path sits below a 0700 directory)."""
    d = Path(tempfile.mkdtemp(prefix="gwlog-perm-"))
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d)


def test_permission_denied_is_reported_and_retried(world_dir: Path) -> None:
    d = world_dir
    log, flag = d / "app.log", d / "flag"
    log.write_bytes(lines(1, 3))
    os.chmod(log, 0)
    flag.touch()
    os.chmod(flag, 0o666)
    child = subprocess.Popen(
        [sys.executable, "-c", _PERM_CHILD, str(log), str(flag)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdout.readline() == b"polled\n"
    time.sleep(0.3)
    os.chmod(log, 0o644)
    out, err = child.communicate(timeout=10)
    assert child.returncode == 0, err
    assert out.strip() == b"L000001|L000002|L000003"
    warnings = err.decode().strip().splitlines()
    assert len([w for w in warnings if "Permission denied" in w]) == 1, warnings
    assert any("readable again" in w for w in warnings)


# ---- long lines -------------------------------------------------------------------------------


def test_64mib_line_is_split_with_bounded_memory_and_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "big.log"
    big = (b"0123456789abcdef" * 4096) * 1024  # 64 MiB
    with open(p, "wb") as f:
        f.write(b"first\n" + big + b"\nafter\n")
    maxb = 64 * 1024
    read = 0
    real_pread = os.pread

    def counting_pread(fd: int, n: int, off: int) -> bytes:
        nonlocal read
        data = real_pread(fd, n, off)
        read += len(data)
        return data

    monkeypatch.setattr(os, "pread", counting_pread)
    t = tailer([str(p)], max_line_bytes=maxb, read_chunk=256 * 1024)
    h, pieces, flags, other = hashlib.sha256(), 0, [], []
    tracemalloc.start()
    while True:
        got = t.poll(max_lines=16)
        if not got:
            break
        for x in got:
            if x.flags & FLAG_SPLIT:
                h.update(x.data)
                pieces += 1
                assert len(x.data) <= maxb
                flags.append(x.flags)
            else:
                other.append(x.data)
        t.ack(got)
        del got, x
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert other == [b"first", b"after"]
    assert h.digest() == hashlib.sha256(big).digest()
    assert pieces == len(big) // maxb
    assert flags[-1] == FLAG_SPLIT | FLAG_SPLIT_LAST and flags.count(FLAG_SPLIT) == pieces - 1
    assert peak < 8 * 1024 * 1024, peak
    assert read <= p.stat().st_size + 2 * 1024 * 4  # one pass (+ fingerprint heads)
    assert t.state()["files"][fingerprint(b"first\n")]["acked_end"] == p.stat().st_size
    t.close()


# ---- ack, state, ids ----------------------------------------------------------------------------


def test_ack_advances_only_through_contiguous_lines(log: Path) -> None:
    t = tailer([str(log)])
    got = collect(t, ack=False)
    fp = got[0].fp
    t.ack([got[1], got[2]])
    assert t.state()["files"][fp]["acked_end"] == 0
    t.ack([got[0]])
    assert t.state()["files"][fp]["acked_end"] == got[2].end
    t.ack(got)
    assert t.state()["files"][fp]["acked_end"] == log.stat().st_size
    assert t.stats()["lag_bytes"] == {str(log): 0}
    t.close()


def test_event_id_is_stable_across_copies_and_gz(log: Path) -> None:
    t = tailer([str(log)])
    first = collect(t)
    state = t.state()
    t.close()
    fp = first[0].fp
    assert fp == fingerprint(ln(1))
    state["files"][fp]["acked_end"] = first[5].start  # pretend L6– were never acked
    os.rename(log, log.with_name("app.log.1"))
    gzip_away(log.with_name("app.log.1"))
    log.write_bytes(b"")
    t = tailer([str(log)], state=state)
    again = collect(t, settle=GRACE)
    assert [event_id(x.source_key, x.fp, x.start) for x in again] == [
        event_id(x.source_key, x.fp, x.start) for x in first[5:]
    ]
    assert event_id("k", "f", 1) == hashlib.blake2b(b"k|f|1", digest_size=16).hexdigest()
    t.close()


def test_state_rejects_other_versions() -> None:
    with pytest.raises(ValueError, match="version"):
        Tailer(["/nonexistent"], state={"version": 99, "files": {}})


def test_rename_undone_is_not_read_twice(log: Path) -> None:
    t, w = started(log)
    os.rename(log, log.with_name("app.log.20240101-120000"))
    assert_once(collect(t), list(range(11, 16)))  # path gone: drained through the held fd
    os.rename(log.with_name("app.log.20240101-120000"), log)  # the kubelet undid a failed rotation
    w.write(lines(16, 17))
    assert_once(collect(t, settle=GRACE * 2), [16, 17])
    assert t.stats()["open_files"] == 1
    t.close()


def test_state_forgets_files_that_no_longer_exist(log: Path) -> None:
    t, w = started(log)
    w.close()
    for n in range(3):
        os.rename(log, log.with_name("app.log.1"))
        log.write_bytes(lines(100 * (n + 1), 100 * (n + 1) + 2))
        collect(t, settle=GRACE * 2)
        log.with_name("app.log.1").unlink()
    collect(t)
    files = t.state()["files"]
    assert list(files) == [fingerprint(ln(300))]
    assert files[fingerprint(ln(300))]["acked_end"] == log.stat().st_size
    t.close()


def test_lagging_reader_never_retires_rotated_files_with_unread_bytes(log: Path) -> None:
    """Regression (soak, 20k lines/s): while gwlog lagged, an older rotated file waited behind the
    poll budget longer than drain_grace and was retired unread — whole files lost, nothing reported."""
    t = tailer([str(log)])
    assert nums(t.poll(max_lines=5)) == [1, 2, 3, 4, 5]  # lagging: 5 lines per poll
    os.rename(log, f"{log}.1")
    log.write_bytes(lines(11, 40))
    got = t.poll(max_lines=5)
    os.rename(f"{log}.1", f"{log}.2")  # log -> .1 -> .2 while the first file is still being read
    os.rename(log, f"{log}.1")
    log.write_bytes(lines(41, 60))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        batch = t.poll(max_lines=5)
        t.ack(batch)
        got += batch
        time.sleep(GRACE / 4)  # slow consumer: many drain_grace periods pass during the catch-up
        if len(got) >= 55 and not batch:
            break
    assert_once(got, list(range(6, 61)))
    assert t.stats()["data_lost"] == {}
