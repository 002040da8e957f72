"""The server-list query shapes chosen for fleet scale (bench/pages_bench.py) give the same answers
as the plain ones, on both databases."""
import pytest
from sqlalchemy import func, select

from eportal_core.models import Server
from eportal_core.services import agents, keys, server_queries
from eportal_core.services.servers import ServerFilter, count_servers, find_servers


@pytest.fixture
def fleet(dbsession):
    keys.create_key(dbsession, "qa")
    keys.create_key(dbsession, "qb")
    tags = ["env:prod;ubuntu", "env:prod;role:web", "env:dev;ubuntu", "env:staging", None, "ubuntu", "env:prod"]
    made = []
    for n, text in enumerate(tags * 3):
        info = agents.parse_info({"tags": text}) if text else {}
        made.append(agents.register(dbsession, "qa" if n % 2 else "qb", hostname=f"web-{n:02d}", info=info).server)
    dbsession.flush()
    return made


def plain_count(db, flt):
    return db.scalar(select(func.count()).select_from(Server).where(*flt.conditions(db)))


@pytest.mark.parametrize("tag", ["env:prod", "env", "ubuntu", "role:web", "env:none", "nothing"])
def test_tag_only_count_reads_the_tag_index_and_matches_the_plain_count(dbsession, fleet, tag):
    flt = ServerFilter.from_params({"tag": tag})
    assert count_servers(dbsession, flt) == plain_count(dbsession, flt)


@pytest.mark.parametrize("params", [{"tag": "env:prod"}, {"tag": "ubuntu", "key": "qa"},
                                    {"tag": "env", "hostname": "web-1%"}, {"feed": "main"},
                                    {"feed": "main", "hostname": "web-1%", "tag": "env:prod"}])
def test_common_tag_and_feed_forms_finds_the_same_servers(dbsession, fleet, monkeypatch, params):
    def page():
        found = find_servers(dbsession, ServerFilter.from_params(params), sort="hostname", limit=100)
        return [r["id"] for r in found.rows], found.count
    rare = page()
    monkeypatch.setattr(server_queries, "COMMON_ROWS", 2)   # every tag and feed is "common" now (SQLite)
    assert page() == rare
    assert rare[1] == len(rare[0]) > 0
