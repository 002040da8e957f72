"""The core's feed rules (services.feeds): names, the delay, ``main`` protected, deleting a feed
moves its keys to ``main`` and drops its patchset states. The console, REST API and CLI on top are
the feeds plugin's (plugins/feeds/tests)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from eportal_core.models import MAIN_FEED, AuditEvent, FeedPatchset, Key, PatchLevel, Patchset, utcnow
from eportal_core.services import ServiceError, deploy
from eportal_core.services import feeds as feeds_service
from eportal_core.services import keys as keys_service


@pytest.mark.parametrize("name", ["a", "Beta-2", "x.y_z", "A" * 64])
def test_good_names(name):
    assert feeds_service.validate_feed_name(f" {name} ") == name


@pytest.mark.parametrize("name", ["", " ", "a b", "a/b", ".", "..", "A" * 65, "ü", None])
def test_bad_names(name):
    with pytest.raises(ServiceError, match="invalid feed name"):
        feeds_service.validate_feed_name(name)


@pytest.mark.parametrize("raw,hours", [(None, 0), ("", 0), ("0", 0), (" 10 ", 10), (8760, 8760)])
def test_deploy_after(raw, hours):
    assert feeds_service.parse_deploy_after(raw) == hours


@pytest.mark.parametrize("raw", ["-1", "8761", "1.5", "soon"])
def test_bad_deploy_after(raw):
    with pytest.raises(ServiceError, match="deploy after"):
        feeds_service.parse_deploy_after(raw)


def test_create_update_and_save(dbsession):
    feed = feeds_service.create_feed(dbsession, "qa", auto=True, deploy_after="12", channel="beta", actor="t")
    assert (feed.name, feed.auto, feed.deploy_after, feed.channel) == ("qa", True, 12, "beta")
    with pytest.raises(ServiceError, match="feed 'qa' already exists"):
        feeds_service.create_feed(dbsession, "qa", actor="t")
    feeds_service.update_feed(dbsession, "qa", auto=False, actor="t")
    assert (feed.auto, feed.deploy_after, feed.channel) == (False, 12, "beta")  # None keeps the rest
    feeds_service.update_feed(dbsession, "qa", new_name="qa2", actor="t")
    assert feeds_service.get_feed(dbsession, "qa") is None and feed.name == "qa2"
    same, created = feeds_service.save_feed(dbsession, "qa2", deploy_after="1", actor="t")
    assert same is feed and not created and feed.deploy_after == 1
    new, created = feeds_service.save_feed(dbsession, "fresh", actor="t")
    assert created and (new.auto, new.deploy_after, new.channel) == (False, 0, "")
    assert [e.action for e in dbsession.scalars(select(AuditEvent).order_by(AuditEvent.id))] == \
        ["feed.add", "feed.edit", "feed.edit", "feed.edit", "feed.add"]


def test_main_is_edited_but_never_renamed_or_deleted(dbsession):
    feeds_service.update_feed(dbsession, MAIN_FEED, new_name=MAIN_FEED, auto=True, deploy_after=3, actor="t")
    main = feeds_service.main_feed(dbsession)
    assert (main.auto, main.deploy_after) == (True, 3)
    with pytest.raises(ServiceError, match="the main feed cannot be renamed"):
        feeds_service.update_feed(dbsession, MAIN_FEED, new_name="primary", actor="t")
    with pytest.raises(ServiceError, match="the main feed cannot be deleted"):
        feeds_service.delete_feed(dbsession, MAIN_FEED, actor="t")
    with pytest.raises(ServiceError, match="feed 'ghost' does not exist"):
        feeds_service.delete_feed(dbsession, "ghost", actor="t")


def test_delete_moves_keys_to_main_and_drops_the_feeds_patchset_states(dbsession):
    beta = feeds_service.create_feed(dbsession, "beta", actor="t")
    for name in ("k1", "k2"):
        keys_service.create_key(dbsession, name, feed="beta", actor="t")
    keys_service.create_key(dbsession, "k3", actor="t")
    ps = Patchset(name="K20240101_01", released=utcnow(), downloaded=utcnow())
    dbsession.add(ps)
    dbsession.flush()
    dbsession.add(PatchLevel(patchset_id=ps.id, kernel_id="a" * 40, level=1))
    deploy.enable_upto(dbsession, beta, ps, actor="t")
    deploy.enable_upto(dbsession, feeds_service.main_feed(dbsession), ps, actor="t")
    summary = {s.feed.name: (s.keys, s.enabled, s.latest) for s in feeds_service.list_feeds(dbsession)}
    assert summary == {MAIN_FEED: (1, 1, ps.name), "beta": (2, 1, ps.name)}
    assert list(summary) == [MAIN_FEED, "beta"]
    assert feeds_service.delete_feed(dbsession, "beta", actor="t") == 2
    assert {k.key: k.feed.name for k in dbsession.scalars(select(Key))} == {"k1": MAIN_FEED, "k2": MAIN_FEED,
                                                                            "k3": MAIN_FEED}
    assert dbsession.scalar(select(func.count()).select_from(FeedPatchset)) == 1  # main's state stays
    assert [s.feed.name for s in feeds_service.list_feeds(dbsession)] == [MAIN_FEED]
