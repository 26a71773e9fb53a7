"""Team rules: precedence (static → groups → regex → domain by default), default, teams file, reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gwlog.errors import ConfigError
from gwlog.identity import IdentityConfig, IdentityResolver, PrivacyConfig, TeamConfig

RULES: dict[str, Any] = {
    "members": {"Security": ["alice@example.com", "bob"]},
    "groups": {"/platform": "Platform", "marketing": "Marketing"},
    "regex": [
        {"pattern": "^sec-", "team": "Security", "on": "user"},
        {"pattern": r"@contractors\.", "team": "Contractors", "on": "email"},
    ],
    "domains": {"example.com": "Marketing", "platform.example.org": "Platform"},
}


def resolver(section: dict[str, Any], file: str = "gwlog.toml") -> IdentityResolver:
    return IdentityResolver(IdentityConfig(), TeamConfig.from_section(section, file), PrivacyConfig())


def team(section: dict[str, Any], **fields: Any) -> str | None:
    return resolver(section).resolve({k.replace("_", "."): v for k, v in fields.items()}).team


def test_static_beats_groups_regex_and_domain() -> None:
    assert team(RULES, user_email="alice@example.com", user_groups="platform") == "Security"
    # any identifier (here the name), any case
    assert team(RULES, user_name="Bob", user_email="bob@example.com") == "Security"


def test_groups_beat_regex_and_domain() -> None:
    assert team(RULES, user_email="carol@example.com", user_groups="other,/platform") == "Platform"


def test_regex_beats_domain() -> None:
    assert team(RULES, user_id="sec-ops-1") == "Security"
    assert team(RULES, user_email="dave@contractors.example.com") == "Contractors"


def test_domain_and_subdomain() -> None:
    assert team(RULES, user_email="erin@example.com") == "Marketing"
    assert team(RULES, user_email="erin@eu.example.com") == "Marketing"
    assert team(RULES, user_email="frank@platform.example.org") == "Platform"
    assert team(RULES, user_email="frank@example.org") == "unassigned"


def test_default_team_and_configurable_default() -> None:
    assert team(RULES, user_email="zed@elsewhere.net") == "unassigned"
    assert team({**RULES, "default": "Other"}, user_email="zed@elsewhere.net") == "Other"
    assert team({}, user_email="zed@elsewhere.net") == "unassigned"


def test_unmapped_groups_fall_through_when_a_mapping_exists() -> None:
    assert team(RULES, user_email="gina@elsewhere.net", user_groups="users,default") == "unassigned"


def test_without_group_mapping_the_first_group_is_the_team() -> None:
    assert team({}, user_groups=" /Platform , security") == "Platform"


def test_groups_from_a_json_array_field() -> None:
    r = resolver(RULES)
    assert r.resolve({"user.groups": ["x", "marketing"]}).team == "Marketing"


def test_custom_precedence() -> None:
    section = {**RULES, "precedence": ["domain", "static"]}
    assert team(section, user_email="alice@example.com") == "Marketing"
    assert team(section, user_name="bob") == "Security"
    assert team(section, user_groups="platform") == "unassigned"  # groups not listed: off


def test_team_is_cached_but_reload_clears(tmp_path: Path) -> None:
    teams = tmp_path / "teams.toml"
    teams.write_text('[teams.members]\nPlatform = ["alice@example.com"]\n')
    (tmp_path / "gwlog.toml").write_text("")
    r = resolver({"teams_file": "teams.toml"}, str(tmp_path / "gwlog.toml"))
    fields = {"user.email": "alice@example.com"}
    assert r.resolve(fields).team == "Platform"
    teams.write_text('[teams.members]\nSecurity = ["alice@example.com"]\n[teams]\ndefault = "nobody"\n')
    assert r.resolve(fields).team == "Platform"
    r.reload_teams()
    assert r.resolve(fields).team == "Security"
    assert r.resolve({"user.email": "x@y"}).team == "nobody"


def test_reload_with_a_broken_file_keeps_the_old_rules(tmp_path: Path) -> None:
    teams = tmp_path / "teams.toml"
    teams.write_text('[teams.members]\nPlatform = ["alice@example.com"]\n')
    r = resolver({"teams_file": str(teams)})
    teams.write_text("[teams.members\n")
    with pytest.raises(ConfigError) as err:
        r.reload_teams()
    assert err.value.file == str(teams)
    assert r.resolve({"user.email": "alice@example.com"}).team == "Platform"


def test_reload_with_new_groups_field() -> None:
    r = resolver({})
    assert r.resolve({"kc.groups": "Platform"}).team == "unassigned"
    r.reload_teams(TeamConfig.from_section({"groups_field": ["kc.groups"]}, "gwlog.toml"))
    assert r.resolve({"kc.groups": "Platform"}).team == "Platform"


def test_reload_without_teams_file_keeps_rules() -> None:
    r = resolver(RULES)
    r.reload_teams()
    assert r.resolve({"user.email": "alice@example.com"}).team == "Security"


def test_team_rules_see_the_jwt_identity() -> None:
    from tests.test_identity import SECRET, claims, make_jwt

    cfg = IdentityConfig.from_section({"jwt_secret": SECRET}, "gwlog.toml")
    teams = TeamConfig.from_section({"groups": {"security": "Security"}}, "gwlog.toml")
    r = IdentityResolver(cfg, teams, PrivacyConfig())
    assert r.resolve({"user.jwt": make_jwt(claims(groups=["Security"]))}).team == "Security"
    assert r.resolve({"user.jwt": make_jwt(claims(email="x@example.com"))}).team == "unassigned"


@pytest.mark.parametrize(
    ("section", "key", "fix_part"),
    [
        ({"members": {"A": ["x"], "B": ["X"]}}, '[teams.members] "B"', "one team only"),
        ({"members": {"A": "x"}}, '[teams.members] "A"', '["alice@example.com", "bob"]'),
        ({"members": ["x"]}, "[teams.members]", "Platform ="),
        ({"domains": {"a@b.com": "A"}}, '[teams.domains] "a@b.com"', '"example.com"'),
        ({"regex": [{"pattern": "(", "team": "A"}]}, "[[teams.regex]] #1 pattern", "fix the pattern"),
        ({"regex": [{"pattern": "x"}]}, "[[teams.regex]] #1", "pattern ="),
        ({"regex": [{"pattern": "x", "team": "A", "on": "role"}]}, "[[teams.regex]] #1 on", "user, email"),
        (
            {"regex": [{"pattern": "x", "team": "A", "field": "user"}]},
            "[[teams.regex]] #1 field",
            "use one of",
        ),
        ({"precedence": ["static", "ldap"]}, "[teams] precedence", "static, groups, regex, domain"),
        ({"precedence": ["static", "static"]}, "[teams] precedence", "once"),
        ({"default": ""}, "[teams] default", 'default = "unassigned"'),
        ({"member": {}}, "[teams] member", "did you mean 'members'"),
        ({"teams_file": "t.toml", "default": "x"}, "[teams] default", "teams file"),
        ({"teams_file": "/nonexistent/teams.toml"}, "(file)", "teams_file"),
    ],
)
def test_config_errors(section: dict[str, Any], key: str, fix_part: str) -> None:
    with pytest.raises(ConfigError) as err:
        TeamConfig.from_section(section, "gwlog.toml")
    assert err.value.key == key
    assert fix_part in err.value.fix


def test_teams_file_cannot_nest(tmp_path: Path) -> None:
    (tmp_path / "teams.toml").write_text('[teams]\nteams_file = "other.toml"\n')
    with pytest.raises(ConfigError) as err:
        TeamConfig.from_section({"teams_file": "teams.toml"}, str(tmp_path / "gwlog.toml"))
    assert err.value.file.endswith("teams.toml") and err.value.key == "[teams] teams_file"


def test_documented_example_loads(tmp_path: Path) -> None:
    """The example in docs/attribution.md parses and gives the seeds' Keycloak teams."""
    import tomllib

    from gwlog.pricing import PricingConfig

    text = (Path(__file__).parents[1] / "docs" / "attribution.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "gwlog_hash_key").write_text("x" * 32)
    (tmp_path / "owui_jwt_key").write_text("y" * 32)
    data = tomllib.loads(example.replace("/run/secrets/", str(tmp_path) + "/"))
    file = str(tmp_path / "gwlog.toml")
    r = IdentityResolver(
        IdentityConfig.from_section(data["identity"], file),
        TeamConfig.from_section(data["teams"], file),
        PrivacyConfig.from_section(data["privacy"], file),
    )
    PricingConfig.from_section(data["pricing"], file)
    assert r.teams.team_for(None, "mia@example.com", None, None, ("marketing",)) == "Marketing"
    assert r.teams.team_for(None, "pat@example.com", None, None, ("/platform",)) == "Platform"
    assert r.teams.team_for(None, "sam@example.com", None, None, ("security",)) == "Security"


def test_teams_file_keys_outside_the_teams_table(tmp_path: Path) -> None:
    (tmp_path / "teams.toml").write_text('[members]\nPlatform = ["a@b"]\n')
    with pytest.raises(ConfigError) as err:
        TeamConfig.from_section({"teams_file": "teams.toml"}, str(tmp_path / "gwlog.toml"))
    assert err.value.key == "members" and "[teams.members]" in err.value.fix
