"""Who sent a request, and which team pays: identity candidates, Open WebUI's JWT, teams, hashing.

The gateway logs request headers only as custom fields whose names each deployment chooses
(``user.email``, ``x-openwebui-user-email`` …), so every identity attribute is an ordered list of
candidate field names; the first present, non-empty value wins. ``IdentityResolver.resolve`` runs
once per log line, so everything that can be is precomputed or cached (bounded).

Order inside ``resolve``: read candidates → verified JWT claims override them → pick the ``user``
label → compute the team on clear values → pseudonymise (keyed hash) what goes into labels.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote

from gwlog.errors import ConfigError, check_keys, expect_bool, expect_int, expect_str, expect_str_list, expect_table
from gwlog.events import Identity

# --------------------------------------------------------------------------------------------
# Config helpers (strict: unknown keys and wrong types are errors with a concrete fix)
# --------------------------------------------------------------------------------------------


def _read_secret(path_value: Any, file: str, key: str) -> bytes:
    """Read a secret file relative to the config file; a trailing newline is not part of it."""
    path = Path(file).parent / expect_str(path_value, file, key, '"/run/secrets/gwlog_hash_key"')
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(file, key, f"cannot read {str(path)!r} ({exc.strerror})",
                          "point it at a readable file holding the secret") from None  # fmt: skip
    if not secret:
        raise ConfigError(file, key, f"{str(path)!r} is empty", "write the secret into that file")
    return secret


def _secret(section: Mapping[str, Any], file: str, name: str, prefix: str) -> bytes | None:
    """``<prefix>_secret`` or ``<prefix>_secret_file`` (never both)."""
    inline, from_file = f"{prefix}_secret", f"{prefix}_secret_file"
    if inline in section and from_file in section:
        raise ConfigError(file, f"[{name}] {inline}", f"both {inline} and {from_file} are set",
                          f"keep only {from_file} (secrets do not belong in config files)")  # fmt: skip
    if inline in section:
        return expect_str(section[inline], file, f"[{name}] {inline}", '"<output of openssl rand -hex 32>"').encode()
    if from_file in section:
        return _read_secret(section[from_file], file, f"[{name}] {from_file}")
    return None


# --------------------------------------------------------------------------------------------
# [identity]
# --------------------------------------------------------------------------------------------


# The names a header tends to be logged under: the CEL field name users pick in the gateway's
# accessLog.add, the header name itself, an ``http.header.`` form, and an ``openwebui.`` form.
DEFAULT_CANDIDATES: dict[str, tuple[str, ...]] = {
    "user_email": (
        "user.email", "user_email", "x-user-email", "http.header.x-user-email",
        "x-openwebui-user-email", "http.header.x-openwebui-user-email", "openwebui.user.email",
        "user.mail", "email",
    ),
    "user_id": (
        "user.id", "user_id", "x-user-id", "http.header.x-user-id",
        "x-openwebui-user-id", "http.header.x-openwebui-user-id", "openwebui.user.id", "jwt.sub",
    ),
    "user_name": (
        "user.name", "user_name", "x-user-name", "http.header.x-user-name",
        "x-openwebui-user-name", "http.header.x-openwebui-user-name", "openwebui.user.name",
    ),
    "user_role": (
        "user.role", "user_role", "x-user-role", "http.header.x-user-role",
        "x-openwebui-user-role", "http.header.x-openwebui-user-role", "openwebui.user.role",
    ),
    "chat_id": (
        "chat.id", "chat_id", "x-openwebui-chat-id", "http.header.x-openwebui-chat-id", "openwebui.chat.id",
    ),
    "api_key_name": (
        "api_key.name", "apikey.name", "x-api-key-name", "http.header.x-api-key-name",
    ),
}  # fmt: skip
DEFAULT_JWT_FIELDS = (
    "user.jwt",
    "x-openwebui-user-jwt",
    "http.header.x-openwebui-user-jwt",
    "openwebui.user.jwt",
)
DEFAULT_USER = ("user_email", "user_id", "user_name", "jwt.sub", "api_key_name")
JWT_REJECT_REASONS = (
    "malformed",
    "algorithm",
    "signature",
    "expired",
    "not_yet_valid",
    "issuer",
    "no_secret",
)


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """Where identity comes from: candidate field names per attribute, first present wins."""

    user_email: tuple[str, ...] = DEFAULT_CANDIDATES["user_email"]
    user_id: tuple[str, ...] = DEFAULT_CANDIDATES["user_id"]
    user_name: tuple[str, ...] = DEFAULT_CANDIDATES["user_name"]
    user_role: tuple[str, ...] = DEFAULT_CANDIDATES["user_role"]
    chat_id: tuple[str, ...] = DEFAULT_CANDIDATES["chat_id"]
    api_key_name: tuple[str, ...] = DEFAULT_CANDIDATES["api_key_name"]
    user: tuple[str, ...] = DEFAULT_USER
    lowercase_email: bool = True
    jwt_field: tuple[str, ...] = DEFAULT_JWT_FIELDS
    jwt_secret: bytes | None = field(default=None, repr=False)
    jwt_issuer: str = "open-webui"
    jwt_leeway_seconds: int = 60

    KEYS = (*DEFAULT_CANDIDATES, "user", "lowercase_email", "jwt_field", "jwt_secret", "jwt_secret_file",
            "jwt_issuer", "jwt_leeway_seconds")  # fmt: skip

    @classmethod
    def from_section(cls, section: dict[str, Any], file: str) -> Self:
        check_keys(section, cls.KEYS, file, "[identity]")
        kw: dict[str, Any] = {}
        for attr, defaults in DEFAULT_CANDIDATES.items():
            if attr in section:
                kw[attr] = expect_str_list(section[attr], file, f"[identity] {attr}", f'["{defaults[0]}"]')
        if "user" in section:
            kw["user"] = expect_str_list(section["user"], file, "[identity] user", '["user.email"]')
        if "lowercase_email" in section:
            kw["lowercase_email"] = expect_bool(section["lowercase_email"], file, "[identity] lowercase_email")
        if "jwt_field" in section:
            value = section["jwt_field"]
            key = "[identity] jwt_field"
            kw["jwt_field"] = (
                (expect_str(value, file, key, '"user.jwt"'),)
                if isinstance(value, str)
                else expect_str_list(value, file, key, '"user.jwt"')
            )
        kw["jwt_secret"] = _secret(section, file, "identity", "jwt")
        if "jwt_issuer" in section:
            kw["jwt_issuer"] = expect_str(section["jwt_issuer"], file, "[identity] jwt_issuer", '"open-webui"')
        if "jwt_leeway_seconds" in section:
            kw["jwt_leeway_seconds"] = expect_int(section["jwt_leeway_seconds"], file,
                                            "[identity] jwt_leeway_seconds", 0, 3600)  # fmt: skip
        return cls(**kw)


# --------------------------------------------------------------------------------------------
# [teams]
# --------------------------------------------------------------------------------------------

RULE_KINDS = ("static", "groups", "regex", "domain")
REGEX_ON = ("user", "email", "id", "name")
DEFAULT_GROUP_FIELDS = ("user.groups", "user_groups", "x-openwebui-user-groups",
                        "http.header.x-openwebui-user-groups", "openwebui.user.groups")  # fmt: skip


@dataclass(frozen=True, slots=True)
class RegexRule:
    """``pattern`` searched in one identity attribute (clear value) gives ``team``."""

    pattern: re.Pattern[str]
    team: str
    on: str = "user"


@dataclass(frozen=True, slots=True)
class TeamConfig:
    """User → team rules; the first rule kind in ``precedence`` that matches wins.

    ``members`` is keyed by lower-cased identifier (email, id, name or user label) → team;
    ``domains`` by lower-cased email domain; ``groups`` by lower-cased group name → team (empty:
    the first group itself is the team).
    """

    default: str = "unassigned"
    precedence: tuple[str, ...] = RULE_KINDS
    members: Mapping[str, str] = field(default_factory=dict)
    domains: Mapping[str, str] = field(default_factory=dict)
    regex: tuple[RegexRule, ...] = ()
    groups: Mapping[str, str] = field(default_factory=dict)
    groups_field: tuple[str, ...] = DEFAULT_GROUP_FIELDS
    groups_separator: str = ","
    teams_file: str | None = None

    KEYS = ("default", "precedence", "members", "domains", "regex", "groups", "groups_field",
            "groups_separator", "teams_file")  # fmt: skip

    @classmethod
    def from_section(cls, section: dict[str, Any], file: str) -> Self:
        check_keys(section, cls.KEYS, file, "[teams]")
        if "teams_file" not in section:
            return cls._rules(section, file, None)
        extra = sorted(set(section) - {"teams_file"})
        if extra:
            raise ConfigError(file, f"[teams] {extra[0]}", "is set next to teams_file",
                              "move the other [teams] keys into the teams file's [teams] table")  # fmt: skip
        path = str(Path(file).parent / expect_str(section["teams_file"], file, "[teams] teams_file", '"teams.toml"'))
        return cls.load_file(path)

    @classmethod
    def load_file(cls, path: str) -> Self:
        """Read a teams file: a TOML file with one ``[teams]`` table (everything but teams_file)."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(path, "(file)", f"cannot be read ({exc.strerror})",
                              "fix [teams] teams_file or the file's permissions") from None  # fmt: skip
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(path, "(syntax)", f"is not valid TOML: {exc}", "fix the syntax at that line") from None
        for key in data:
            if key != "teams":
                raise ConfigError(path, key, "is outside the [teams] table",
                                  f"write it as [teams.{key}] or put it under [teams]")  # fmt: skip
        section = expect_table(data.get("teams", {}), path, "[teams]", "a [teams] table")
        if "teams_file" in section:
            raise ConfigError(path, "[teams] teams_file", "a teams file cannot point to another one",
                              "remove teams_file from the teams file")  # fmt: skip
        check_keys(section, cls.KEYS, path, "[teams]")
        return cls._rules(section, path, path)

    def reload(self) -> TeamConfig:
        """Re-read ``teams_file`` (SIGHUP); without one the rules are fixed, so return self."""
        return self if self.teams_file is None else self.load_file(self.teams_file)

    @classmethod
    def _rules(cls, s: Mapping[str, Any], file: str, teams_file: str | None) -> Self:
        kw: dict[str, Any] = {"teams_file": teams_file}
        if "default" in s:
            kw["default"] = expect_str(s["default"], file, "[teams] default", '"unassigned"')
        if "precedence" in s:
            example = '["static", "groups", "regex", "domain"]'
            order = expect_str_list(s["precedence"], file, "[teams] precedence", example)
            for kind in order:
                if kind not in RULE_KINDS:
                    raise ConfigError(file, "[teams] precedence", f"unknown rule kind {kind!r}",
                                      f"use some of: {', '.join(RULE_KINDS)}")  # fmt: skip
            if len(set(order)) != len(order):
                raise ConfigError(file, "[teams] precedence", "a rule kind is listed twice", "list each kind once")
            kw["precedence"] = order
        if "members" in s:
            kw["members"] = cls._members(s["members"], file)
        if "domains" in s:
            domains: dict[str, str] = {}
            example = '[teams.domains] with "example.com" = "Platform"'
            for domain, team in expect_table(s["domains"], file, "[teams.domains]", example).items():
                key = f'[teams.domains] "{domain}"'
                if not domain.strip() or "@" in domain:
                    raise ConfigError(file, key, "is not an email domain", 'write "example.com" = "Platform"')
                domains[domain.strip().lower().lstrip(".")] = expect_str(team, file, key, '"Platform"')
            kw["domains"] = domains
        if "regex" in s:
            kw["regex"] = cls._regex(s["regex"], file)
        if "groups" in s:
            groups: dict[str, str] = {}
            for group, team in expect_table(s["groups"], file, "[teams.groups]",
                                      '[teams.groups] with "platform" = "Platform"').items():  # fmt: skip
                groups[_norm_group(group)] = expect_str(team, file, f'[teams.groups] "{group}"', '"Platform"')
            kw["groups"] = groups
        if "groups_field" in s:
            kw["groups_field"] = expect_str_list(s["groups_field"], file, "[teams] groups_field", '["user.groups"]')
        if "groups_separator" in s:
            kw["groups_separator"] = expect_str(s["groups_separator"], file, "[teams] groups_separator", '","')
        return cls(**kw)

    @staticmethod
    def _members(value: Any, file: str) -> dict[str, str]:
        members: dict[str, str] = {}
        table = expect_table(value, file, "[teams.members]", '[teams.members] with Platform = ["alice@example.com"]')
        for team, users in table.items():
            key = f'[teams.members] "{team}"'
            if not team.strip():
                raise ConfigError(file, key, "team name is empty", 'write Platform = ["alice@example.com"]')
            for user in expect_str_list(users, file, key, '["alice@example.com", "bob"]'):
                other = members.setdefault(user.lower(), team)
                if other != team:
                    raise ConfigError(file, key, f"{user!r} is also a member of {other!r}",
                                      "list each user in one team only")  # fmt: skip
        return members

    @staticmethod
    def _regex(value: Any, file: str) -> tuple[RegexRule, ...]:
        example = '[[teams.regex]] with pattern = "^sec-", team = "Security"'
        if not isinstance(value, list):
            raise ConfigError(file, "[teams] regex", f"expected an array of tables, got {value!r}", f"write {example}")
        rules = []
        for i, item in enumerate(value):
            key = f"[[teams.regex]] #{i + 1}"
            rule = expect_table(item, file, key, example)
            check_keys(rule, ("pattern", "team", "on"), file, key)
            if "pattern" not in rule or "team" not in rule:
                raise ConfigError(file, key, "needs both pattern and team", f"write {example}")
            pattern = expect_str(rule["pattern"], file, f"{key} pattern", '"^sec-"')
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                fix = "fix the pattern; TOML '…' strings need no double backslashes"
                raise ConfigError(file, f"{key} pattern", f"is not a valid regex ({exc})", fix) from None
            on = rule.get("on", "user")
            if on not in REGEX_ON:
                raise ConfigError(file, f"{key} on", f"{on!r} is not an identity attribute",
                                  f"use one of: {', '.join(REGEX_ON)}")  # fmt: skip
            rules.append(RegexRule(compiled, expect_str(rule["team"], file, f"{key} team", '"Security"'), on))
        return tuple(rules)

    def team_for(self, user: str | None, email: str | None, user_id: str | None, name: str | None,
                 groups: tuple[str, ...]) -> str:  # fmt: skip
        """Apply the rules in precedence order to clear (unhashed) values."""
        for kind in self.precedence:
            if kind == "static" and self.members:
                for ident in (user, email, user_id, name):
                    if ident and (team := self.members.get(ident.lower())):
                        return team
            elif kind == "groups" and groups:
                if not self.groups:
                    return groups[0]
                for group in groups:
                    if team := self.groups.get(_norm_group(group)):
                        return team
            elif kind == "regex":
                values = {"user": user, "email": email, "id": user_id, "name": name}
                for rule in self.regex:
                    value = values[rule.on]
                    if value and rule.pattern.search(value):
                        return rule.team
            elif kind == "domain" and self.domains and email and "@" in email:
                domain = email.rpartition("@")[2].lower()
                while domain:
                    if team := self.domains.get(domain):
                        return team
                    domain = domain.partition(".")[2]
        return self.default


