"""The ``gwlog`` command line: a thin typer shell over the library.

Every command's help carries examples; the work happens in ``gwlog.pipeline``, ``gwlog.reader``,
``gwlog.backfill`` and ``gwlog.report``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from gwlog import __version__
from gwlog.config import Config, load_config, parse_listen
from gwlog.errors import ConfigError

if TYPE_CHECKING:
    from gwlog.metrics import MetricsStore
    from gwlog.server import MetricsServer

app = typer.Typer(
    name="gwlog",
    help="Turn AgentGateway access logs into per-user, per-team LLM usage, cost and latency metrics.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file (see `gwlog check-config`).")
]
ListenOpt = Annotated[str | None, typer.Option("--listen", help="Serve /metrics on HOST:PORT [default: 0.0.0.0:3903].")]
ArchiveOpt = Annotated[str | None, typer.Option("--archive", help="Append parsed events to this JSONL file.")]
RotateOpt = Annotated[
    str | None, typer.Option("--archive-rotate", help="Rotate the archive `daily` or at a size (`100MB`).")
]
MetricsOutOpt = Annotated[
    Path | None, typer.Option("--metrics-out", help="Write the final exposition here on exit (like mtail -one_shot).")
]
NoServeOpt = Annotated[bool, typer.Option("--no-serve", help="Do not serve /metrics (batch use with --metrics-out).")]
WebConfigOpt = Annotated[
    Path | None, typer.Option("--web-config", help="Exporter-toolkit web config: TLS and basic auth for /metrics.")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"gwlog: {message}", err=True)
    return typer.Exit(code)


def _load(config_path: Path | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _apply_flags(config: Config, listen: str | None, rotate: str | None, web_config: Path | None) -> None:
    try:
        if listen:
            config.server.listen = parse_listen(listen, "command line", "--listen")
        if rotate:
            config.archive.set_rotate(rotate, "command line", "--archive-rotate")
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if web_config:
        config.server.web_config = str(web_config)


def _start_server(config: Config, store: MetricsStore, serve_metrics: bool) -> MetricsServer | None:
    from gwlog.server import ServerError, serve

    if not serve_metrics:
        return None
    try:
        return serve(store, config.server.listen, web_config=config.server.web_config)
    except (ServerError, ConfigError) as exc:
        raise _fail(str(exc), 1) from None


@app.command()
def parse(
    config_path: ConfigOpt = None,
    listen: ListenOpt = None,
    archive: ArchiveOpt = None,
    archive_rotate: RotateOpt = None,
    metrics_out: MetricsOutOpt = None,
    no_serve: NoServeOpt = False,
    web_config: WebConfigOpt = None,
) -> None:
    """Parse gateway log lines from **stdin** and serve metrics on :3903.

    Examples:

        docker compose logs -f agentgateway | gwlog parse

        kubectl logs -f deploy/agentgateway | gwlog parse --archive events.jsonl

        gwlog parse --no-serve --metrics-out final.prom < agentgateway.log
    """
    from gwlog.pipeline import Pipeline, StopFlag, run_stdin

    config = _load(config_path)
    _apply_flags(config, listen, archive_rotate, web_config)
    try:
        pipeline = Pipeline(config, archive_path=archive)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    stop = StopFlag(on_hup=pipeline.resolver.reload_teams)
    stop.install()
    server = _start_server(config, pipeline.store, serve_metrics=not no_serve)
    try:
        run_stdin(pipeline, stop)
    finally:
        ok = pipeline.finish(str(metrics_out) if metrics_out else None)
        if server is not None:
            server.stop()
    if not ok:
        raise _fail("the archive could not be fully written (see messages above)", 1)


@app.command()
def tail(
    paths: Annotated[list[str] | None, typer.Argument(help="Files or globs to follow.")] = None,
    docker: Annotated[
        list[str] | None, typer.Option("--docker", help="Follow a docker container's json-file log (name or id).")
    ] = None,
    docker_root: Annotated[str | None, typer.Option(help="Docker data root [default: /var/lib/docker].")] = None,
    state_dir: Annotated[str | None, typer.Option(help="Checkpoint directory [default: /var/lib/gwlog].")] = None,
    from_start: Annotated[
        bool | None,
        typer.Option("--from-start/--from-end", help="Where to begin files gwlog has never seen [default: start]."),
    ] = None,
    config_path: ConfigOpt = None,
    listen: ListenOpt = None,
    archive: ArchiveOpt = None,
    archive_rotate: RotateOpt = None,
    metrics_out: MetricsOutOpt = None,
    no_serve: NoServeOpt = False,
    web_config: WebConfigOpt = None,
) -> None:
    """Follow log files, globs and container logs with checkpoints: nothing lost, nothing twice.

    Offsets and metric values are committed together every second, so a restart (even after
    SIGKILL) continues the counters where they were. Rotation by rename, copytruncate, gzip,
    docker json-file and kubelet CRI are followed.

    Examples:

        gwlog tail /var/log/agentgateway/*.log --state-dir /var/lib/gwlog

        gwlog tail --docker agentgateway --archive /var/lib/gwlog/events.jsonl

        gwlog tail '/var/log/pods/*_agentgateway-*/*/*.log'
    """
    from gwlog.pipeline import Pipeline, StopFlag, TailRunner
    from gwlog.tailer import Tailer, TailerError, resolve_docker_container

    config = _load(config_path)
    _apply_flags(config, listen, archive_rotate, web_config)
    if docker_root:
        config.tail.docker_root = docker_root
    if state_dir:
        config.tail.state_dir = state_dir
    if from_start is not None:
        config.tail.from_end = not from_start
    patterns = list(paths or [])
    try:
        patterns += [resolve_docker_container(name, config.tail.docker_root) for name in docker or []]
    except TailerError as exc:
        raise _fail(str(exc)) from None
    if not patterns:
        raise _fail("nothing to follow: give files or globs, or --docker CONTAINER")
    try:
        Path(config.tail.state_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"state dir {config.tail.state_dir}: {exc.strerror}; pass a writable --state-dir") from None
    try:
        pipeline = Pipeline(config, archive_path=archive)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    stop = StopFlag(on_hup=pipeline.resolver.reload_teams)
    stop.install()

    def make_tailer(state: dict | None) -> Tailer:
        return Tailer(patterns, state=state, from_end=config.tail.from_end, drain_grace=config.tail.drain_grace)

    runner = TailRunner(pipeline, make_tailer, config.tail.state_dir,
                        config.tail.checkpoint_interval, config.tail.poll_interval)  # fmt: skip
    server = _start_server(config, pipeline.store, serve_metrics=not no_serve)
    try:
        runner.run(stop)
    finally:
        ok = pipeline.finish(str(metrics_out) if metrics_out else None)
        if server is not None:
            server.stop()
    if not ok:
        raise _fail("the archive could not be fully written (see messages above)", 1)


@app.command()
def explain(
    line: Annotated[str | None, typer.Argument(help="One log line; lines are read from stdin without it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event (the archive schema).")] = False,
    config_path: ConfigOpt = None,
) -> None:
    """Show how each line is read: wrapper layers, event fields, or why it was skipped.

    Examples:

        gwlog explain "$(tail -n1 agentgateway.log)"

        docker compose logs agentgateway | gwlog explain --json | jq .user
    """
    from gwlog.explain import explain_lines

    config = _load(config_path)
    lines = [line] if line is not None else (raw.rstrip("\n") for raw in sys.stdin)
    for text in explain_lines(config, lines, as_json=as_json):
        typer.echo(text)


@app.command("check-config")
def check_config(file: Annotated[Path, typer.Argument(help="The TOML file to validate.")]) -> None:
    """Validate a config file and print the effective configuration (defaults filled in).

    Every error names the file, the key, the problem and the fix.

    Example:

        gwlog check-config /etc/gwlog/gwlog.toml
    """
    from gwlog.explain import effective_config

    config = _load(file)
    typer.echo(orjson.dumps(effective_config(config), option=orjson.OPT_INDENT_2).decode())


@app.command()
def version() -> None:
    """Print the gwlog version."""
    typer.echo(__version__)


def main() -> None:  # pragma: no cover - console entry point
    app()
