"""Password hashing (argon2id) and the password policy."""
from __future__ import annotations

import string

import pytest
from argon2 import PasswordHasher, Type

from eportal_core.services import ServiceError
from eportal_core.services import passwords as pw


def test_hash_is_argon2id_with_the_owasp_parameters():
    digest = pw.hash_password("Correct-Horse-9")
    assert digest.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "Correct-Horse-9" not in digest


def test_same_password_hashes_differently_each_time():
    assert pw.hash_password("Correct-Horse-9") != pw.hash_password("Correct-Horse-9")


def test_verify_right_and_wrong_password():
    digest = pw.hash_password("Correct-Horse-9")
    assert pw.verify_password(digest, "Correct-Horse-9") is True
    assert pw.verify_password(digest, "correct-horse-9") is False
    assert pw.verify_password(digest, "") is False


@pytest.mark.parametrize("stored", [None, "", "not-a-hash", "$argon2id$v=19$m=19456,t=2,p=1$broken",
                                    "$2b$12$abcdefghijklmnopqrstuu5Zc2GfLiKZYQ8f6LM7xg6wHXjd3D1Mq"])
def test_missing_or_corrupt_hash_is_a_mismatch_not_an_error(stored):
    assert pw.verify_password(stored, "anything-at-all") is False


def test_missing_hash_never_matches_even_the_dummy_password():
    """A user without a hash (LDAP) cannot log in locally, whatever is typed."""
    assert pw.verify_password(None, "") is False


def test_needs_rehash():
    assert pw.needs_rehash(pw.hash_password("Correct-Horse-9")) is False
    # hashes made with other parameters (the library defaults, or argon2i) get upgraded at next login
    assert pw.needs_rehash(PasswordHasher().hash("Correct-Horse-9")) is True
    assert pw.needs_rehash(PasswordHasher(type=Type.I).hash("Correct-Horse-9")) is True
    assert pw.needs_rehash("garbage") is True


def test_old_parameter_hashes_still_verify():
    old = PasswordHasher(time_cost=3, memory_cost=65536).hash("Correct-Horse-9")
    assert pw.verify_password(old, "Correct-Horse-9") is True


@pytest.mark.parametrize("username, password, message", [
    ("alice", "short1", "password is too short: use at least 10 characters"),
    ("alice", "x" * 1025, "password is too long: use at most 1024 characters"),
    ("AliceAlice", "aliceALICE", "password must not be the user name"),
    ("alice", "abcabcabcabc", "password is too simple: use at least 4 different characters"),
    ("alice", "good-pass\nword", "password must not contain NUL or line breaks"),
    ("alice", "good-pass\x00word", "password must not contain NUL or line breaks"),
    ("alice", "good-pass\rword", "password must not contain NUL or line breaks"),
])
def test_policy_refusals(username, password, message):
    with pytest.raises(ServiceError) as exc:
        pw.check_policy(username, password, 10)
    assert str(exc.value) == message


def test_policy_minimum_is_the_configured_one():
    pw.check_policy("alice", "abcd1234", 8)
    with pytest.raises(ServiceError, match="at least 12 characters"):
        pw.check_policy("alice", "abcd1234abc", 12)


def test_policy_accepts_a_reasonable_password():
    pw.check_policy("alice", "Correct-Horse-9", 10)
    pw.check_policy("alice", "x" * 1000 + "abcd", 10)  # long is fine up to the maximum


def test_generated_password():
    allowed = set(string.ascii_letters + string.digits)
    passwords = {pw.generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for p in passwords:
        assert len(p) == 20
        assert set(p) <= allowed
        pw.check_policy("admin", p, 10)  # the first admin's password passes our own policy
    assert len(pw.generate_password(32)) == 32
