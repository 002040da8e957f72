from eportal_core.testing import login


def test_admin_logs_in_and_sees_dashboard(testapp, make_user):
    make_user("alice", "Alice-Secret-1")
    res = login(testapp, "alice", "Alice-Secret-1")
    page = res.follow()
    assert "Key Inventory" in page.text
    assert "alice" in page.text
