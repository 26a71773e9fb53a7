"""The /metrics endpoint: HTTP(S) in a background thread, configured like Prometheus exporters.

``--web-config FILE`` takes the exporter-toolkit YAML every Prometheus exporter understands
(TLS certificate, optional client certificates, bcrypt basic-auth users), so operators reuse the
file and habits they already have. Scrapes are served by daemon threads; the store copies its
dicts under its lock and formats outside it, so the pipeline thread keeps running.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import re
import socket
import socketserver
import ssl
import threading
from base64 import b64decode
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from gwlog.config import parse_listen
from gwlog.errors import ConfigError
from gwlog.metrics import MetricsStore

DEFAULT_LISTEN = "0.0.0.0:3903"

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_AUTH = ("RequestClientCert", "RequireAnyClientCert")
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version")
_BCRYPT_RE = re.compile(rb"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}\Z")
# Compared against for unknown users so a wrong user name costs the same time as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"gwlog-no-such-user", bcrypt.gensalt(rounds=10))
_AUTH_CACHE_MAX = 256
_INDEX = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>gwlog</title></head>
<body><h1>gwlog</h1><p>AgentGateway access logs as Prometheus metrics.</p>
<ul><li><a href="metrics">/metrics</a></li><li><a href="-/healthy">/-/healthy</a></li></ul>
</body></html>
"""


class ServerError(OSError):
    """The metrics server cannot start (address in use, no permission); ``str()`` is one line."""


