"""Deployment artefacts: Prometheus rules/config (real promtool), Dockerfile install steps, compose and
Kubernetes manifests. No Docker engine, Kubernetes or Grafana runs here: what can be executed is
executed (promtool, the wheel build and install the Dockerfile performs, gwlog's own /-/healthy
probe), the rest is checked for structure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.promhelpers import free_port

ROOT = Path(__file__).resolve().parents[1]
PROM_DIR = ROOT / "deploy" / "prometheus"
PROMTOOL_TESTS = sorted((ROOT / "tests" / "promtool").glob("*.test.yml"))
COMPOSE = ROOT / "deploy" / "compose"
K8S = ROOT / "deploy" / "kubernetes"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def run(cmd: list[str], timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]


# ---- Prometheus ------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    r = run([PROMTOOL, "check", "rules", str(PROM_DIR / "recording_rules.yml"), str(PROM_DIR / "alert_rules.yml")])
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_check_config_resolves_rule_files() -> None:
    r = run([PROMTOOL, "check", "config", str(PROM_DIR / "prometheus.yml")])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 rule files found" in r.stdout + r.stderr


def test_promtool_unit_tests() -> None:
    """Every alert fires and does not fire on crafted series; key recording rules give exact values."""
    assert PROMTOOL_TESTS, "no tests/promtool/*.test.yml"
    with ThreadPoolExecutor(max_workers=2) as pool:  # the monthly test dominates (~20 s)
        results = list(pool.map(lambda f: run([PROMTOOL, "test", "rules", str(f)], timeout=90, cwd=f.parent),
                                PROMTOOL_TESTS))  # fmt: skip
    failed = [r.stdout + r.stderr for r in results if r.returncode != 0]
    assert not failed, "\n".join(failed)


def _alert_names() -> set[str]:
    doc = yaml.safe_load((PROM_DIR / "alert_rules.yml").read_text())
    return {r["alert"] for g in doc["groups"] for r in g["rules"]}


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for f in PROMTOOL_TESTS:
        for t in yaml.safe_load(f.read_text())["tests"]:
            for a in t.get("alert_rule_test", []):
                (fires if a.get("exp_alerts") else quiet).add(a["alertname"])
    names = _alert_names()
    assert names - fires == set(), f"alerts never shown firing: {sorted(names - fires)}"
    assert names - quiet == set(), f"alerts never shown quiet: {sorted(names - quiet)}"


def test_alerts_have_severity_and_summary() -> None:
    doc = yaml.safe_load((PROM_DIR / "alert_rules.yml").read_text())
    for g in doc["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] in ("info", "warning", "critical"), r["alert"]
            assert r["annotations"].get("summary"), r["alert"]


# ---- Dockerfile ------------------------------------------------------------------------------


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_shape() -> None:
    text = _dockerfile()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(froms) == 2 and all("slim" in f for f in froms), froms
    assert re.search(r"^COPY grammars ", text, re.M) and re.search(r"^COPY src ", text, re.M)
    assert re.search(r"^USER gwlog", text, re.M), "runtime must not run as root by default"
    assert re.search(r"^EXPOSE 3903$", text, re.M)
    assert 'ENTRYPOINT ["gwlog"]' in text and 'CMD ["parse"]' in text
    assert '"/var/lib/gwlog"' in text
    assert "/-/healthy" in text and "curl" not in text.split("HEALTHCHECK", 1)[1]


def test_dockerignore_keeps_the_build_inputs() -> None:
    ignored = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in ("", "#")
    ]
    for needed in ("pyproject.toml", "README.md", "grammars", "src"):
        assert needed not in ignored and f"{needed}/" not in ignored, needed
    assert ".git" in ignored and ".venv" in ignored


def _copy_build_context(dest: Path) -> None:
    """What the builder stage's COPY lines put in /build (symlinks kept, as COPY does)."""
    dest.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", dest)
    for readme in ROOT.glob("README*"):
        shutil.copy2(readme, dest)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "grammars", dest / "grammars", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "src", dest / "src", symlinks=True, ignore=ignore)


NO_INDEX = (
    "Could not find a version that satisfies",
    "NewConnectionError",
    "Network is unreachable",
    "Temporary failure in name resolution",
)


def _build_wheel(context: Path, out: Path) -> Path:
    """`pip wheel --no-deps .` with build isolation, as in the image (setuptools/wheel come from the
    package index or the local wheelhouse); skipped, not failed, when no index is reachable."""
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(context), "-q"]
    r = run(cmd, timeout=120, cwd=context)
    if r.returncode != 0 and any(m in r.stdout + r.stderr for m in NO_INDEX):
        pytest.skip("no package index reachable for the build backend (setuptools, wheel)")
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = out.glob("gwlog-*.whl")
    return wheel


