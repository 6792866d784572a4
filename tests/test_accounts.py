"""Accounts: tokens as kindo computes them, bcrypt hashes, and the name and password rules."""

import hashlib

import bcrypt
import pytest

from registry_index.accounts import InvalidAccount, new_account, render_account_yaml, token_for, verify_token
from registry_index.index import load_index


def test_token_is_md5_hex():
    assert token_for("sample-password") == hashlib.md5(b"sample-password").hexdigest()
    assert token_for("密码") == hashlib.md5("密码".encode()).hexdigest()


def test_new_account_stores_only_bcrypt(index_dir):
    # A password with spaces cannot occur by chance in the random salt, hash or uid (a short one such as "pw" can).
    password = "correct horse battery staple"
    account = new_account("alice", password, "alice-gh", "2026-12-04T19:00:00Z", load_index(index_dir))
    assert account.token_bcrypt.startswith("$2b$12$")
    assert verify_token(account, token_for(password))
    assert not verify_token(account, token_for("other"))
    text = render_account_yaml(account)
    assert password not in text
    assert token_for(password) not in text


def test_account_yaml_round_trips(index_dir):
    account = new_account("alice", "pw", "alice-gh", "2026-12-04T19:00:00Z", load_index(index_dir))
    (index_dir / "accounts/alice.yaml").write_text(render_account_yaml(account))
    loaded = load_index(index_dir).account("alice")
    assert (loaded.username, loaded.uid, loaded.github, loaded.token_bcrypt, loaded.created) == (
        account.username, account.uid, account.github, account.token_bcrypt, account.created)


def test_token_from_java_hub_without_leading_zeros(index_dir):
    # "a5" is one of the passwords whose MD5 digest starts with 0.
    password = next(p for p in (f"a{i}" for i in range(1000)) if token_for(p).startswith("0"))
    account = new_account("alice", password, "alice", "2026-12-04T19:00:00Z", load_index(index_dir))
    java_style = token_for(password).lstrip("0")
    assert len(java_style) < 32
    assert verify_token(account, java_style)
    assert verify_token(account, token_for(password))


@pytest.mark.parametrize("username, password, message", [
    ("anonymous", "pw", "username 'anonymous' is reserved for pulls without an author; choose another author"),
    ("Cycore", "pw", "username 'Cycore' is taken by 'cycore' (names ignore case and '_' versus '-'); choose another"),
    ("a-b", "pw", "username 'a-b' has characters outside letters and digits; rename it"),
    ("alice", "", "password is empty; choose a password"),
    ("alice", "x" * 73, "password is 73 bytes in UTF-8; the maximum is 72; choose a shorter one"),
    ("alice", "€" * 25, "password is 75 bytes in UTF-8; the maximum is 72; choose a shorter one"),
])
def test_new_account_rejects(index_dir, username, password, message):
    with pytest.raises(InvalidAccount) as caught:
        new_account(username, password, "gh", "2026-12-04T19:00:00Z", load_index(index_dir))
    assert str(caught.value) == message


def test_password_of_exactly_72_bytes_accepted(index_dir):
    account = new_account("alice", "x" * 72, "gh", "2026-12-04T19:00:00Z", load_index(index_dir))
    assert bcrypt.checkpw(token_for("x" * 72).encode(), account.token_bcrypt.encode())
