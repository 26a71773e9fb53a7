"""Identity resolution: candidate fields, Open WebUI's name encoding and JWT, hashing, config errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gwlog.errors import ConfigError
from gwlog.events import Identity
from gwlog.identity import IdentityConfig, IdentityResolver, PrivacyConfig, TeamConfig

SECRET = "open-webui-forward-secret"
HASH_SECRET = "0123456789abcdef0123456789abcdef"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict[str, Any], secret: str = SECRET, alg: str = "HS256") -> str:
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig) if alg != 'none' else ''}"


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "u-42",
        "email": "Dana@Example.com",
        "name": "Dana Scully",
        "role": "admin",
        "iss": "open-webui",
        "iat": now,
        "exp": now + 300,
        **extra,
    }


def jwt_resolver(**identity: Any) -> IdentityResolver:
    cfg = IdentityConfig.from_section({"jwt_secret": SECRET, **identity}, "gwlog.toml")
    return IdentityResolver(cfg, TeamConfig(), PrivacyConfig())


def resolve(fields: dict[str, Any]) -> Identity:
    return IdentityResolver.default().resolve(fields)


BUILTINS = {
    "gateway": "default/default",
    "http.status": 200,
    "gen_ai.request.model": "gpt-4o",
    "duration": 12,
}


@pytest.mark.parametrize(
    "fields",
    [
        {
            "user.email": "alice@example.com",
            "user.id": "7",
            "user.name": "Alice",
            "user.role": "user",
            "chat.id": "c1",
        },
        {
            "x-openwebui-user-email": "alice@example.com",
            "x-openwebui-user-id": "7",
            "x-openwebui-user-name": "Alice",
            "x-openwebui-user-role": "user",
            "x-openwebui-chat-id": "c1",
        },
        {
            "http.header.x-openwebui-user-email": "alice@example.com",
            "http.header.x-openwebui-user-id": "7",
            "http.header.x-openwebui-user-name": "Alice",
            "http.header.x-openwebui-user-role": "user",
            "http.header.x-openwebui-chat-id": "c1",
        },
        {
            "user_email": "alice@example.com",
            "user_id": 7,
            "user_name": "Alice",
            "user_role": "user",
            "chat_id": "c1",
        },
        {
            "openwebui.user.email": "alice@example.com",
            "openwebui.user.id": "7",
            "openwebui.user.name": "Alice",
            "openwebui.user.role": "user",
            "openwebui.chat.id": "c1",
        },
    ],
    ids=["cel-dotted", "header-names", "http.header", "underscore", "openwebui-prefix"],
)
def test_candidate_families(fields: dict[str, Any]) -> None:
    got = resolve({**BUILTINS, **fields})
    assert got == Identity("alice@example.com", "7", "alice@example.com", "Alice", "user", "c1", "unassigned")


def test_first_candidate_wins_and_values_are_stripped() -> None:
    got = resolve({"x-user-email": "second@example.com", "user.email": "  first@example.com  "})
    assert got.user_email == "first@example.com"


def test_empty_values_are_missing_and_later_candidates_used() -> None:
    got = resolve({"user.email": "   ", "x-openwebui-user-email": "bob@example.com", "user.name": ""})
    assert got.user_email == "bob@example.com" and got.user_name is None


def test_email_lowercased_by_default_and_configurable() -> None:
    assert resolve({"user.email": "Bob@Example.COM"}).user_email == "bob@example.com"
    cfg = IdentityConfig.from_section({"lowercase_email": False}, "gwlog.toml")
    got = IdentityResolver(cfg, TeamConfig(), PrivacyConfig()).resolve({"user.email": "Bob@Example.COM"})
    assert got.user_email == "Bob@Example.COM"


def test_url_encoded_name_is_decoded() -> None:
    # Open WebUI: quote(name.strip(), safe=" ") — spaces kept, UTF-8 percent-encoded.
    got = resolve({"user.name": "J%C3%BCrgen M%C3%BCller", "user.id": "9"})
    assert got.user_name == "Jürgen Müller"
    assert resolve({"user.name": "J%C3%BCrgen M%C3%BCller"}).user == "Jürgen Müller"
    assert resolve({"user.name": "100%25 Plain"}).user_name == "100% Plain"


def test_missing_headers_give_none_and_default_team() -> None:
    assert resolve(dict(BUILTINS)) == Identity(team="unassigned")
    assert resolve({}) == Identity(team="unassigned")


def test_non_string_values() -> None:
    got = resolve({"user.id": 1234, "user.email": {"not": "a string"}, "user.role": True})
    assert got.user_id == "1234" and got.user_email is None and got.user_role is None


def test_user_label_order_email_id_name_jwt_sub_api_key() -> None:
    assert resolve({"user.name": "N", "user.id": "I", "user.email": "e@x"}).user == "e@x"
    assert resolve({"user.name": "N", "user.id": "I"}).user == "I"
    assert resolve({"user.name": "N"}).user == "N"
    assert resolve({"api_key.name": "ci-bot"}).user == "ci-bot"


def test_jwt_sub_is_the_id_fallback() -> None:
    got = resolve({"jwt.sub": "kc-7f3a", "api_key.name": "ci-bot"})
    assert got.user_id == "kc-7f3a" and got.user == "kc-7f3a"
    got = resolve({"jwt.sub": "kc-7f3a", "user.id": "owui-1"})
    assert got.user_id == "owui-1"


def test_user_can_name_raw_fields() -> None:
    cfg = IdentityConfig.from_section({"user": ["github.user", "user_email"]}, "gwlog.toml")
    r = IdentityResolver(cfg, TeamConfig(), PrivacyConfig())
    assert r.resolve({"github.user": "octocat", "user.email": "o@x"}).user == "octocat"
    assert r.resolve({"user.email": "o@x"}).user == "o@x"


def test_custom_candidates_replace_defaults() -> None:
    cfg = IdentityConfig.from_section({"user_email": ["github.email"]}, "gwlog.toml")
    r = IdentityResolver(cfg, TeamConfig(), PrivacyConfig())
    assert r.resolve({"github.email": "g@x", "user.email": "ignored@x"}).user_email == "g@x"


# --- Open WebUI's signed JWT ------------------------------------------------------------------


def test_valid_jwt_claims_become_identity_and_override_headers() -> None:
    r = jwt_resolver()
    got = r.resolve({"user.jwt": make_jwt(claims()), "user.email": "spoofed@example.com"})
    assert got == Identity("dana@example.com", "u-42", "dana@example.com", "Dana Scully", "admin", None, "unassigned")
    assert sum(r.stats.values()) == 0


def test_jwt_exp_is_checked_against_the_line_time() -> None:
    r = jwt_resolver()
    issued = datetime(2026, 1, 5, 10, 0, tzinfo=UTC).timestamp()
    token = make_jwt(claims(iat=int(issued), exp=int(issued) + 300))
    assert r.resolve({"user.jwt": token}, datetime(2026, 1, 5, 10, 2, tzinfo=UTC)).user_id == "u-42"
    assert r.resolve({"user.jwt": token}, datetime(2026, 1, 5, 11, 0, tzinfo=UTC)).user_id is None
    assert r.stats["expired"] == 1


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (make_jwt(claims(), secret="attacker-guess"), "signature"),
        (make_jwt(claims(exp=int(time.time()) - 3600)), "expired"),
        (make_jwt(claims(), alg="none"), "algorithm"),
        (make_jwt(claims(), alg="HS512"), "algorithm"),
        (make_jwt(claims(iss="someone-else")), "issuer"),
        (make_jwt(claims(nbf=int(time.time()) + 3600)), "not_yet_valid"),
        ("not-a-jwt", "malformed"),
        ("a.b.c", "malformed"),
    ],
    ids=["forged-signature", "expired", "alg-none", "alg-hs512", "issuer", "nbf", "no-dots", "garbage"],
)
def test_rejected_jwts_are_counted_and_ignored(token: str, reason: str) -> None:
    r = jwt_resolver()
    got = r.resolve({"user.jwt": token, "jwt.sub": "gateway-sub"})
    assert got.user_id == "gateway-sub" and got.user_email is None and got.user_role is None
    assert r.stats[reason] == 1 and sum(r.stats.values()) == 1


def test_tampered_payload_with_original_signature_is_rejected() -> None:
    head, _, sig = make_jwt(claims()).split(".")
    body = b64(json.dumps(claims(email="ceo@example.com")).encode())
    r = jwt_resolver()
    assert r.resolve({"user.jwt": f"{head}.{body}.{sig}"}).user_email is None
    assert r.stats["signature"] == 1


def test_jwt_leeway() -> None:
    r = jwt_resolver(jwt_leeway_seconds=120)
    assert r.resolve({"user.jwt": make_jwt(claims(exp=int(time.time()) - 60))}).user_id == "u-42"


def test_jwt_without_secret_is_not_trusted() -> None:
    r = IdentityResolver.default()
    assert r.resolve({"user.jwt": make_jwt(claims())}).user_id is None
    assert r.stats["no_secret"] == 1


def test_jwt_secret_file(tmp_path: Path) -> None:
    (tmp_path / "jwt.key").write_text(SECRET + "\n")
    cfg = IdentityConfig.from_section({"jwt_secret_file": "jwt.key"}, str(tmp_path / "gwlog.toml"))
    r = IdentityResolver(cfg, TeamConfig(), PrivacyConfig())
    assert r.resolve({"x-openwebui-user-jwt": make_jwt(claims())}).user_id == "u-42"


# --- pseudonymisation ----------------------------------------------------------------------------


def hashing(**privacy: Any) -> IdentityResolver:
    cfg = PrivacyConfig.from_section({"hash_identities": True, "hash_secret": HASH_SECRET, **privacy}, "gwlog.toml")
    teams = TeamConfig.from_section({"members": {"Platform": ["alice@example.com"]}}, "gwlog.toml")
    return IdentityResolver(IdentityConfig(), teams, cfg)


FIELDS = {
    "user.email": "alice@example.com",
    "user.name": "Alice",
    "user.id": "7",
    "user.role": "user",
    "chat.id": "c1",
}


def test_hashing_is_keyed_hmac_truncated_and_prefixed() -> None:
    got = hashing().resolve(FIELDS)
    expected = "u_" + hmac.new(HASH_SECRET.encode(), b"alice@example.com", hashlib.sha256).hexdigest()[:16]
    assert got.user == got.user_email == expected
    assert got.user_name != "Alice" and got.user_id != "7" and got.chat_id != "c1"
    assert got.user_role == "user"  # not personal on its own, kept for the role label
    assert got.team == "Platform"  # computed on the clear email before hashing


def test_hashing_is_stable_across_resolvers_and_depends_on_the_secret() -> None:
    a = hashing().resolve(FIELDS)
    b = hashing().resolve(dict(FIELDS))
    c = hashing(hash_secret="another-secret-of-enough-length").resolve(FIELDS)
    assert a == b
    assert a.user != c.user
    assert hashlib.sha256(b"alice@example.com").hexdigest()[:16] not in (a.user or "")


def test_hash_length_and_prefix() -> None:
    got = hashing(hash_length=8, hash_prefix="").resolve(FIELDS)
    assert got.user is not None and len(got.user) == 8


def test_archive_transform_only_with_hash_archive() -> None:
    assert hashing().archive_transform() is None
    r = hashing(hash_archive=True)
    transform = r.archive_transform()
    assert transform is not None
    fields = {**FIELDS, "user.jwt": "x.y.z", "user.name": "J%C3%BCrgen", "user.email": "Alice@Example.com"}
    ident = r.resolve(fields)
    record = {
        "user": ident.user,
        "user_email": ident.user_email,
        "team": ident.team,
        "fields": {**fields, "http.status": 200},
    }
    out = transform(record)
    assert out["user"] == ident.user  # already hashed for labels: not hashed twice
    assert out["fields"]["user.email"] == ident.user_email  # same pseudonym as the label
    assert out["fields"]["user.name"] == ident.user_name and out["fields"]["user.role"] == "user"
    assert out["fields"]["user.jwt"] == "[redacted]" and out["fields"]["http.status"] == 200
    assert "alice" not in json.dumps(out)


def test_hash_archive_alone_hashes_the_archive_but_not_labels() -> None:
    cfg = PrivacyConfig.from_section({"hash_archive": True, "hash_secret": HASH_SECRET}, "gwlog.toml")
    r = IdentityResolver(IdentityConfig(), TeamConfig(), cfg)
    ident = r.resolve(FIELDS)
    assert ident.user == "alice@example.com"
    transform = r.archive_transform()
    assert transform is not None
    out = transform({"user": ident.user, "user_email": ident.user_email, "fields": dict(FIELDS)})
    assert out["user"].startswith("u_") and "alice" not in json.dumps(out)


# --- config errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "section", "key", "fix_part"),
    [
        (IdentityConfig, {"user": 3}, "[identity] user", 'user = ["user.email"]'),
        (IdentityConfig, {"user_emial": ["x"]}, "[identity] user_emial", "did you mean 'user_email'"),
        (IdentityConfig, {"user_email": "user.email"}, "[identity] user_email", '["user.email"]'),
        (IdentityConfig, {"jwt_secret": "a", "jwt_secret_file": "b"}, "[identity] jwt_secret", "keep only"),
        (IdentityConfig, {"jwt_secret_file": "/nonexistent/key"}, "[identity] jwt_secret_file", "readable"),
        (IdentityConfig, {"jwt_leeway_seconds": -1}, "[identity] jwt_leeway_seconds", "jwt_leeway_seconds ="),
        (IdentityConfig, {"lowercase_email": "yes"}, "[identity] lowercase_email", "no quotes"),
        (PrivacyConfig, {"hash_identities": True}, "[privacy] hash_identities", "hash_secret_file"),
        (PrivacyConfig, {"hash_archive": True}, "[privacy] hash_archive", "openssl rand"),
        (PrivacyConfig, {"hash_secret": "short"}, "[privacy] hash_secret", "at least 16"),
        (PrivacyConfig, {"hash_length": 100}, "[privacy] hash_length", "hash_length ="),
        (PrivacyConfig, {"salt": "x"}, "[privacy] salt", "use one of"),
    ],
)
def test_config_errors_name_file_key_and_fix(cls: Any, section: dict[str, Any], key: str, fix_part: str) -> None:
    with pytest.raises(ConfigError) as err:
        cls.from_section(section, "gwlog.toml")
    assert err.value.file == "gwlog.toml" and err.value.key == key
    assert fix_part in err.value.fix
    assert str(err.value).startswith(f"gwlog.toml: {key}: ")


def test_defaults_need_no_config() -> None:
    assert IdentityConfig.from_section({}, "<defaults>") == IdentityConfig()
    assert PrivacyConfig.from_section({}, "<defaults>") == PrivacyConfig()


def test_resolve_rate_common_case() -> None:
    """Not a benchmark gate (shared CI cores), just a guard against accidental slow paths."""
    r = IdentityResolver.default()
    lines = [
        {
            **BUILTINS,
            "user.email": f"u{i % 50}@example.com",
            "user.name": "J%C3%BCrgen",
            "user.role": "user",
            "chat.id": f"c{i}",
        }
        for i in range(20_000)
    ]
    start = time.perf_counter()
    for fields in lines:
        r.resolve(fields)
    assert len(lines) / (time.perf_counter() - start) > 50_000


def test_an_old_line_is_judged_at_its_own_time_by_the_reader() -> None:
    """Backfill: a JWT valid when the request was made is accepted months later (expiry at line time)."""
    from gwlog.reader import LineReader

    issued = 1_787_216_000  # 2026-08-20T08:53:20Z, months before this test runs
    token = make_jwt({**claims(), "iat": issued, "exp": issued + 300})
    line = f'2026-08-20T08:55:00.5Z\tinfo\trequest src.addr=1.1.1.1:1 http.status=200 duration=1ms user.jwt="{token}"'
    resolver = jwt_resolver()
    reading = LineReader(resolver.resolve).read(line)
    assert reading.event is not None and reading.event.user_email == "dana@example.com"
    assert not any(resolver.stats.values())
