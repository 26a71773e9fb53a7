"""The ``gwlog`` command line: a thin typer shell over the library.

Every command's help carries examples; the work happens in ``gwlog.pipeline``, ``gwlog.reader``,
``gwlog.backfill`` and ``gwlog.report``.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from gwlog import __version__
from gwlog.config import Config, load_config, parse_listen
from gwlog.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from gwlog.pipeline import Pipeline, StopFlag

app = typer.Typer(
    name="gwlog",
    help="Turn AgentGateway access logs into per-user, per-team LLM usage, cost and latency metrics.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file (see `gwlog check-config`).")]
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


def _pipeline(config: Config, archive: str | None) -> Pipeline:
    from gwlog.pipeline import Pipeline

    try:
        return Pipeline(config, archive_path=archive)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _drive(config: Config, pipeline: Pipeline, run: Callable[[StopFlag], None], *, serve_metrics: bool,
           metrics_out: Path | None) -> None:  # fmt: skip
    """Signals, /metrics, the run, then the archive flushed and the final exposition written."""
    from gwlog.pipeline import StopFlag
    from gwlog.server import ServerError, serve

    stop = StopFlag(on_hup=pipeline.reload_teams)
    stop.install()
    server = None
    if serve_metrics:
        try:
            server = serve(pipeline.store, config.server.listen, web_config=config.server.web_config)
        except (ServerError, ConfigError) as exc:
            raise _fail(str(exc), 1) from None
    try:
        run(stop)
    finally:
        ok = pipeline.finish(str(metrics_out) if metrics_out else None)
        if server is not None:
            server.stop()
    if not ok:
        raise _fail("the archive could not be fully written (see messages above)", 1)


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
    from gwlog.pipeline import run_stdin

    config = _load(config_path)
    _apply_flags(config, listen, archive_rotate, web_config)
    pipeline = _pipeline(config, archive)
    _drive(config, pipeline, lambda stop: run_stdin(pipeline, stop),
           serve_metrics=not no_serve, metrics_out=metrics_out)  # fmt: skip


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

    Offsets and metric values are committed together twice a second, so a restart (even after
    SIGKILL) continues the counters where they were. Rotation by rename, copytruncate, gzip,
    docker json-file and kubelet CRI are followed.

    Examples:

        gwlog tail /var/log/agentgateway/*.log --state-dir /var/lib/gwlog

        gwlog tail --docker agentgateway --archive /var/lib/gwlog/events.jsonl

        gwlog tail '/var/log/pods/*_agentgateway-*/*/*.log'
    """
    from gwlog.pipeline import TailRunner
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
    pipeline = _pipeline(config, archive)

    def make_tailer(state: dict | None) -> Tailer:
        return Tailer(patterns, state=state, from_end=config.tail.from_end, drain_grace=config.tail.drain_grace)

    runner = TailRunner(pipeline, make_tailer, config.tail.state_dir,
                        config.tail.checkpoint_interval, config.tail.poll_interval)  # fmt: skip
    _drive(config, pipeline, runner.run, serve_metrics=not no_serve, metrics_out=metrics_out)


def _when(text: str | None, flag: str) -> datetime | None:
    from gwlog.backfill import parse_when

    if text is None:
        return None
    try:
        return parse_when(text)
    except ValueError as exc:
        raise _fail(f"{flag}: {exc}") from None