def _norm_group(group: str) -> str:
    """Keycloak may send group paths (``/platform``); compare without the leading slash, any case."""
    return group.strip().lstrip("/").lower()


# --------------------------------------------------------------------------------------------
# [privacy]
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrivacyConfig:
    """Pseudonymisation: HMAC-SHA256 of identity values with a secret kept outside the data."""

    hash_identities: bool = False
    hash_archive: bool = False
    hash_secret: bytes | None = field(default=None, repr=False)
    hash_length: int = 16
    hash_prefix: str = "u_"

    KEYS = (
        "hash_identities",
        "hash_archive",
        "hash_secret",
        "hash_secret_file",
        "hash_length",
        "hash_prefix",
    )

    @classmethod
    def from_section(cls, section: dict[str, Any], file: str) -> Self:
        check_keys(section, cls.KEYS, file, "[privacy]")
        kw: dict[str, Any] = {}
        for key in ("hash_identities", "hash_archive"):
            if key in section:
                kw[key] = expect_bool(section[key], file, f"[privacy] {key}")
        if "hash_length" in section:
            kw["hash_length"] = expect_int(section["hash_length"], file, "[privacy] hash_length", 8, 64)
        if "hash_prefix" in section:
            prefix = section["hash_prefix"]
            if not isinstance(prefix, str):
                raise ConfigError(file, "[privacy] hash_prefix", f"expected a string, got {prefix!r}",
                                  'write hash_prefix = "u_"')  # fmt: skip
            kw["hash_prefix"] = prefix
        secret = _secret(section, file, "privacy", "hash")
        if (kw.get("hash_identities") or kw.get("hash_archive")) and secret is None:
            key = "hash_identities" if kw.get("hash_identities") else "hash_archive"
            raise ConfigError(file, f"[privacy] {key}", "hashing needs a secret",
                              'set hash_secret_file = "/run/secrets/gwlog_hash_key" '
                              "(create it with: openssl rand -hex 32 > gwlog_hash_key)")  # fmt: skip
        if secret is not None and len(secret) < 16:
            key = "hash_secret_file" if "hash_secret_file" in section else "hash_secret"
            raise ConfigError(file, f"[privacy] {key}", f"the secret has {len(secret)} bytes, too few",
                              "use at least 16 random bytes, e.g. openssl rand -hex 32")  # fmt: skip
        kw["hash_secret"] = secret
        return cls(**kw)


