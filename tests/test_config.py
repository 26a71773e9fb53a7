"""Configuration errors fail fast and name the file, the key and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gwlog.config import load_config
from gwlog.errors import ConfigError

GWLOG = [sys.executable, "-m", "gwlog"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gwlog.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file() -> None:
    config = load_config(None)
    assert config.server.listen == ("0.0.0.0", 3903)
    assert config.metric_prefix == "gwlog"
    assert config.archive.path is None


def test_a_full_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[server]
listen = "127.0.0.1:9903"
[metrics]
prefix = "llm"
[archive]
path = "/tmp/events.jsonl"
rotate = "100MB"
[tail]
state_dir = "/tmp/state"
start = "end"
poll_interval = "100ms"
""",
    )
    config = load_config(path)
    assert config.server.listen == ("127.0.0.1", 9903)
    assert config.metric_prefix == "llm"
    assert config.archive.rotate_bytes == 100_000_000
    assert config.tail.from_end and config.tail.poll_interval == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("text", "key", "fix"),
    [
        ("[sever]\nlisten='x'\n", "[sever]", "use one of"),
        ("[server]\nlisten = 'localhost'\n", "[server] listen", "0.0.0.0:3903"),
        ("[server]\nport = 3903\n", "[server] port", "listen"),
        ("[archive]\nrotate = 'weekly'\n", "[archive] rotate", "100MB"),
        ("[tail]\npoll_interval = 'fast'\n", "[tail] poll_interval", "250ms"),
        ("[tail]\nstart = 'middle'\n", "[tail] start", 'start = "end"'),
        ("[metrics]\nprefix = 'my-metrics'\n", "[metrics] prefix", "underscores"),
        ("[server\n", "(syntax)", "fix the syntax"),
    ],
)
def test_bad_values_name_file_key_and_fix(tmp_path: Path, text: str, key: str, fix: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(str(path)) and key in message and fix in message
    assert "\n" not in message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_check_config_prints_effective_config_and_fails_on_errors(tmp_path: Path) -> None:
    good = write(tmp_path, "[server]\nlisten = '127.0.0.1:9999'\n")
    out = subprocess.run([*GWLOG, "check-config", str(good)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert '"listen"' in out.stdout and "9999" in out.stdout and '"identity"' in out.stdout
    bad = write(tmp_path, "[server]\nlisten = 'nowhere'\n")
    out = subprocess.run([*GWLOG, "check-config", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "[server] listen" in out.stderr


def test_the_readme_example_is_a_valid_config(tmp_path: Path) -> None:
    """The full example in the README must load (secret paths pointed at files we create)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("```toml\n[server]\n", 1)[1].split("```", 1)[0]
    for name in ("owui_jwt_key", "gwlog_hash_key"):
        secret = tmp_path / name
        secret.write_text("s" * 32)
        block = block.replace(f"/run/secrets/{name}", str(secret))
    config = load_config(write(tmp_path, "[server]\n" + block))
    assert config.archive.rotate == "daily" and config.tail.from_end is False
    assert config.cardinality.caps()["user"] == 1000
    assert config.privacy.hash_identities
