"""TOML configuration: one file, strict validation, errors that name the file, key and fix.

Each section is validated by the room that uses it (``from_section``); this module only knows the
sections, the value parsers they share, and the embedded defaults for the common compose setup.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gwlog.errors import ConfigError, check_keys, expect
from gwlog.identity import IdentityConfig, PrivacyConfig, TeamConfig
from gwlog.metrics import CardinalityLimits
from gwlog.pricing import PricingConfig

DEFAULT_LISTEN = "0.0.0.0:3903"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_duration(text: str | int | float, file: str, key: str) -> float:
    """``"250ms"``, ``"5s"``, ``"24h"`` or a number of seconds → seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool) and text >= 0:
        return float(text)
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise ConfigError(file, key, f"{text!r} is not a duration", 'write e.g. "250ms", "5s", "10m" or "24h"')
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_size(text: str | int, file: str, key: str) -> int:
    """``"100MB"``, ``"64MiB"`` or a number of bytes → bytes."""
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return text
    match = _SIZE.match(text) if isinstance(text, str) else None
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(file, key, f"{text!r} is not a size", 'write e.g. "100MB", "64MiB" or 1048576')
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])


def parse_listen(text: Any, file: str, key: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:3903`` for IPv6) → (host, port)."""
    if isinstance(text, str):
        host, sep, port = text.rpartition(":")
        if sep and port.isdigit() and int(port) < 65536:  # 0: any free port (tests)
            return host.strip("[]") or "0.0.0.0", int(port)
    raise ConfigError(file, key, f"{text!r} is not HOST:PORT", 'write e.g. "0.0.0.0:3903" or "127.0.0.1:9903"')


@dataclass(slots=True)
class ServerConfig:
    """``[server]``: where ``/metrics`` is served and how it is protected."""

    listen: tuple[str, int] = ("0.0.0.0", 3903)
    web_config: str | None = None

    @classmethod
    def from_section(cls, section: dict[str, Any], file: str) -> ServerConfig:
        check_keys(section, {"listen", "web_config"}, file, "[server]")
        out = cls()
        if "listen" in section:
            out.listen = parse_listen(section["listen"], file, "[server] listen")
        if section.get("web_config"):
            out.web_config = expect(section["web_config"], str, file, "[server] web_config", '"web.yml"')
        return out


@dataclass(slots=True)
class ArchiveConfig:
    """``[archive]``: the optional JSONL archive of parsed events."""

    path: str | None = None
    rotate: str | None = None  # "daily" or a size such as "100MB"
    rotate_bytes: int | None = None
    compress: bool = True
    max_buffered_events: int = 100_000

    @classmethod
    def from_section(cls, section: dict[str, Any], file: str) -> ArchiveConfig:
        check_keys(section, {"path", "rotate", "compress", "max_buffered_events"}, file, "[archive]")
        out = cls()
        if section.get("path"):
            out.path = expect(section["path"], str, file, "[archive] path", '"/var/lib/gwlog/events.jsonl"')
        if section.get("rotate"):
            out.set_rotate(section["rotate"], file, "[archive] rotate")
        if "compress" in section:
            out.compress = expect(section["compress"], bool, file, "[archive] compress", "true")
        if "max_buffered_events" in section:
            out.max_buffered_events = expect(
                section["max_buffered_events"], int, file, "[archive] max_buffered_events", "100000"
            )
        return out

    def set_rotate(self, value: Any, file: str, key: str) -> None:
        if value == "daily":
            self.rotate, self.rotate_bytes = "daily", None
        else:
            self.rotate_bytes = parse_size(value, file, f"{key} (daily or a size)")
            self.rotate = str(value)


@dataclass(slots=True)
class TailConfig:
    """``[tail]``: where checkpoints live and how sources are followed."""

    state_dir: str = "/var/lib/gwlog"
    from_end: bool = False
    docker_root: str = "/var/lib/docker"
    poll_interval: float = 0.25
    drain_grace: float = 5.0
    checkpoint_interval: float = 0.5

    @classmethod
    def from_section(cls, section: dict[str, Any], file: str) -> TailConfig:
        allowed = {"state_dir", "start", "docker_root", "poll_interval", "drain_grace", "checkpoint_interval"}
        check_keys(section, allowed, file, "[tail]")
        out = cls()
        if "state_dir" in section:
            out.state_dir = expect(section["state_dir"], str, file, "[tail] state_dir", '"/var/lib/gwlog"')
        if "start" in section:
            if section["start"] not in ("beginning", "end"):
                raise ConfigError(file, "[tail] start", f"{section['start']!r} is not a start position",
                                  'write start = "beginning" or start = "end"')  # fmt: skip
            out.from_end = section["start"] == "end"
        if "docker_root" in section:
            out.docker_root = expect(section["docker_root"], str, file, "[tail] docker_root", '"/var/lib/docker"')
        for key in ("poll_interval", "drain_grace", "checkpoint_interval"):
            if key in section:
                setattr(out, key, parse_duration(section[key], file, f"[tail] {key}"))
        return out


@dataclass(slots=True)
class Config:
    """The whole effective configuration; ``file`` names where it came from for messages."""

    file: str = "<defaults>"
    metric_prefix: str = "gwlog"
    server: ServerConfig = field(default_factory=ServerConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    tail: TailConfig = field(default_factory=TailConfig)
    identity: IdentityConfig = field(default_factory=lambda: IdentityConfig.from_section({}, "<defaults>"))
    teams: TeamConfig = field(default_factory=lambda: TeamConfig.from_section({}, "<defaults>"))
    privacy: PrivacyConfig = field(default_factory=lambda: PrivacyConfig.from_section({}, "<defaults>"))
    pricing: PricingConfig = field(default_factory=lambda: PricingConfig.from_section({}, "<defaults>"))
    cardinality: CardinalityLimits = field(default_factory=lambda: CardinalityLimits.from_section({}, "<defaults>"))
    raw: dict[str, Any] = field(default_factory=dict)


_SECTIONS = ("server", "metrics", "archive", "tail", "identity", "teams", "privacy", "pricing", "cardinality")
_PREFIX = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def load_config(path: str | Path | None) -> Config:
    """Read and validate a config file; ``None`` gives the embedded defaults."""
    if path is None:
        return Config()
    file = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(file, "(file)", "does not exist", "pass an existing file to --config") from None
    except OSError as exc:
        raise ConfigError(file, "(file)", f"cannot be read ({exc.strerror})", "check its permissions") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "(syntax)", f"is not valid TOML: {exc}", "fix the syntax at that line") from None
    return config_from_dict(data, file)


def config_from_dict(data: dict[str, Any], file: str) -> Config:
    for name, value in data.items():
        if name not in _SECTIONS:
            raise ConfigError(file, f"[{name}]", "unknown section", f"use one of: {', '.join(_SECTIONS)}")
        if not isinstance(value, dict):
            raise ConfigError(file, name, "must be a table", f"write it as a [{name}] section")
    metrics = data.get("metrics", {})
    check_keys(metrics, {"prefix"}, file, "[metrics]")
    prefix = metrics.get("prefix", "gwlog")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ConfigError(file, "[metrics] prefix", f"{prefix!r} is not a valid metric name prefix",
                          'use letters, digits and underscores, e.g. prefix = "gwlog"')  # fmt: skip
    base = Path(file).parent
    return Config(
        file=file,
        metric_prefix=prefix,
        server=ServerConfig.from_section(data.get("server", {}), file),
        archive=ArchiveConfig.from_section(data.get("archive", {}), file),
        tail=TailConfig.from_section(data.get("tail", {}), file),
        identity=IdentityConfig.from_section(data.get("identity", {}), file),
        teams=TeamConfig.from_section(_with_base(data.get("teams", {}), base), file),
        privacy=PrivacyConfig.from_section(_with_base(data.get("privacy", {}), base), file),
        pricing=PricingConfig.from_section(data.get("pricing", {}), file),
        cardinality=CardinalityLimits.from_section(data.get("cardinality", {}), file),
        raw=data,
    )


def _with_base(section: dict[str, Any], base: Path) -> dict[str, Any]:
    """Resolve ``*_file`` keys relative to the config file, as users expect."""
    out = dict(section)
    for key, value in section.items():
        if key.endswith("_file") and isinstance(value, str) and not Path(value).is_absolute():
            out[key] = str(base / value)
    return out
