"""Kindo accounts: tokens, bcrypt hashes and the account YAML.

Kindo clients never send the password: they send the account token, the
lowercase hex MD5 digest of the password. The registry stores only a bcrypt
hash of that token.
"""

from __future__ import annotations

import hashlib
import json
import uuid

import bcrypt

from . import names
from .errors import RegistryError
from .index import ACCOUNTS_DIR, Index
from .model import ACCOUNT_FIELDS, MIN_BCRYPT_COST, Account

# bcrypt reads at most 72 bytes of its input. The token is 32 bytes, but a
# longer password is refused so that kindo clients, which may hash the password
# itself elsewhere, never silently ignore its tail.
MAX_PASSWORD_BYTES = 72
BCRYPT_COST = MIN_BCRYPT_COST


class InvalidAccount(RegistryError):
    """A username or password that cannot become an account."""


def token_for(password: str) -> str:
    """Return the account token that kindo clients send for `password`."""
    return hashlib.md5(password.encode("utf-8")).hexdigest()


def check_password(password: str) -> None:
    if password == "":
        raise InvalidAccount("password is empty; choose a password")
    size = len(password.encode("utf-8"))
    if size > MAX_PASSWORD_BYTES:
        raise InvalidAccount(f"password is {size} bytes in UTF-8; the maximum is {MAX_PASSWORD_BYTES}; choose a shorter one")


def check_username(username: str, index: Index) -> None:
    """Raise InvalidAccount unless `username` is valid and free in `index`."""
    problem = names.author_problem(username)
    if problem is not None:
        raise InvalidAccount(problem.replace("author", "username", 1))
    existing = index.account(username)
    if existing is not None:
        raise InvalidAccount(f"username {username!r} is taken by {existing.username!r} (names ignore case and '_' versus '-'); choose another")


def new_account(username: str, password: str, github_login: str, created: str, index: Index) -> Account:
    """Return a new account for `username`, owned by `github_login`, with the token's bcrypt hash."""
    check_username(username, index)
    check_password(password)
    token_hash = bcrypt.hashpw(token_for(password).encode("ascii"), bcrypt.gensalt(BCRYPT_COST)).decode("ascii")
    return Account(username=username, uid=str(uuid.uuid4()), github=github_login, token_bcrypt=token_hash, created=created)


def verify_token(account: Account, token: str) -> bool:
    """Return whether `token` is the account's token.

    The Java kindo hub stored the digest as a number and dropped leading zeros,
    so a token carried over from it can be shorter than 32 characters. The
    token is left-padded with zeros before the comparison.
    """
    padded = token.lower().rjust(32, "0")
    if len(padded) != 32:
        return False
    return bcrypt.checkpw(padded.encode("ascii"), account.token_bcrypt.encode("ascii"))


def account_path(username: str) -> str:
    """Return the account file's path inside the repository."""
    return f"index/{ACCOUNTS_DIR}/{names.path_part(username)}.yaml"


def render_account_yaml(account: Account) -> str:
    """Return the canonical YAML text of an account file."""
    lines = ["# Written by registry-index register. The password and the token are never stored."]
    for field in ACCOUNT_FIELDS:
        lines.append(f"{field.name}: {json.dumps(getattr(account, field.name))}")
    return "\n".join(lines) + "\n"
