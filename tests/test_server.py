"""The /metrics server: real HTTP and HTTPS scrapes, bcrypt basic auth, web-config errors, busy port."""

from __future__ import annotations

import base64
import gzip
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from gwlog.errors import ConfigError
from gwlog.metrics import MetricsStore
from gwlog.server import MetricsServer, ServerError, WebConfig, serve
from tests.test_metrics import ev, promtool_check, random_events


def get(
    url: str,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    method: str = "GET",
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def store() -> MetricsStore:
    s = MetricsStore()
    s.observe(ev())
    s.observe(ev(user='hostile"\n\\user'))
    return s


@pytest.fixture
def plain(store: MetricsStore) -> Iterator[str]:
    with serve(store, "127.0.0.1:0") as server:
        yield f"http://127.0.0.1:{server.port}"


def test_scrape_serves_the_store_and_process_metrics(plain: str) -> None:
    status, headers, body = get(plain + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"gwlog_requests_total{" in body and b"process_cpu_seconds_total" in body
    assert b'user="hostile\\"\\n\\\\user"' in body
    result = promtool_check(body)
    assert result.returncode == 0 and result.stdout == b"" and result.stderr == b""


def test_gzip_openmetrics_and_name_filter(plain: str) -> None:
    status, headers, body = get(plain + "/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert b"gwlog_requests_total" in gzip.decompress(body)
    _, headers, body = get(plain + "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert headers["Content-Type"].startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
    _, _, body = get(plain + "/metrics?name[]=gwlog_lines_total")
    families = {f.name for f in text_string_to_metric_families(body.decode())}
    assert families == {"gwlog_lines"}


def test_index_health_head_and_404(plain: str) -> None:
    status, headers, body = get(plain + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b'href="metrics"' in body
    assert get(plain + "/-/healthy")[0] == 200
    status, headers, body = get(plain + "/metrics", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert get(plain + "/nope")[0] == 404


def test_busy_port_is_a_one_line_error_naming_the_address(store: MetricsStore) -> None:
    with serve(store, "127.0.0.1:0") as first, pytest.raises(ServerError) as info:
        serve(store, f"127.0.0.1:{first.port}")
    message = str(info.value)
    assert f"127.0.0.1:{first.port}" in message and "--listen" in message and "in use" in message
    assert "\n" not in message


def test_bad_listen_address_is_a_config_error(store: MetricsStore) -> None:
    with pytest.raises(ConfigError, match="--listen"):
        serve(store, "localhost")


def test_scrapes_stay_fast_while_the_pipeline_observes(store: MetricsStore) -> None:
    events = random_events(300, 5)
    stop = threading.Event()

    def pipeline() -> None:
        while not stop.is_set():
            for e in events:
                store.observe(e)

    thread = threading.Thread(target=pipeline)
    with serve(store, "127.0.0.1:0") as server:
        thread.start()
        try:
            durations = []
            for _ in range(10):
                start = time.perf_counter()
                status, _, body = get(f"http://127.0.0.1:{server.port}/metrics")
                durations.append(time.perf_counter() - start)
                assert status == 200
                list(text_string_to_metric_families(body.decode()))
        finally:
            stop.set()
            thread.join()
    print(f"scrape under load: median {sorted(durations)[5] * 1000:.0f} ms")
    assert sorted(durations)[5] < 1.0


# -- TLS and basic auth -------------------------------------------------------------------------


def make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tls")
    make_cert(directory, "server")
    make_cert(directory, "client")
    (directory / "server.crt").with_name("not-a-cert.pem").write_text("garbage\n")
    return directory


HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def client_context(certs: Path, with_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs / "server.crt"))
    if with_client_cert:
        ctx.load_cert_chain(str(certs / "client.crt"), str(certs / "client.key"))
    return ctx


def test_tls_with_basic_auth(store: MetricsStore, certs: Path) -> None:
    config = certs / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prometheus: '{HASH}'\n"
    )
    with serve(store, "127.0.0.1:0", web_config=str(config)) as server:
        assert server.url.startswith("https://")
        url = f"https://localhost:{server.port}"
        ctx = client_context(certs)
        status, _, body = get(url + "/metrics", basic("prometheus", "s3cret"), ctx)
        assert status == 200 and b"gwlog_requests_total" in body
        status, _, body = get(url + "/metrics", basic("prometheus", "s3cret"), ctx)  # cached success
        assert status == 200
        for headers in (
            basic("prometheus", "wrong"),
            basic("nobody", "s3cret"),
            {},
            {"Authorization": "Basic !!"},
        ):
            status, resp_headers, _ = get(url + "/metrics", headers, ctx)
            assert status == 401 and resp_headers["WWW-Authenticate"] == 'Basic realm="gwlog"'
        assert get(url + "/", {}, ctx)[0] == 401
        assert get(url + "/-/healthy", {}, ctx)[0] == 200  # Docker healthchecks need no credentials
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP to the TLS port
            get(f"http://127.0.0.1:{server.port}/metrics", basic("prometheus", "s3cret"))
        # A silent client that never starts the handshake does not block other scrapes.
        with socket.create_connection(("127.0.0.1", server.port)):
            assert get(url + "/metrics", basic("prometheus", "s3cret"), ctx)[0] == 200


def test_tls_client_certificates_required(store: MetricsStore, certs: Path) -> None:
    config = certs / "mtls.yml"
    config.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client.crt\n  min_version: TLS13\n"
    )
    with serve(store, "127.0.0.1:0", web_config=str(config)) as server:
        url = f"https://localhost:{server.port}/metrics"
        assert get(url, {}, client_context(certs, with_client_cert=True))[0] == 200
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            get(url, {}, client_context(certs))


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("tls_server_config: [\n", "(file)"),
        ("nope: 1\n", "nope"),
        ("tls_server_config:\n  cert_file: server.crt\n", "tls_server_config.key_file"),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
            "tls_server_config.cert_file",
        ),
        (
            "tls_server_config:\n  cert_file: not-a-cert.pem\n  key_file: server.key\n",
            "tls_server_config.cert_file",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n",
            "tls_server_config.cert_file",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: Bogus\n",
            "tls_server_config.client_auth_type",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  client_auth_type: RequireAnyClientCert\n",
            "tls_server_config.client_auth_type",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  client_auth_type: VerifyClientCertIfGiven\n",
            "tls_server_config.client_ca_file",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: SSL3\n",
            "tls_server_config.min_version",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: []\n",
            "tls_server_config.cipher_suites",
        ),
        ("basic_auth_users:\n  prometheus: plaintext-password\n", "basic_auth_users.prometheus"),
        ("basic_auth_users: [a, b]\n", "basic_auth_users"),
    ],
)
def test_web_config_errors_name_file_key_and_fix(certs: Path, yaml_text: str, key: str) -> None:
    path = certs / "bad.yml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        WebConfig.load(str(path))
    assert info.value.key == key and info.value.file == str(path)
    assert "\n" not in str(info.value)


def test_missing_web_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        WebConfig.load(str(tmp_path / "absent.yml"))


def test_server_accepts_a_ready_registry(store: MetricsStore) -> None:
    registry = CollectorRegistry(auto_describe=False)
    store.register(registry, process=False)
    server = MetricsServer(registry, "127.0.0.1", 0).start()
    try:
        _, _, body = get(f"http://127.0.0.1:{server.port}/metrics")
        assert b"gwlog_requests_total" in body and b"process_cpu" not in body
    finally:
        server.stop()
