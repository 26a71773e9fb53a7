"""Every example of tests/data/agentgateway-log-examples.jsonl (a copy of shared/), read through ``LineReader``.

The expected fields are written out in full: the reading of each line is the specification
(format doc §3, §4, §9, §11), not whatever the parser happens to produce. Each text request line
is also checked against the reference parser and the scanner separately.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gwlog.reader import LineReader, Outcome
from gwlog.reference import ReferenceParser
from gwlog.scanner import Scanner

EXAMPLES = Path(__file__).parent / "data" / "agentgateway-log-examples.jsonl"

# W01–W09 wrap the same line (W06 is it bare): compose, ANSI, CR, json-file all unwrap to it.
ALICE = {
    "gateway": "default/default",
    "listener": "llm",
    "route": "default/openai",
    "endpoint": "api.openai.com:443",
    "src.addr": "172.18.0.7:38810",
    "http.method": "POST",
    "http.host": "agentgateway:4000",
    "http.path": "/v1/chat/completions",
    "http.version": "HTTP/1.1",
    "http.status": 200,
    "protocol": "llm",
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 311,
    "gen_ai.usage.output_tokens": 97,
    "duration": 1733,
    "user.email": "alice@example.com",
}

# C01 (text) and C02 (JSON mode) are the same request: the same fields, typed the same.
C01_FIELDS = {
    "gateway": "default/default",
    "listener": "llm",
    "route": "default/openai",
    "endpoint": "api.openai.com:443",
    "src.addr": "172.18.0.5:40312",
    "http.method": "POST",
    "http.host": "agentgateway",
    "http.path": "/v1/chat/completions",
    "http.version": "HTTP/1.1",
    "http.status": 200,
    "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span.id": "00f067aa0ba902b7",
    "protocol": "llm",
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 1834,
    "gen_ai.usage.cache_read.input_tokens": 1536,
    "gen_ai.usage.output_tokens": 212,
    "gen_ai.usage.reasoning_tokens": 64,
    "agw.ai.time_to_first_token": 0.412871293,
    "agw.ai.time_per_output_token": 0.011532,
    "agw.ai.usage.cost.total": Decimal("0.00045942"),
    "gen_ai.request.temperature": 0.7,
    "gen_ai.request.max_tokens": 1024,
    "duration": 2874,
}

PARSED = {
    ("R02", 0): (
        "2026-07-08T21:17:12.059908+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "llm",
            "route": "internal/llm:request",
            "endpoint": "api.openai.com:443",
            "src.addr": "[::1]:61586",
            "http.method": "POST",
            "http.host": "localhost",
            "http.path": "/v1/chat/completions",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "llm",
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-3.5-turbo",
            "gen_ai.response.model": "gpt-3.5-turbo-0125",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.cache_read.input_tokens": 0,
            "gen_ai.usage.output_tokens": 258,
            "agw.ai.usage.cost.total": Decimal("0.000393"),
            "gen_ai.usage.output_audio_tokens": 0,
            "duration": 2603,
        },
    ),
    ("R05", 0): (
        "2026-08-06T21:10:58.810727+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "default",
            "route": "default/application",
            "src.addr": "[::1]:52638",
            "http.method": "GET",
            "http.host": "localhost",
            "http.path": "/",
            "http.version": "HTTP/1.1",
            "http.status": 406,
            "protocol": "mcp",
            "error": "mcp: client must accept text/event-stream",
            "reason": "MCP",
            "duration": 2,
            "github.user": "<USERNAME>",
            "github.email": "<EMAIL@EXAMPLE.COM>",
        },
    ),
    ("C01", 0): (
        "2026-08-20T09:14:03.048213+00:00",
        "scanner",
        [],
        C01_FIELDS,
    ),
    ("C02", 0): (
        "2026-08-20T09:14:03.048213+00:00",
        "json",
        [],
        C01_FIELDS,
    ),
    ("C03", 0): (
        "2026-08-20T09:15:00.000917+00:00",
        "scanner",
        [],
        {
            "connection.id": 42,
            "request.id": 118,
            "gateway": "default/default",
            "listener": "http",
            "route": "default/httpbin",
            "endpoint": "httpbin:80",
            "src.addr": "172.18.0.1:55120",
            "http.method": "GET",
            "http.host": "localhost",
            "http.path": "/get",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "http",
            "duration": 3,
        },
    ),
    ("C04", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "llm",
            "route": "default/openai",
            "endpoint": "api.openai.com:443",
            "src.addr": "172.18.0.7:38810",
            "http.method": "POST",
            "http.host": "agentgateway:4000",
            "http.path": "/v1/chat/completions",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "llm",
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 311,
            "gen_ai.usage.output_tokens": 97,
            "duration": 1733,
            "user.email": "alice@example.com",
            "user.name": "Alice Smith",
            "user.role": "user",
        },
    ),
    ("C05", 0): (
        "2026-08-20T09:16:42.000009+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "llm",
            "route": "default/openai",
            "src.addr": "172.18.0.7:38812",
            "http.method": "POST",
            "http.host": "agentgateway:4000",
            "http.path": "/v1/chat/completions",
            "http.version": "HTTP/1.1",
            "http.status": 401,
            "protocol": "llm",
            "error": "authentication failure: no bearer token found",
            "reason": "JwtAuth",
            "duration": 0,
            "note": 'a=b "quoted" c:\\tmp',
        },
    ),
    ("C06", 0): (
        "2026-08-20T09:17:05.551002+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "http",
            "route": "default/api",
            "src.addr": "10.0.0.9:41000",
            "http.method": "POST",
            "http.host": "api.local",
            "http.path": "/v1/items",
            "http.version": "HTTP/2.0",
            "http.status": 201,
            "protocol": "http",
            "duration": 12,
            "n.int": 42,
            "n.float": 2,
            "n.frac": 0.25,
            "flag": True,
            "s": "text",
            "obj": {"a": 1, "b": "x", "c": None},
            "arr": ["a", 2, False],
        },
    ),
    ("C07", 0): (
        "2026-08-20T09:17:05.551002+00:00",
        "json",
        [],
        {
            "gateway": "default/default",
            "listener": "http",
            "route": "default/api",
            "src.addr": "10.0.0.9:41000",
            "http.method": "POST",
            "http.host": "api.local",
            "http.path": "/v1/items",
            "http.version": "HTTP/2.0",
            "http.status": 201,
            "protocol": "http",
            "duration": 12,
            "n.int": 42,
            "n.float": 2.0,
            "n.frac": 0.25,
            "flag": True,
            "s": "text",
            "obj": {"a": 1, "b": "x", "c": None},
            "arr": ["a", 2, False],
        },
    ),
    ("C08", 0): (
        "2026-05-10T11:00:00.123456+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "http",
            "route": "default/api",
            "src.addr": "10.0.0.9:41002",
            "http.method": "GET",
            "http.host": "api.local",
            "http.path": "/",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "http",
            "duration": 1,
            "ratio": 2.0,
            "tiny": 1e-07,
        },
    ),
    ("C09", 0): (
        "2026-08-20T09:18:00.400100+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "http",
            "route": "default/app",
            "src.addr": "10.0.0.3:50000",
            "http.method": "GET",
            "http.host": "app.local",
            "http.path": "/me",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "jwt.sub": "John Doe (ops=admin)",
            "protocol": "http",
            "duration": 4,
        },
    ),
    ("C10", 0): (
        "2026-08-20T09:18:30.700000+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "llm",
            "route": "default/openai",
            "endpoint": "api.openai.com:443",
            "src.addr": "10.0.0.3:50010",
            "http.method": "POST",
            "http.host": "localhost",
            "http.path": "/v1/chat/completions",
            "http.version": "HTTP/1.1",
            "http.status": 400,
            "protocol": "llm",
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "",
            "duration": 231,
        },
    ),
    ("C11", 0): (
        "2026-08-20T09:19:11.030021+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "http",
            "route": "default/backend",
            "endpoint": "10.96.0.20:8080",
            "src.addr": "10.0.0.3:50020",
            "http.method": "GET",
            "http.host": "svc.local",
            "http.path": "/health",
            "http.version": "HTTP/1.1",
            "http.status": 503,
            "protocol": "http",
            "error": (
                'upstream call failed: Connect("tcp connect error", Os { code: 111, kind: '
                'ConnectionRefused, message: "Connection refused" })'
            ),
            "reason": "UpstreamFailure",
            "duration": 1,
        },
    ),
    ("C12", 0): (
        "2026-08-20T09:20:00.000005+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "http",
            "src.addr": "10.0.0.3:50030",
            "http.method": "GET",
            "http.host": "unknown.local",
            "http.path": "/",
            "http.version": "HTTP/1.1",
            "http.status": 404,
            "error": "route not found",
            "reason": "NotFound",
            "duration": 0,
        },
    ),
    ("C13", 0): (
        "2026-08-20T09:20:01.000033+00:00",
        "scanner",
        [],
        {
            "src.addr": "10.0.0.3:50031",
            "http.method": "GET",
            "http.host": "nope.example",
            "http.path": "/",
            "http.version": "HTTP/1.1",
            "http.status": 404,
            "error": "listener not found",
            "reason": "NotFound",
            "duration": 0,
        },
    ),
    ("C14", 0): (
        "2026-08-20T09:21:44.081234+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "tls",
            "route": "default/passthrough",
            "endpoint": "10.96.0.30:443",
            "src.addr": "10.0.0.3:50040",
            "tls.sni": "db.internal.example",
            "protocol": "tcp",
            "duration": 15342,
        },
    ),
    ("C15", 0): (
        "2026-08-20T09:22:10.443211+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "mcp",
            "route": "default/mcp",
            "src.addr": "127.0.0.1:61990",
            "http.method": "POST",
            "http.host": "localhost",
            "http.path": "/mcp",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "mcp",
            "mcp.method.name": "tools/call",
            "mcp.target": "everything",
            "mcp.resource.type": "tool",
            "gen_ai.tool.name": "echo",
            "mcp.session.id": "6b497ee9-3710-428a-96d2-31ebeab73dcd",
            "duration": 7,
        },
    ),
    ("C16", 0): (
        "2026-08-20T09:22:11.000001+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "mcp",
            "route": "default/mcp",
            "src.addr": "127.0.0.1:61990",
            "http.method": "POST",
            "http.host": "localhost",
            "http.path": "/mcp",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "mcp",
            "mcp.method.name": "resources/read",
            "mcp.target": "files",
            "mcp.resource.type": "resource",
            "mcp.resource.uri": "file:///srv/docs/My Report.md",
            "mcp.session.id": "6b497ee9-3710-428a-96d2-31ebeab73dcd",
            "duration": 3,
        },
    ),
    ("C17", 0): (
        "2026-08-20T09:22:12.090807+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "mcp",
            "route": "default/mcp",
            "src.addr": "127.0.0.1:61990",
            "http.method": "POST",
            "http.host": "localhost",
            "http.path": "/mcp",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "mcp",
            "mcp.method.name": "server/discover",
            "mcp.target": "everything",
            "mcp.session.id": "6b497ee9-3710-428a-96d2-31ebeab73dcd",
            "mcp.error.code": -32601,
            "mcp.error.message": "Method not found: server/discover",
            "duration": 2,
        },
    ),
    ("C18", 0): (
        "2026-08-20T09:23:30.260013+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "a2a",
            "route": "default/agent",
            "endpoint": "localhost:9999",
            "src.addr": "127.0.0.1:57408",
            "http.method": "POST",
            "http.host": "localhost",
            "http.path": "/",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "a2a",
            "a2a.method": "message/send",
            "a2a.response.outcome": "success",
            "a2a.result.kind": "task",
            "a2a.task.state": "completed",
            "a2a.context.id": "8f2b1c94-2d1e-4c1b-9a55-0b7e6f3a2c11",
            "duration": 912,
        },
    ),
    ("C19", 0): (
        "2026-08-20T09:24:00.000412+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "grpc",
            "route": "default/greeter",
            "endpoint": "10.96.0.40:50051",
            "src.addr": "10.0.0.3:50100",
            "http.method": "POST",
            "http.host": "greeter.local",
            "http.path": "/helloworld.Greeter/SayHello",
            "http.version": "HTTP/2.0",
            "http.status": 200,
            "grpc.status": 14,
            "protocol": "http",
            "duration": 5,
        },
    ),
    ("C20", 0): (
        "2025-08-20T10:00:00.012345+00:00",
        "scanner",
        [],
        {
            "gateway": "bind/3000",
            "listener": "listener0",
            "route": "route0",
            "endpoint": "localhost:8080",
            "src.addr": "[::1]:60001",
            "http.method": "GET",
            "http.host": "localhost",
            "http.path": "/",
            "http.version": "HTTP/1.1",
            "http.status": 503,
            "error": "upstream call failed: Connect: tcp connect error: Connection refused (os error 111)",
            "duration": 1,
        },
    ),
    ("C21", 0): (
        "2025-07-14T12:00:00.004211+00:00",
        "scanner",
        [],
        {
            "gateway": "bind/3000",
            "listener": "listener0",
            "route": "route0",
            "endpoint": "localhost:8080",
            "src.addr": "127.0.0.1:50200",
            "http.method": "GET",
            "http.host": "localhost",
            "http.path": "/secure",
            "http.version": "HTTP/1.1",
            "http.status": 401,
            "jwt.sub": "user 1",
            "error": "authentication failure: token expired",
            "duration": 0,
        },
    ),
    ("C22", 0): (
        "2026-09-05T13:29:20.003270+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "http",
            "route": "default/httpbin",
            "endpoint": "httpbin:80",
            "src.addr": "10.0.0.3:50300",
            "http.method": "GET",
            "http.host": "localhost",
            "http.path": "/get",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "http",
            "duration": 2,
        },
    ),
    ("C23", 0): (
        "2026-08-20T09:25:07.000005+00:00",
        "scanner",
        [],
        {
            "gateway": "default/default",
            "listener": "http",
            "route": "default/httpbin",
            "endpoint": "httpbin:80",
            "src.addr": "10.0.0.3:50301",
            "http.method": "GET",
            "http.host": "localhost",
            "http.path": "/status/200",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "http",
            "duration": 1,
        },
    ),
    ("W01", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "scanner",
        ["compose-v2:agentgateway-1"],
        ALICE,
    ),
    ("W02", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "scanner",
        ["compose-v2:agentgateway-1"],
        ALICE,
    ),
    ("W03", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "scanner",
        ["compose-v2:agentgateway"],
        ALICE,
    ),
    ("W04", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "scanner",
        ["compose-v1:agentgateway_1"],
        ALICE,
    ),
    ("W05", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "scanner",
        ["compose-v2:agentgateway-1", "timestamp"],
        ALICE,
    ),
    ("W06", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "scanner",
        [],
        ALICE,
    ),
    ("W07", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "scanner",
        ["compose-v2:agentgateway-1", "ansi"],
        ALICE,
    ),
    ("W08", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "scanner",
        ["compose-v2:agentgateway-1", "cr"],
        ALICE,
    ),
    ("W09", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "scanner",
        ["docker-json-file"],
        ALICE,
    ),
    ("W10", 0): (
        "2026-08-20T09:16:41.203377+00:00",
        "json",
        ["docker-json-file"],
        {
            "gateway": "default/default",
            "http.status": 200,
            "duration": 1733,
            "user.email": "alice@example.com",
        },
    ),
    ("W11", 1): (
        "2026-08-20T09:30:00.000001+00:00",
        "scanner",
        ["docker-json-file", "joined:2"],
        {
            "gateway": "default/default",
            "listener": "mcp",
            "route": "default/mcp",
            "src.addr": "127.0.0.1:61990",
            "http.method": "POST",
            "http.host": "localhost",
            "http.path": "/mcp",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "mcp",
            "mcp.method.name": "tools/call",
            "duration": 9,
            "tool_result": {
                "content": [{"type": "text", "text": "AAAA<...rest of the first 16384 bytes elided...>AAAA"}]
            },
        },
    ),
    ("W12", 0): (
        "2026-09-05T13:29:20.003270+00:00",
        "scanner",
        ["cri:stdout"],
        {
            "gateway": "default/waypoint",
            "listener": "proxy",
            "route": "default/reviews",
            "endpoint": "10.244.1.17:9080",
            "src.addr": "10.244.1.12:43210",
            "http.method": "GET",
            "http.host": "reviews.default.svc.cluster.local",
            "http.path": "/reviews/0",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "http",
            "duration": 3,
        },
    ),
    ("W13", 1): (
        "2026-09-05T13:33:11.066179+00:00",
        "scanner",
        ["cri:stdout", "joined:2"],
        {
            "gateway": "default/default",
            "listener": "mcp",
            "route": 'default/mcp ... tool_args={"blob": "AAAA<...16 KiB...>AAAA"}',
            "duration": 4,
        },
    ),
    ("W14", 0): (
        "2026-09-05T13:31:49.824736+00:00",
        "scanner",
        ["timestamp"],
        {
            "gateway": "default/default",
            "listener": "http",
            "route": "default/httpbin",
            "endpoint": "httpbin:80",
            "src.addr": "10.0.0.3:50400",
            "http.method": "GET",
            "http.host": "localhost",
            "http.path": "/get",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "http",
            "duration": 1,
        },
    ),
    ("W15", 0): (
        "2026-09-05T13:34:10.422787+00:00",
        "scanner",
        ["kubectl-prefix:pod/agentgateway-proxy-7d9c8b5f6-x2k4q/agentgateway"],
        {
            "gateway": "agentgateway-system/agentgateway-proxy",
            "listener": "http",
            "route": "httpbin/httpbin",
            "endpoint": "10.244.0.4:8080",
            "src.addr": "10.244.0.1:46886",
            "http.method": "GET",
            "http.host": "www.example.com",
            "http.path": "/get",
            "http.version": "HTTP/1.1",
            "http.status": 200,
            "protocol": "http",
            "duration": 0,
        },
    ),
}

SKIPPED = {
    ("R20", 0): "tracing event (warn downstream connection)",
    ("R23", 0): "JSON tracing event scope=agentgateway::management::hyper_helpers",
    ("R27", 0): "pre-v0.6 log format (uppercase level, no access log)",
    ("R27", 1): "pre-v0.6 log format (uppercase level, no access log)",
    ("C24", 0): "tracing event (warn request: message, not key=value)",
    ("C25", 0): "tracing event (info agentgateway_app::commands::run)",
    ("C25", 1): "continuation line without timestamp (multi-line message, or another program's output)",
    ("C25", 2): "continuation line without timestamp (multi-line message, or another program's output)",
    ("C25", 3): "continuation line without timestamp (multi-line message, or another program's output)",
    ("C25", 4): "continuation line without timestamp (multi-line message, or another program's output)",
    ("C25", 5): "continuation line without timestamp (multi-line message, or another program's output)",
    ("C25", 6): "continuation line without timestamp (multi-line message, or another program's output)",
    ("C25", 7): "tracing event (info agentgateway_app::commands::run)",
    ("C25", 8): "continuation line without timestamp (multi-line message, or another program's output)",
    ("C25", 9): "continuation line without timestamp (multi-line message, or another program's output)",
    ("C25", 10): "continuation line without timestamp (multi-line message, or another program's output)",
    ("C25", 11): "tracing event (info management::hyper_helpers)",
    ("C25", 12): "tracing event (info proxy::gateway)",
    ("C26", 0): "tracing event (debug upstream request)",
    ("C27", 0): "Rust panic message (stderr)",
    ("C27", 1): "continuation line without timestamp (multi-line message, or another program's output)",
    ("C27", 2): "continuation line without timestamp (multi-line message, or another program's output)",
    ("W02", 1): "continuation line without timestamp (multi-line message, or another program's output)",
}


def _examples() -> dict[str, str]:
    return {d["id"]: d["line"] for d in map(json.loads, EXAMPLES.read_text().splitlines())}


def _read_all(text: str) -> list[Any]:
    """The readings of one example's physical lines (multi-line examples), then of ``flush``."""
    reader = LineReader()
    return [reader.read(line) for line in text.split("\n")] + reader.flush()