@dataclass(frozen=True)
class WebConfig:
    """Parsed exporter-toolkit web config: TLS settings and bcrypt basic-auth users."""

    file: str
    cert_file: str | None = None
    key_file: str | None = None
    client_auth_type: str = "NoClientCert"
    client_ca_file: str | None = None
    min_version: str = "TLS12"
    max_version: str | None = None
    users: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str) -> WebConfig:
        """Read and validate the YAML file; relative paths are relative to the file (as exporters do)."""
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        except OSError as exc:
            raise ConfigError(path, "--web-config", f"cannot read: {exc.strerror}", "check the path") from None
        except yaml.YAMLError as exc:
            problem = " ".join(str(exc).split())
            raise ConfigError(path, "(file)", f"not valid YAML: {problem}", "fix the YAML syntax") from None
        return cls.from_dict(data or {}, path)

    @classmethod
    def from_dict(cls, data: Any, path: str) -> WebConfig:
        """Validate the parsed YAML; every error names the key and how to fix it."""
        if not isinstance(data, dict):
            raise ConfigError(path, "(file)", "expected a mapping", "see the exporter-toolkit web-config format")
        known = ("tls_server_config", "basic_auth_users")
        for key in data:
            if key not in known:
                raise ConfigError(path, str(key), "not supported by gwlog", f"use only {', '.join(known)}")
        base = os.path.dirname(os.path.abspath(path))

        def resolve(key: str, value: Any) -> str:
            if not isinstance(value, str) or not value:
                raise ConfigError(path, key, f"expected a file path, got {value!r}", f"write {key}: /path/file")
            full = os.path.join(base, value)
            if not os.path.isfile(full):
                raise ConfigError(path, key, f"no such file {full}", "check the path (relative to this file)")
            return full

        tls = data.get("tls_server_config") or {}
        if not isinstance(tls, dict):
            raise ConfigError(path, "tls_server_config", "expected a mapping", "write cert_file: and key_file:")
        for key in tls:
            if key not in _TLS_KEYS:
                raise ConfigError(
                    path,
                    f"tls_server_config.{key}",
                    "not supported by gwlog",
                    f"use only {', '.join(_TLS_KEYS)}",
                )
        kw: dict[str, Any] = {}
        if tls:
            for key in ("cert_file", "key_file"):
                if key not in tls:
                    raise ConfigError(
                        path, f"tls_server_config.{key}", "missing", "TLS needs both cert_file and key_file"
                    )
                kw[key] = resolve(f"tls_server_config.{key}", tls[key])
            auth = tls.get("client_auth_type", "NoClientCert")
            if auth in _UNVERIFIED_AUTH:
                raise ConfigError(
                    path,
                    "tls_server_config.client_auth_type",
                    f"{auth} (unverified client certificates) is not supported",
                    "use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file",
                )
            if auth not in _CLIENT_AUTH:
                raise ConfigError(
                    path,
                    "tls_server_config.client_auth_type",
                    f"unknown value {auth!r}",
                    f"use one of {', '.join(_CLIENT_AUTH)}",
                )
            kw["client_auth_type"] = auth
            if "client_ca_file" in tls:
                kw["client_ca_file"] = resolve("tls_server_config.client_ca_file", tls["client_ca_file"])
            elif auth != "NoClientCert":
                raise ConfigError(
                    path,
                    "tls_server_config.client_ca_file",
                    f"required by {auth}",
                    "write client_ca_file: ca.crt",
                )
            for key in ("min_version", "max_version"):
                if key in tls:
                    if tls[key] not in _TLS_VERSIONS:
                        raise ConfigError(
                            path,
                            f"tls_server_config.{key}",
                            f"unknown TLS version {tls[key]!r}",
                            f"use one of {', '.join(_TLS_VERSIONS)}",
                        )
                    kw[key] = tls[key]
        users_raw = data.get("basic_auth_users") or {}
        if not isinstance(users_raw, dict):
            raise ConfigError(path, "basic_auth_users", "expected a mapping", "write name: <bcrypt hash>")
        users: dict[str, bytes] = {}
        for name, hashed in users_raw.items():
            raw = hashed.encode() if isinstance(hashed, str) else b""
            if not isinstance(name, str) or not name or ":" in name or not _BCRYPT_RE.match(raw):
                raise ConfigError(
                    path,
                    f"basic_auth_users.{name}",
                    "expected a user name (no ':') and a bcrypt hash",
                    "generate one with: htpasswd -nBC 10 '' | tr -d ':\\n'",
                )
            users[name] = raw
        cfg = cls(file=path, users=users, **kw)
        if cfg.cert_file:
            cfg.ssl_context()  # load the key pair now: a bad certificate fails at start, not per scrape
        return cfg

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server TLS context, or None for plain HTTP."""
        if not self.cert_file or not self.key_file:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = _TLS_VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = _TLS_VERSIONS[self.max_version]
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                self.file,
                "tls_server_config.cert_file",
                f"cannot load certificate/key: {exc}",
                "check that cert_file and key_file are a matching PEM pair",
            ) from None
        ctx.verify_mode = _CLIENT_AUTH[self.client_auth_type]
        if self.client_ca_file:
            try:
                ctx.load_verify_locations(self.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    self.file,
                    "tls_server_config.client_ca_file",
                    f"cannot load CA: {exc}",
                    "point it at a PEM CA file",
                ) from None
        return ctx


class _Authenticator:
    """Basic auth against bcrypt hashes, caching successes (bcrypt costs ~50-250 ms per check)."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users = dict(users)
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            name, _, password = b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(name)
        token = hashlib.sha256(b"\0".join((name.encode(), password.encode(), hashed or b""))).digest()
        with self._lock:
            if token in self._ok:
                return True
        ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY_HASH) and hashed is not None
        if ok:
            with self._lock:
                if len(self._ok) >= _AUTH_CACHE_MAX:
                    self._ok.clear()
                self._ok.add(token)
        return ok


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    tls: ssl.SSLContext | None = None
    auth: _Authenticator | None = None

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), a DNS round trip we do not need.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the per-connection thread, so a client that connects and
        # stays silent cannot stall the accept loop.
        request.settimeout(_Handler.timeout)
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                request.close()
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Broken or hostile connections are the client's problem; do not print tracebacks."""


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30
    server_version = "gwlog"

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every 15 s would flood the log; stay quiet."""

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def do_GET(self) -> None:
        self._respond(head=False)

    def _respond(self, head: bool) -> None:
        url = urlsplit(self.path)
        if url.path == "/-/healthy":  # no auth: Docker healthchecks need no credentials
            return self._send(200, b"OK\n", "text/plain; charset=utf-8", head)
        auth = self.server.auth
        if auth is not None and not auth.check(self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="gwlog"')
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", "13")
            self.end_headers()
            if not head:
                self.wfile.write(b"Unauthorized\n")
            return None
        if url.path == "/":
            return self._send(200, _INDEX, "text/html; charset=utf-8", head)
        if url.path != "/metrics":
            return self._send(404, b"Not Found\n", "text/plain; charset=utf-8", head)
        registry = self.server.registry
        names = parse_qs(url.query).get("name[]")
        if names:
            registry = registry.restricted_registry(names)  # type: ignore[assignment]
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        body = encoder(registry)
        gzipped = gzip_accepted(self.headers.get("Accept-Encoding", ""))
        if gzipped:
            body = gzip.compress(body, compresslevel=5)
        return self._send(200, body, content_type, head, gzipped)

    def _send(self, code: int, body: bytes, content_type: str, head: bool, gzipped: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class MetricsServer:
    """Serves ``/metrics``, ``/`` and ``/-/healthy`` from a registry in a daemon thread.

    Binding happens in the constructor, so a busy port fails at start with ``ServerError``.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = "0.0.0.0",
        port: int = 3903,
        web_config: WebConfig | None = None,
    ) -> None:
        cls = _Server6 if ":" in host else _Server
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self._httpd = cls((host, port), _Handler)
        except OSError as exc:
            why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise ServerError(
                exc.errno, f"cannot listen on {shown}: {why} — pick another address with --listen HOST:PORT"
            ) from None
        self._httpd.registry = registry
        if web_config is not None:
            self._httpd.tls = web_config.ssl_context()
            if web_config.users:
                self._httpd.auth = _Authenticator(web_config.users)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._httpd.server_address[0])
        scheme = "https" if self._httpd.tls else "http"
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        """Serve in a daemon thread (it never keeps the process alive)."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gwlog-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    source: MetricsStore | CollectorRegistry,
    listen: str | tuple[str, int] = DEFAULT_LISTEN,
    web_config: str | None = None,
) -> MetricsServer:
    """Start serving a store (plus process metrics) or a ready registry on ``listen``.

    ``listen`` is ``"HOST:PORT"`` or a (host, port) pair; ``web_config`` an exporter-toolkit file.
    Raises ConfigError (bad address or web config) or ServerError (cannot bind).
    """
    if isinstance(source, MetricsStore):
        registry = CollectorRegistry(auto_describe=False)
        source.register(registry)
    else:
        registry = source
    host, port = parse_listen(listen, "command line", "--listen") if isinstance(listen, str) else listen
    config = WebConfig.load(web_config) if web_config else None
    return MetricsServer(registry, host, port, config).start()