class Pseudonymizer:
    """Keyed hash of identity values: stable across restarts (same secret), useless without it."""

    __slots__ = ("_cache", "_key", "_length", "_prefix")

    def __init__(self, secret: bytes, length: int = 16, prefix: str = "u_") -> None:
        self._key = secret
        self._length = length
        self._prefix = prefix
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        out = self._cache.get(value)
        if out is None:
            digest = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
            out = self._prefix + digest[: self._length]
            if len(self._cache) >= 65536:
                self._cache.clear()
            self._cache[value] = out
        return out


# --------------------------------------------------------------------------------------------
# Open WebUI's signed user JWT (HS256, stdlib only)
# --------------------------------------------------------------------------------------------


class JwtRejected(Exception):
    """A token that must not be trusted; ``reason`` is the gwlog_identity_rejected_total label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_hs256(token: str, secret: bytes) -> dict[str, Any]:
    """Check structure, ``alg`` and signature (constant time); return the claims. Time is not checked."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtRejected("malformed")
    try:
        header = json.loads(_b64url(parts[0]))
        signature = _b64url(parts[2])
        claims = json.loads(_b64url(parts[1]))
    except (ValueError, binascii.Error):
        raise JwtRejected("malformed") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtRejected("malformed")
    if header.get("alg") != "HS256":
        raise JwtRejected("algorithm")
    expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode("ascii", "replace"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise JwtRejected("signature")
    return claims


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------------------------
# The resolver
# --------------------------------------------------------------------------------------------

# Slots of the per-line value vector.
_EMAIL, _ID, _NAME, _ROLE, _CHAT, _KEY, _GROUPS, _JWT = range(8)
_ATTR_SLOT = {"user_email": _EMAIL, "user_id": _ID, "user_name": _NAME, "api_key_name": _KEY}
_CACHE_MAX = 65536
_RESULTS_MAX = 4096  # cached identities per candidate-key set


def _no_values(fields: dict[str, Any]) -> tuple[()]:
    return ()


def _clean(value: Any) -> str | None:
    """Header values: strings stripped, numbers as text, anything else (objects, bools) ignored."""
    if type(value) is str:
        return value.strip() or None
    if type(value) is int or type(value) is float:
        return str(value)
    return None


class IdentityResolver:
    """Turns a line's fields into an ``Identity``; one per process, called once per line."""

    def __init__(self, identity: IdentityConfig, teams: TeamConfig, privacy: PrivacyConfig) -> None:
        self.identity = identity
        self.privacy = privacy
        # reason → count of JWTs not trusted (exported as gwlog_identity_rejected_total{reason}).
        self.stats: dict[str, int] = dict.fromkeys(JWT_REJECT_REASONS, 0)
        self._jwt_cache: dict[str, dict[str, Any]] = {}
        self._names: dict[str, str | None] = {}
        self._hashed: dict[tuple[str | None, ...], tuple[str | None, ...]] = {}
        self._hash: Pseudonymizer | None = None
        if privacy.hash_secret is not None:
            self._hash = Pseudonymizer(privacy.hash_secret, privacy.hash_length, privacy.hash_prefix)
        self._label_hash = self._hash if privacy.hash_identities else None
        self._use_teams(teams)

    def _use_teams(self, teams: TeamConfig) -> None:
        """Precompute candidate slots (teams own the groups fields) and reset the caches."""
        identity = self.identity
        self.teams = teams
        slots: list[tuple[str, ...]] = [
            identity.user_email, identity.user_id, identity.user_name, identity.user_role,
            identity.chat_id, identity.api_key_name, teams.groups_field, identity.jwt_field,
        ]  # fmt: skip
        # ``user`` entries: an attribute slot, or a raw field that gets a slot of its own.
        user_order: list[int] = []
        for entry in identity.user:
            if entry in _ATTR_SLOT:
                user_order.append(_ATTR_SLOT[entry])
            else:
                user_order.append(len(slots))
                slots.append((entry,))
        self._slots = tuple(slots)
        self._user_order = tuple(user_order)
        self._keys = frozenset(k for keys in slots for k in keys)
        self._key_slot: dict[str, int] = {}
        for slot, keys in enumerate(slots):
            for k in keys:
                self._key_slot.setdefault(k, slot)
        # frozenset of present candidate keys → ((slot, keys present in priority order), …)
        self._plans: dict[frozenset[str], tuple[tuple[int, tuple[str, ...]], ...]] = {}
        self._team_cache: dict[tuple[Any, ...], str] = {}
        # field-name sequence → (getter of the candidate values but chat, result cache or None, chat keys)
        self._shapes: dict[tuple[str, ...], tuple[Callable[[dict[str, Any]], Any], dict | None, tuple[str, ...]]] = {}
        self._results: dict[tuple[str, ...], dict[Any, tuple[Any, ...]]] = {}

    @classmethod
    def default(cls) -> IdentityResolver:
        """The resolver for the common Open WebUI → AgentGateway setup, no config needed."""
        return cls(IdentityConfig(), TeamConfig(), PrivacyConfig())

    def reload_teams(self, teams: TeamConfig | None = None) -> None:
        """SIGHUP: swap in new team rules (re-read from teams_file unless given); keep old ones on error."""
        self._use_teams(self.teams.reload() if teams is None else teams)

    def _plan(self, present: frozenset[str]) -> tuple[tuple[int, tuple[str, ...]], ...]:
        plan = tuple(
            (slot, hit) for slot, keys in enumerate(self._slots) if (hit := tuple(k for k in keys if k in present))
        )
        if len(self._plans) >= 4096:
            self._plans.clear()
        self._plans[present] = plan
        return plan

    def _shape(self, shape: tuple[str, ...]) -> tuple[Callable[[dict[str, Any]], Any], dict | None, tuple[str, ...]]:
        """How lines with these field names are resolved: the values that decide the identity
        (every present candidate but chat ids, which are per conversation), a cache of results
        keyed by them, and the chat candidates. No cache when a JWT is present: its claims
        depend on the line's time and rejected tokens are counted per line."""
        present = frozenset(self._keys.intersection(shape))
        plan = self._plans.get(present) or self._plan(present) if present else ()
        keys = tuple(k for slot, hit in plan if slot != _CHAT for k in hit)
        chat = next((hit for slot, hit in plan if slot == _CHAT), ())
        cache = None if any(slot == _JWT for slot, _ in plan) else self._results.setdefault(keys, {})
        getter: Callable[[dict[str, Any]], Any] = itemgetter(*keys) if keys else _no_values
        if len(self._shapes) >= 4096:
            self._shapes.clear()
        entry = self._shapes[shape] = (getter, cache, chat)
        return entry

    def resolve(self, fields: dict[str, Any], ts: datetime | None = None) -> Identity:
        """The identity of one line. ``ts`` (the line's time) checks JWT expiry; default: now.

        Hot path: lines with the same candidate values (but chat id) get the same identity, so
        the result is cached by those values; only the chat id is read (and hashed) per line.
        """
        shape = tuple(fields)
        entry = self._shapes.get(shape)
        if entry is None:
            entry = self._shape(shape)
        getter, cache, chat_keys = entry
        if cache is None:
            return self._resolve(fields, ts)
        try:
            values = getter(fields)
            hit = cache.get(values)
        except TypeError:  # an unhashable candidate value (a list or object): no caching
            return self._resolve(fields, ts)
        if hit is None:
            ident = self._resolve(fields, ts)
            if len(cache) >= _RESULTS_MAX:
                cache.clear()
            hit = cache[values] = (ident.user, ident.user_id, ident.user_email, ident.user_name,
                                   ident.user_role, ident.team)  # fmt: skip
            return ident
        chat = None
        for k in chat_keys:
            raw = fields[k]
            v = raw.strip() if type(raw) is str else _clean(raw)
            if v:
                chat = v
                break
        if chat is not None and (h := self._label_hash) is not None:
            chat = h(chat)
        user, uid, email, name, role, team = hit
        return Identity(user, uid, email, name, role, chat, team)

    def _resolve(self, fields: dict[str, Any], ts: datetime | None) -> Identity:
        """``resolve`` without the result cache."""
        present = self._keys.intersection(fields)
        if not present:
            return Identity(team=self.teams.default)
        key = frozenset(present)
        plan = self._plans.get(key) or self._plan(key)
        vals: list[Any] = [None] * len(self._slots)
        for slot, keys in plan:
            for k in keys:
                raw = fields[k]
                if type(raw) is str:
                    v: Any = raw.strip()
                elif slot == _GROUPS and type(raw) is list:
                    v = tuple(str(g) for g in raw)
                else:
                    v = _clean(raw)
                if v:
                    vals[slot] = v
                    break
        if vals[_JWT] is not None:
            self._apply_jwt(vals, vals[_JWT], ts)
        email, uid, name = vals[_EMAIL], vals[_ID], vals[_NAME]
        if name is not None and "%" in name:
            vals[_NAME] = name = self._unquote(name)
        if email is not None and self.identity.lowercase_email:
            vals[_EMAIL] = email = email.lower()
        user = None
        for slot in self._user_order:
            if vals[slot] is not None:
                user = vals[slot]
                break
        team = self._team(user, email, uid, name, vals[_GROUPS])
        chat = vals[_CHAT]
        if (h := self._label_hash) is not None:
            who = (user, email, uid, name)
            hashed = self._hashed.get(who)
            if hashed is None:
                hashed = self._hash_who(who)
            user, email, uid, name = hashed
            if chat is not None:
                chat = h(chat)
        return Identity(user, uid, email, name, vals[_ROLE], chat, team)

    def _hash_who(self, who: tuple[str | None, ...]) -> tuple[str | None, ...]:
        """Pseudonyms of one person's label values, cached together (one lookup per line)."""
        h = self._hash
        assert h is not None
        hashed = tuple(None if v is None else h(v) for v in who)
        if len(self._hashed) >= _CACHE_MAX:
            self._hashed.clear()
        self._hashed[who] = hashed
        return hashed

    def _unquote(self, name: str) -> str | None:
        """Open WebUI percent-encodes names (spaces kept); decoding is slow, so cache it."""
        out = self._names.get(name, "")
        if out == "":
            out = unquote(name).strip() or None
            if len(self._names) >= _CACHE_MAX:
                self._names.clear()
            self._names[name] = out
        return out

    def _apply_jwt(self, vals: list[Any], token: str, ts: datetime | None) -> None:
        """Verified claims override header candidates; a rejected token is counted and ignored."""
        ident = self.identity
        if ident.jwt_secret is None:
            self.stats["no_secret"] += 1
            return
        claims = self._jwt_cache.get(token)
        try:
            if claims is None:
                claims = verify_hs256(token, ident.jwt_secret)
                iss = claims.get("iss")
                if iss is not None and iss != ident.jwt_issuer:
                    raise JwtRejected("issuer")
                if len(self._jwt_cache) >= 4096:
                    self._jwt_cache.clear()
                self._jwt_cache[token] = claims
            now = ts.timestamp() if ts is not None else time.time()
            exp, nbf = _number(claims.get("exp")), _number(claims.get("nbf"))
            if exp is not None and now > exp + ident.jwt_leeway_seconds:
                raise JwtRejected("expired")
            if nbf is not None and now + ident.jwt_leeway_seconds < nbf:
                raise JwtRejected("not_yet_valid")
        except JwtRejected as exc:
            self.stats[exc.reason] += 1
            return
        for claim, slot in (
            ("sub", _ID),
            ("email", _EMAIL),
            ("name", _NAME),
            ("role", _ROLE),
            ("groups", _GROUPS),
        ):
            value = claims.get(claim)
            if claim == "groups" and isinstance(value, list):
                vals[slot] = tuple(str(g) for g in value)
            elif (value := _clean(value)) is not None:
                vals[slot] = value

    def _team(self, user: str | None, email: str | None, uid: str | None, name: str | None,
              groups: str | tuple[str, ...] | None) -> str:  # fmt: skip
        key = (user, email, uid, name, groups)
        team = self._team_cache.get(key)
        if team is None:
            team = self.teams.team_for(user, email, uid, name, self._split_groups(groups))
            if len(self._team_cache) >= _CACHE_MAX:
                self._team_cache.clear()
            self._team_cache[key] = team
        return team

    def _split_groups(self, groups: str | tuple[str, ...] | None) -> tuple[str, ...]:
        if groups is None:
            return ()
        items = groups.split(self.teams.groups_separator) if isinstance(groups, str) else groups
        return tuple(g for g in (x.strip().lstrip("/") for x in items) if g)

    def archive_transform(self) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """With ``hash_archive``: a function that pseudonymises an archive record, else None."""
        if not self.privacy.hash_archive or self._hash is None:
            return None
        return self.scrub_record

    def scrub_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """Hash identity values in an archive record, including the raw custom fields; drop JWTs.

        Top-level columns already hashed for labels (``hash_identities``) are left alone so
        archive and metrics agree; role, groups and team stay clear (they describe many people).
        """
        h = self._hash
        assert h is not None
        if self._label_hash is None:
            for col in ("user", "user_id", "user_email", "user_name", "chat_id"):
                if record.get(col) is not None:
                    record[col] = h(str(record[col]))
        raw = record.get("fields")
        if isinstance(raw, dict):
            scrubbed = {}
            for k, v in raw.items():
                slot = self._key_slot.get(k)
                if slot == _JWT:
                    v = "[redacted]"
                elif slot is not None and slot not in (_ROLE, _GROUPS) and (clear := _clean(v)):
                    if slot == _NAME and "%" in clear:  # hash what the labels hash: decoded, lower-cased
                        clear = self._unquote(clear) or clear
                    elif slot == _EMAIL and self.identity.lowercase_email:
                        clear = clear.lower()
                    v = h(clear)
                scrubbed[k] = v
            record["fields"] = scrubbed
        return record