@pytest.mark.parametrize("example", ["W11", "W13"])
def test_partials_are_held_then_joined(example: str) -> None:
    first, joined = _read_all(_examples()[example])
    assert first.outcome is Outcome.HELD and first.event is None
    assert joined.outcome is Outcome.PARSED


def test_every_example_is_covered() -> None:
    ids = {key[0] for key in PARSED} | {key[0] for key in SKIPPED}
    assert ids == set(_examples())


@pytest.mark.parametrize("key", sorted(PARSED), ids=lambda k: f"{k[0]}.{k[1]}")
def test_parsed(key: tuple[str, int]) -> None:
    ts, parser, layers, fields = PARSED[key]
    reading = _read_all(_examples()[key[0]])[key[1]]
    assert reading.outcome is Outcome.PARSED, reading.reason
    assert reading.event is not None
    assert reading.event.fields == fields
    assert list(reading.event.fields) == list(fields)  # line order
    assert reading.event.ts == datetime.fromisoformat(ts)
    assert (reading.parser, reading.layers) == (parser, layers)


@pytest.mark.parametrize("key", sorted(SKIPPED), ids=lambda k: f"{k[0]}.{k[1]}")
def test_skipped(key: tuple[str, int]) -> None:
    reading = _read_all(_examples()[key[0]])[key[1]]
    assert (reading.outcome, reading.reason, reading.event) == (Outcome.SKIPPED, SKIPPED[key], None)