def test_wheel_from_the_docker_context_installs_and_runs(tmp_path: Path) -> None:
    """The Dockerfile's steps: build the wheel from exactly what COPY puts in the image, check the
    grammar is inside as a real file, install it into a fresh venv, run `gwlog --help`. gwlog's
    runtime dependencies come from this venv's site-packages through a .pth file (no download)."""
    ctx = tmp_path / "build"
    _copy_build_context(ctx)
    assert (ctx / "src" / "gwlog" / "agentgateway.lark").is_file(), "grammar symlink does not resolve in the image"
    wheel = _build_wheel(ctx, tmp_path / "wheels")

    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "gwlog/agentgateway.lark" in names
        grammar = z.read("gwlog/agentgateway.lark")
        assert grammar == (ROOT / "grammars" / "agentgateway.lark").read_bytes()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "gwlog = gwlog.cli:app" in z.read(entry_points).decode()

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    r = run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ]
    )
    assert r.returncode == 0, r.stdout + r.stderr
    site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after the wheel's own dir

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = run([str(env_dir / "bin" / "gwlog"), "--help"], env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "parse" in r.stdout and "tail" in r.stdout
    r = run([str(py), "-c", "import gwlog; print(gwlog.__file__)"], env=env, cwd=tmp_path)
    assert r.stdout.strip().startswith(str(env_dir)), f"gwlog imported from {r.stdout!r}, not the wheel"


@pytest.mark.slow
def test_wheel_installs_with_its_dependencies_from_the_registry(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """As in the image: isolated build, then `pip install` with dependencies resolved from the
    package index into a fresh venv. Needs network; runs only with --slow."""
    if not request.config.getoption("--slow", default=False):
        pytest.skip("needs the package index; run with --slow")
    ctx = tmp_path / "build"
    _copy_build_context(ctx)
    wheel = _build_wheel(ctx, tmp_path / "wheels")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    r = run([str(env_dir / "bin" / "pip"), "install", "-q", str(wheel)], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run([str(env_dir / "bin" / "gwlog"), "--help"])
    assert r.returncode == 0, r.stdout + r.stderr


def _healthcheck_code() -> str:
    m = re.search(r'HEALTHCHECK[^\n]*\\\n\s*CMD \["python", "-c", "(.*)"\]', _dockerfile())
    assert m, "HEALTHCHECK CMD not found"
    return m.group(1)


def test_healthcheck_command_against_a_real_gwlog(tmp_path: Path) -> None:
    """The image's HEALTHCHECK code, pointed at a running `gwlog parse`, exits 0 (and 1 when down)."""
    port = free_port()
    code = _healthcheck_code().replace("127.0.0.1:3903", f"127.0.0.1:{port}")
    exe = Path(sys.executable).with_name("gwlog")
    gw = subprocess.Popen([str(exe), "parse", "--listen", f"127.0.0.1:{port}"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)  # fmt: skip
    try:
        ok = False
        for _ in range(50):
            if gw.poll() is not None:
                break
            if run([sys.executable, "-c", code], timeout=10).returncode == 0:
                ok = True
                break
            subprocess.run(["sleep", "0.2"], check=False)
        out = b"" if gw.poll() is None else (gw.stdout.read() if gw.stdout else b"")
        assert ok, f"/-/healthy never answered 200; gwlog output: {out.decode(errors='replace')[-2000:]}"
    finally:
        if gw.stdin:
            gw.stdin.close()
        gw.terminate()
        gw.wait(10)
    assert run([sys.executable, "-c", code], timeout=10).returncode != 0, "probe must fail when gwlog is down"


# ---- compose ---------------------------------------------------------------------------------


def test_compose_file() -> None:
    doc = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"agentgateway", "open-webui", "gwlog", "gwlog-pipe", "prometheus", "grafana"} <= set(services)
    assert services["open-webui"]["environment"]["ENABLE_FORWARD_USER_INFO_HEADERS"] == "true"
    assert services["agentgateway"]["container_name"] == "agentgateway"

    tail = services["gwlog"]
    assert tail["command"][:3] == ["tail", "--docker", "agentgateway"]
    assert "/var/lib/docker/containers:/var/lib/docker/containers:ro" in tail["volumes"]
    assert any(v.endswith(":/var/lib/gwlog") for v in tail["volumes"])
    assert services["gwlog-pipe"]["command"][0] == "parse" and services["gwlog-pipe"]["stdin_open"]
    assert "gwlog" in services["gwlog-pipe"]["networks"]["default"]["aliases"]

    # every relative bind mount points at something in the repository
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert (COMPOSE / src).exists(), f"{name}: {src} does not exist"
        build = svc.get("build")
        if build:
            assert (COMPOSE / build["context"] / build["dockerfile"]).is_file()


def test_agentgateway_config_logs_open_webui_headers() -> None:
    doc = yaml.safe_load((COMPOSE / "agentgateway.yaml").read_text())
    add = doc["frontendPolicies"]["accessLog"]["add"]
    assert set(add) == {"user.email", "user.id", "user.name", "user.role", "chat.id"}
    for field, header in [("user.email", "x-openwebui-user-email"), ("user.id", "x-openwebui-user-id"),
                          ("user.name", "x-openwebui-user-name"), ("user.role", "x-openwebui-user-role"),
                          ("chat.id", "x-openwebui-chat-id")]:  # fmt: skip
        assert f'request.headers["{header}"]' in add[field]
    assert doc["binds"][0]["port"] == 3000


def test_grafana_provisioning() -> None:
    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/gwlog.yml").read_text())
    path = prov["providers"][0]["options"]["path"]
    grafana = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]["grafana"]
    assert f"../grafana/dashboards:{path}:ro" in grafana["volumes"]


# ---- Kubernetes ------------------------------------------------------------------------------


def _k8s_docs() -> list[tuple[str, dict]]:
    out = []
    for f in sorted(K8S.glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            if d:
                out.append((f.name, d))
    return out


def _containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def test_kubernetes_manifests_parse_and_have_sane_kinds() -> None:
    docs = _k8s_docs()
    kinds = {d["kind"] for _, d in docs}
    assert {"DaemonSet", "Deployment", "Service", "ServiceMonitor", "ConfigMap"} <= kinds
    for name, d in docs:
        if d["kind"] != "Kustomization":
            assert d.get("apiVersion") and d["metadata"].get("name"), name
    kustom = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for res in kustom["resources"]:
        assert (K8S / res).is_file(), res
    sm = next(d for _, d in docs if d["kind"] == "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"


def test_kubernetes_gwlog_containers() -> None:
    gwlogs = [
        (name, c)
        for name, d in _k8s_docs()
        if d["kind"] in ("DaemonSet", "Deployment")
        for c in _containers(d)
        if c["name"] == "gwlog"
    ]
    assert len(gwlogs) == 2  # DaemonSet and sidecar
    for name, c in gwlogs:
        assert c["args"][0] == "tail", name
        assert any(p["containerPort"] == 3903 and p["name"] == "metrics" for p in c["ports"]), name
        for probe in ("readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"]["path"] == "/-/healthy", (name, probe)
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert mounts["/var/log/pods"]["readOnly"] is True, name
        assert "/var/lib/gwlog" in mounts and "--state-dir" in c["args"], name
        assert c["securityContext"]["readOnlyRootFilesystem"] is True

    ds = next(d for _, d in _k8s_docs() if d["kind"] == "DaemonSet")
    c = _containers(ds)[0]
    assert "/var/log/pods/*_agentgateway-*/*/*.log" in c["args"]
    vols = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    assert vols["pod-logs"]["hostPath"]["path"] == "/var/log/pods"
    assert vols["state"]["hostPath"]["path"] == "/var/lib/gwlog"
    ann = ds["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "3903"


def _configs() -> list[tuple[str, str]]:
    out = [("deploy/compose/gwlog.toml", (COMPOSE / "gwlog.toml").read_text())]
    for name, d in _k8s_docs():
        if d["kind"] == "ConfigMap" and "gwlog.toml" in d.get("data", {}):
            out.append((f"deploy/kubernetes/{name}", d["data"]["gwlog.toml"]))
    return out


def test_gwlog_configs_are_toml() -> None:
    for where, text in _configs():
        data = tomllib.loads(text)
        assert data["server"]["listen"].endswith(":3903"), where


def test_gwlog_configs_pass_check_config(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("gwlog")
    for i, (where, text) in enumerate(_configs()):
        f = tmp_path / f"{i}.toml"
        f.write_text(text)
        r = run([str(exe), "check-config", str(f)], timeout=60)
        assert r.returncode == 0, f"{where}: {r.stdout}{r.stderr}"
