"""Configuration in one place: every variable read by annuaire/config.py, cast with errors naming it,
documented in one table."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from annuaire.cli import cli
from annuaire.config import Settings, cast, store_url, variable
from annuaire.errors import ConfigError, InvalidInput
from annuaire.ldap.limits import LdapLimits
from annuaire.ldap.service import LdapConfig

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "annuaire"


def _other_value(default: object) -> tuple[str, object]:
    """A value unlike the default, as the environment spells it and as the setting holds it."""
    if isinstance(default, bool):
        return ("no" if default else "yes"), not default
    if isinstance(default, int):
        return str(default + 7), default + 7
    if isinstance(default, float):
        return str(default + 0.25), default + 0.25
    if isinstance(default, str):
        return default + "-x", default + "-x"
    if isinstance(default, LdapLimits):
        return "min_chars=5, time_limit=2.5", LdapLimits(min_chars=5, time_limit=2.5)
    raise AssertionError(f"a setting of an unexpected type: {default!r}")


def test_from_env_reads_every_field() -> None:
    defaults = Settings()
    env, want = {}, {}
    for f in fields(Settings):
        env[variable(f.name)], want[f.name] = _other_value(getattr(defaults, f.name))
    settings = Settings.from_env(env)
    for name, value in want.items():
        assert getattr(settings, name) == value, name


def test_options_win_over_the_environment() -> None:
    settings = Settings.from_env({"ANNUAIRE_HTTP_PORT": "9000", "ANNUAIRE_HOST": "0.0.0.0"}, http_port=9100, host=None)
    assert (settings.http_port, settings.host) == (9100, "0.0.0.0")


@pytest.mark.parametrize("name,raw,message", [
    ("ANNUAIRE_HTTP_PORT", "80a", "ANNUAIRE_HTTP_PORT must be an integer, got '80a'"),
    ("ANNUAIRE_HTTP_WORKERS", "2.5", "ANNUAIRE_HTTP_WORKERS must be an integer"),
    ("ANNUAIRE_FHIR_RATE_LIMIT", "fast", "ANNUAIRE_FHIR_RATE_LIMIT must be a number"),
    ("ANNUAIRE_LDAP_LIMITS", "min_chars=3,bogus=1", "ANNUAIRE_LDAP_LIMITS: unknown LDAP limit 'bogus'"),
    ("ANNUAIRE_LDAP_LIMITS", "min_chars=three", "ANNUAIRE_LDAP_LIMITS: LDAP limit min_chars must be an integer"),
])
def test_a_mistyped_variable_is_an_error_naming_it(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: raw})
    assert message in caught.value.message
    assert isinstance(caught.value, InvalidInput) and caught.value.exit_code == 2


def test_a_mistyped_boolean_is_an_error_not_false() -> None:
    assert cast("ANNUAIRE_X", " Yes ", False) is True
    assert cast("ANNUAIRE_X", "off", True) is False
    with pytest.raises(ConfigError, match="ANNUAIRE_X must be a boolean .* got 'ture'"):
        cast("ANNUAIRE_X", "ture", False)


@pytest.mark.parametrize("args,env,message", [
    (["serve", "--ldap-port", "0"], {"ANNUAIRE_HTTP_PORT": "80a"}, "ANNUAIRE_HTTP_PORT must be an integer"),
    (["serve", "--ldap-port", "0"], {"ANNUAIRE_EXTRACTIONS_TIME": "25:00"}, "ANNUAIRE_EXTRACTIONS_TIME: "),
    (["ldap", "--ldap-port", "auto"], {"ANNUAIRE_LDAP_REFRESH": "soon"}, "ANNUAIRE_LDAP_REFRESH must be a number"),
    (["ldap", "--ldap-port", "auto"], {"ANNUAIRE_LDAP_LIMITS": "bogus=1"}, "ANNUAIRE_LDAP_LIMITS: unknown LDAP limit"),
    (["ldap", "--ldap-port", "auto", "--limit", "min_chars=x"], {}, "--limit: LDAP limit min_chars must be an integer"),
    (["import", "nothing.zip"], {"ANNUAIRE_REFERENTIAL_MAX_DEACTIVATION": "5%"},
     "ANNUAIRE_REFERENTIAL_MAX_DEACTIVATION must be a number"),
])
def test_the_cli_exits_2_naming_the_variable(tmp_path: Path, args: list[str], env: dict[str, str],
                                              message: str) -> None:
    from annuaire.store import open_store

    open_store(f"sqlite:///{tmp_path / 'a.sqlite'}").dispose()  # (a store: the commands refuse a missing one)
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'a.sqlite'}", *args], env=env)
    assert result.exit_code == 2, result.output
    assert message in " ".join((result.output + result.stderr).split())


def test_ldap_config_from_settings() -> None:
    settings = Settings.from_env({"ANNUAIRE_LDAP_LIMITS": "anonymous_size_limit=7", "ANNUAIRE_LDAP_REFRESH": "0.2",
                                  "ANNUAIRE_LDAP_PORT": "0", "ANNUAIRE_LDAP_WORKERS": "3"})
    config = LdapConfig.from_settings(settings, "sqlite:///x.sqlite")
    assert config.limits.anonymous_size_limit == 7 and config.limits.min_chars == LdapLimits().min_chars
    assert (config.refresh_interval, config.port, config.workers) == (0.2, None, 3)


def test_limits_given_on_the_command_line_go_over_the_environment() -> None:
    base = Settings.from_env({"ANNUAIRE_LDAP_LIMITS": "anonymous_size_limit=7,min_chars=4"}).ldap_limits
    limits = LdapLimits.parse(["min_chars=5"], base=base)
    assert (limits.anonymous_size_limit, limits.min_chars) == (7, 5)


def test_store_url() -> None:
    assert store_url({}) == "sqlite:///annuaire.sqlite"
    assert store_url({"ANNUAIRE_DB": ""}) == "sqlite:///annuaire.sqlite"
    assert store_url({"ANNUAIRE_DB": "postgresql://x/y"}) == "postgresql://x/y"


_READS = re.compile(r"os\.environ\s*\[|os\.environ\.get|getenv|environ\.get|envvar=")


def test_only_config_reads_the_environment() -> None:
    """Other modules may hand the environment on to a child (dict(os.environ, …)), never read a variable."""
    readers = sorted(str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                     if p.name != "config.py" and _READS.search(p.read_text(encoding="utf-8")))
    assert readers == []


def test_every_variable_is_in_the_one_table() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    named = {variable(f.name) for f in fields(Settings)}
    for path in PACKAGE.rglob("*.py"):
        named.update(re.findall(r"\bANNUAIRE_[A-Z][A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8")))
    missing = sorted(v for v in named if f"`{v}`" not in table)
    assert missing == []