@pytest.mark.parametrize("key", sorted(k for k in PARSED if PARSED[k][1] == "scanner" and not PARSED[k][2]))
def test_reference_and_scanner_agree(key: tuple[str, int]) -> None:
    line = _examples()[key[0]].split("\n")[key[1]]
    parsed = ReferenceParser().parse(line)
    assert not isinstance(parsed, str), parsed
    assert parsed.fields == PARSED[key][3]
    assert Scanner().scan(line) == parsed


def test_types_of_note() -> None:
    """The values the format doc calls out (§2, §3, §9.4), spelled out once more."""
    r02 = PARSED[("R02", 0)]
    assert r02[0].endswith(".059908+00:00")  # .59908Z = 59908 µs
    assert PARSED[("C23", 0)][0].endswith(".000005+00:00")  # .5Z = 5 µs
    assert PARSED[("C22", 0)][0].endswith(".003270+00:00")  # padded after PR #3370
    assert r02[3]["agw.ai.usage.cost.total"] == Decimal("0.000393")
    assert PARSED[("C09", 0)][3]["jwt.sub"] == "John Doe (ops=admin)"
    assert PARSED[("C10", 0)][3]["gen_ai.request.model"] == ""
    assert PARSED[("C16", 0)][3]["mcp.resource.uri"] == "file:///srv/docs/My Report.md"
    assert PARSED[("C21", 0)][3]["jwt.sub"] == "user 1"  # v0.6.0/0.6.1 TAB form, Debug-quoted
