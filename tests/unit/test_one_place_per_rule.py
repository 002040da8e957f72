"""One place per rule (STYLE.md, habit 2): each rule below is written once, and these tests fail when a
second copy appears in the production code (core and plugins) or when the one place breaks."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from webob import Request

from eportal_core.db import get_session_factory, make_engine, transaction_session
from eportal_core.services import ServiceError
from eportal_core.settings import as_networks
from eportal_core.web.clientip import client_ip, from_trusted_proxy
from eportal_core.web.ui import sentence

ROOT = Path(__file__).resolve().parents[2]
#: the test harness (eportal_core.testing and the plugins' testing modules) is not production code
NOT_PRODUCTION = ("/testing/", "/testing.py", "/testing_tls.py", "/tests/", "/alembic/")


def production_files() -> list[Path]:
    files = [*(ROOT / "src" / "eportal_core").rglob("*.py"), *(ROOT / "plugins").glob("*/eportal_*/**/*.py")]
    found = [p for p in files if not any(part in p.as_posix() for part in NOT_PRODUCTION)]
    assert len(found) > 50  # the walk found the code (a wrong ROOT would pass every test below)
    return sorted(found)


def where(pattern: str) -> list[str]:
    """The production files (relative paths) whose text matches ``pattern``."""
    rx = re.compile(pattern)
    return [p.relative_to(ROOT).as_posix() for p in production_files() if rx.search(p.read_text())]


def defined(name: str) -> list[str]:
    """The production files that define a function called ``name``."""
    out = []
    for path in production_files():
        tree = ast.parse(path.read_text())
        if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in ast.walk(tree)):
            out.append(path.relative_to(ROOT).as_posix())
    return out


# --- 1. sentence() -----------------------------------------------------------------------------------

def test_sentence_is_defined_once_in_web_ui():
    assert defined("sentence") == ["src/eportal_core/web/ui.py"]


@pytest.mark.parametrize("message, text", [
    ("feed 'x' does not exist", "Feed 'x' does not exist."),
    ("  done!  ", "Done!"),
    ("Is it?", "Is it?"),
    ("ends with a dot.", "Ends with a dot."),
])
def test_sentence_capitalises_and_ends_with_a_stop(message, text):
    assert sentence(message) == text


# --- 2. a feed by name, or a refusal -------------------------------------------------------------------

def test_a_missing_feed_is_refused_in_one_place():
    # the message of a refusal (an f-string naming the feed), not prose that mentions one
    assert where(r"feed '\{[^\n]*does not exist|no feed named [^\n]*!r") == ["src/eportal_core/services/feeds.py"]


def test_feed_by_name_refuses_with_the_feed_field(dbsession):
    from eportal_core.services import feeds, keys
    assert feeds.feed_by_name(dbsession, "main").name == "main"
    with pytest.raises(ServiceError) as direct:
        feeds.feed_by_name(dbsession, "nope")
    with pytest.raises(ServiceError) as via_keys:
        keys.create_key(dbsession, "k-one-place", feed="nope", actor="t")
    assert str(direct.value) == str(via_keys.value) == "feed 'nope' does not exist"
    assert direct.value.field == via_keys.value.field == "feed"


# --- 3. the trusted-proxy test -----------------------------------------------------------------------

def test_the_trusted_proxy_setting_is_read_in_one_place():
    assert where(r"\.settings(\.get\(|\[)[\"']eportal\.trusted_proxies") == ["src/eportal_core/web/clientip.py"]


def _request(peer: str, trusted: str, **headers) -> Request:
    req = Request.blank("/", remote_addr=peer, headers={k.replace("_", "-"): v for k, v in headers.items()})
    req.registry = SimpleNamespace(settings={"eportal.trusted_proxies": as_networks(trusted)})
    return req


@pytest.mark.parametrize("peer, trusted, expected", [
    ("10.1.2.3", "10.0.0.0/8", True), ("192.0.2.7", "10.0.0.0/8", False), ("10.1.2.3", "", False),
    ("not-an-ip", "10.0.0.0/8", False),
])
def test_from_trusted_proxy(peer, trusted, expected):
    assert from_trusted_proxy(_request(peer, trusted)) is expected


def test_client_ip_and_public_url_believe_the_same_peers():
    from eportal_core.agent.scripts import public_application_url
    for peer, believed in (("10.1.2.3", True), ("192.0.2.7", False)):
        req = _request(peer, "10.0.0.0/8", X_Forwarded_For="198.51.100.7", X_Forwarded_Host="portal.example.com",
                       X_Forwarded_Proto="https")
        assert (client_ip(req) == "198.51.100.7") is believed
        assert (public_application_url(req) == "https://portal.example.com") is believed


# --- 4. a transaction outside a request ----------------------------------------------------------------

def test_a_transaction_manager_is_made_in_one_place():
    # eportal_core.testing keeps its own copy for the test harness (not production code)
    assert where(r"TransactionManager\(") == ["src/eportal_core/db.py"]


class _Base(DeclarativeBase):
    pass


class Row(_Base):
    __tablename__ = "t"
    id: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int]


@pytest.fixture
def factory(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'tx.sqlite'}")
    _Base.metadata.create_all(engine)
    yield get_session_factory(engine)
    engine.dispose()


def _rows(factory) -> list[int]:
    with factory() as db:
        return list(db.scalars(sa.select(Row.n).order_by(Row.n)))


def test_transaction_session_commits_when_the_block_ends(factory):
    with transaction_session(factory) as db:
        db.add(Row(n=1))
    assert _rows(factory) == [1]


def test_transaction_session_aborts_when_the_block_raises(factory):
    with pytest.raises(RuntimeError), transaction_session(factory) as db:
        db.add(Row(n=2))
        db.flush()
        raise RuntimeError("refused")
    assert _rows(factory) == []


def test_cli_jobs_and_the_patch_source_use_it(factory):
    from eportal_patch_source.web import sessions_for

    from eportal_core.cli.env import CliEnv
    from eportal_core.scheduler import JobContext
    env = CliEnv()
    env.__dict__["engine"] = factory.kw["bind"]  # the cached_property, set
    for opened in (env.dbsession(), JobContext({}, factory.kw["bind"], None).dbsession(),
                   sessions_for({"dbsession_factory": factory})()):
        with opened as db:
            db.add(Row(n=3))
    assert _rows(factory) == [3, 3, 3]


# --- 7. a service error names its field ----------------------------------------------------------------

def test_no_view_guesses_the_field_from_the_message():
    assert defined("error_field") == []
    assert where(r"str\(exc\)\.lower\(\)|lowered = message") == []


@pytest.mark.parametrize("call, field", [
    (lambda s: s.keys.parse_server_limit("-1"), "server_limit"),
    (lambda s: s.keys.validate_key_name("bad key"), "key"),
    (lambda s: s.feeds.parse_deploy_after("soon"), "deploy_after"),
    (lambda s: s.feeds.validate_feed_name("bad feed"), "name"),
    (lambda s: s.passwords.check_policy("bob", "short", 10), "password"),
    (lambda s: s.tags.parse_tags("x" * 5000), "tags"),
    (lambda s: s.servers.Age.parse("checkin_age", "soon"), "checkin_age"),
])
def test_field_specific_refusals_carry_the_field(call, field):
    from eportal_core.services import feeds, keys, passwords, servers, tags
    with pytest.raises(ServiceError) as exc:
        call(SimpleNamespace(keys=keys, feeds=feeds, passwords=passwords, tags=tags, servers=servers))
    assert exc.value.field == field


def test_a_source_error_is_a_service_error_with_a_field():
    from eportal_core.sources import SourceError
    exc = SourceError("bad url", field="url", transient=True)
    assert isinstance(exc, ServiceError) and exc.field == "url" and exc.transient
    assert ServiceError("no field").field == ""


# --- 5. validated settings carry their defaults ----------------------------------------------------------

def test_no_core_setting_gets_a_second_default_after_validation():
    # settings.get("eportal.x") or 30, settings.get("eportal.x", 30): the default is the Setting's alone
    second_default = r"settings\.get\([\"']eportal\.[^\"']+[\"']\)\s+or\b|settings\.get\([\"']eportal\.[^\"']+[\"'],"
    assert where(second_default) == []


def test_the_start_page_counts_take_their_numbers_from_the_settings():
    import inspect

    from eportal_core.services.key_counts import KeyCountsCache
    params = inspect.signature(KeyCountsCache).parameters
    assert params["live_count_under"].default is inspect.Parameter.empty
    assert params["refresh_seconds"].default is inspect.Parameter.empty


# --- 6. the start page's check-in window -----------------------------------------------------------------

def test_the_check_in_window_is_written_once():
    assert where(r"hours=48|\b48 ?h") == ["src/eportal_core/services/key_counts.py"]  # CHECKIN_WINDOW
    home = (ROOT / "src/eportal_core/templates/home.pt").read_text()
    assert "48" not in home


@pytest.mark.parametrize("hours, within, text", [(48, True, "-2"), (48, False, "2"), (36, True, "-36h"), (24 * 7, False, "7")])
def test_an_age_prints_as_the_filter_text_that_parses_back(hours, within, text):
    from datetime import timedelta

    from eportal_core.services.servers import Age
    age = Age(timedelta(hours=hours), within)
    assert str(age) == text
    assert Age.parse("checkin_age", text) == age


# --- 8. the session cookie's name is a declared setting ---------------------------------------------------

def test_cookie_name_is_declared_with_its_default():
    from eportal_core.settings import CORE_SETTINGS, validate_settings
    assert validate_settings({}, CORE_SETTINGS)["eportal.session.cookie_name"] == "eportal_session"
    assert validate_settings({"eportal.session.cookie_name": " portal_2 "}, CORE_SETTINGS)[
        "eportal.session.cookie_name"] == "portal_2"


@pytest.mark.parametrize("bad", ["two words", "semi;colon", "a=b", 'quo"te', "x" * 65, "caf\u00e9"])
def test_a_bad_cookie_name_is_refused_by_key(bad):
    from eportal_core.settings import CORE_SETTINGS, SettingsError, validate_settings
    with pytest.raises(SettingsError, match=r"setting eportal\.session\.cookie_name = .* is not valid: expected a cookie name"):
        validate_settings({"eportal.session.cookie_name": bad}, CORE_SETTINGS)


def test_no_module_gives_the_cookie_name_a_default_of_its_own():
    assert where(r"settings\.setdefault\([\"']eportal\.") == []


def test_every_core_setting_is_in_the_readme_table():
    from eportal_core.settings import CORE_SETTINGS
    table = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    documented = set(re.findall(r"`([a-z_.]+)`", "\n".join(line.split(" | ")[0] for line in table)))
    assert {s.key for s in CORE_SETTINGS} - documented == set()


# --- 10. layout: planner hints, presenters, the counts cache ---------------------------------------------

def test_database_specific_shapes_live_in_server_queries():
    # services.servers says which servers; only server_queries asks which database it talks to
    servers = (ROOT / "src/eportal_core/services/servers.py").read_text()
    assert "dialect" not in servers and "likely(" not in servers and "custom_op" not in servers
    assert "src/eportal_core/services/server_queries.py" in where(r"dialect\.name")


def test_the_server_views_hand_their_dicts_to_the_presenters():
    tree = ast.parse((ROOT / "src/eportal_core/views/servers.py").read_text())
    lengths = {n.name: n.end_lineno - n.lineno + 1 for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert max(lengths.values()) <= 30, lengths  # parse, call a service, hand over
    presenters = (ROOT / "src/eportal_core/views/server_presenters.py").read_text()
    assert "view_config" not in presenters and "dbsession" not in presenters


def test_the_counts_cache_is_wired_by_the_start_page_not_the_agent_path():
    assert where(r"KeyCountsCache\(") == ["src/eportal_core/views/home.py"]


# --- 11. what duplicates found -----------------------------------------------------------------------------

def test_the_console_pages_count_nouns_with_plural():
    handmade = r"\{'' if [^}\n]+ == 1 else 's'\}"
    assert [p for p in where(handmade) if p.startswith("src/eportal_core/views/")] == []


def test_removing_a_key_is_confirmed_in_one_wording():
    from eportal_core.views.keys import delete_confirm
    assert where(r"Remove key \{") == ["src/eportal_core/views/keys.py"]
    assert delete_confirm("k", 1) == "Remove key k and its 1 server?"
    assert delete_confirm("k", 2000) == "Remove key k and its 2,000 servers?"


@pytest.mark.parametrize("value, number", [(None, 0), ("", 0), (" 7 ", 7), (12, 12), ("8760", 8760)])
def test_whole_number_reads_blank_as_zero(value, number):
    from eportal_core.services import whole_number
    assert whole_number(value, name="n", field="n", high=8760, zero="none") == number


def test_server_limit_and_deploy_after_are_one_whole_number_rule():
    assert defined("whole_number") == ["src/eportal_core/services/__init__.py"]
    for module in ("keys", "feeds"):
        assert "int(str(" not in (ROOT / f"src/eportal_core/services/{module}.py").read_text()