@app.command()
def backfill(
    paths: Annotated[list[Path], typer.Argument(help="Old log files: plain or .gz, any wrapper, any order.")],
    since: Annotated[str | None, typer.Option(help="Only events at or after: RFC 3339 or relative (24h, 7d).")] = None,
    until: Annotated[str | None, typer.Option(help="Only events before: RFC 3339 or relative.")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Worker processes [default: all cores].")] = None,
    archive: ArchiveOpt = None,
    openmetrics: Annotated[
        Path | None, typer.Option(help="Write the metric history as OpenMetrics for promtool tsdb.")
    ] = None,
    resolution: Annotated[str, typer.Option(help="History step for --openmetrics.")] = "1m",
    openmetrics_label: Annotated[
        list[str] | None, typer.Option(help="Extra label on every history series, k=v (repeatable).")
    ] = None,
    metrics_out: MetricsOutOpt = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Leave a `gwlog tail` checkpoint here so tail continues after backfill.")
    ] = None,
    show_report: Annotated[bool, typer.Option("--report", help="Print a per-user report at the end.")] = False,
    config_path: ConfigOpt = None,
) -> None:
    """Read old logs once, on all cores, into final metrics, an archive or a Prometheus history.

    Results are identical for any --jobs. A progress bar shows on a terminal, none when piped.
    Duplicate files, unreadable files and out-of-order lines are handled and reported at the end.

    Examples:

        gwlog backfill /var/log/agentgateway/*.log* --metrics-out totals.prom

        gwlog backfill old/*.gz --since 30d --openmetrics history.om

        promtool tsdb create-blocks-from openmetrics history.om /prometheus/data

        gwlog backfill /var/log/gw.log* --state-dir /var/lib/gwlog && gwlog tail /var/log/gw.log
    """
    from gwlog.backfill import backfill as run_backfill
    from gwlog.config import parse_duration
    from gwlog.report import build_report, print_report

    config = _load(config_path)
    labels: dict[str, str] = {}
    for item in openmetrics_label or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(f"--openmetrics-label {item!r}: write it as key=value")
        labels[key] = value
    try:
        step = int(parse_duration(resolution, "command line", "--resolution"))
        result = run_backfill(
            paths, config=config, since=_when(since, "--since"), until=_when(until, "--until"), jobs=jobs,
            archive=archive, openmetrics=openmetrics, resolution_s=max(step, 1), extra_labels=labels or None,
            metrics_out=metrics_out, state_dir=state_dir,
        )  # fmt: skip
    except (ConfigError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(result.summary(), err=True)
    for problem in result.problems:
        typer.echo(f"  {problem}", err=True)
    if show_report and archive:
        from gwlog.report import iter_records

        print_report(build_report(iter_records([archive], config), by="user"), "table")


@app.command()
def report(
    paths: Annotated[list[Path], typer.Argument(help="JSONL archives (also .gz) or raw gateway logs.")],
    by: Annotated[str, typer.Option(help="Group by user, team, provider, model or day.")] = "user",
    since: Annotated[str | None, typer.Option(help="Only events at or after: RFC 3339 or relative (24h).")] = None,
    until: Annotated[str | None, typer.Option(help="Only events before.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    top: Annotated[int | None, typer.Option(help="Only the N biggest groups.")] = None,
    reprice: Annotated[bool, typer.Option(help="Recompute cost from archived tokens with today's prices.")] = False,
    config_path: ConfigOpt = None,
) -> None:
    """Requests, errors, tokens, cost and latency per user, team, provider, model or day.

    Reads the JSONL archive fast, or raw logs directly. Also: top users, errors by user and
    provider share per team.

    Examples:

        gwlog report events.jsonl --by user --since 24h --top 10

        gwlog report events-*.jsonl.gz --by team --format csv > teams.csv

        gwlog report agentgateway.log --by provider --format json
    """
    from gwlog.report import build_report, iter_records, print_report, repricer

    if by not in ("user", "team", "provider", "model", "day"):
        raise _fail(f"--by {by!r}: use user, team, provider, model or day")
    if fmt not in ("table", "json", "csv"):
        raise _fail(f"--format {fmt!r}: use table, json or csv")
    config = _load(config_path)
    for path in paths:
        if not path.exists():
            raise _fail(f"{path}: no such file")
    result = build_report(
        iter_records(paths, config), by=by, top=top, since=_when(since, "--since"), until=_when(until, "--until"),
        reprice=repricer(config.pricing) if reprice else None,
    )  # fmt: skip
    print_report(result, fmt)


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
