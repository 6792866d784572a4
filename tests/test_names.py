import pytest

from registry_index import names


@pytest.mark.parametrize("older, newer", [
    ("3.0.9", "3.0.10"),
    ("1.0", "1.0.1"),
    ("1.9", "1.10"),
    ("2.0", "10.0"),
    ("1.0-rc1", "1.0-rc2"),
    ("1.0-rc9", "1.0-rc10"),
    ("1.0", "1.0a"),
    ("9", "v1"),
    ("010", "10"),
    ("alpha", "beta"),
])
def test_version_order(older, newer):
    assert names.version_key(older) < names.version_key(newer)


@pytest.mark.parametrize("versions, expected", [
    (["3.0.9", "3.0.10", "3.0.2"], "3.0.10"),
    (["1.0", "latest", "9.9"], "latest"),
    (["1.0", "LATEST"], "LATEST"),
    ([], None),
])
def test_latest_version(versions, expected):
    assert names.latest_version(versions) == expected


@pytest.mark.parametrize("check, value, expected", [
    (names.author_problem, "cycore", None),
    (names.author_problem, "Cy_core", "author 'Cy_core' has characters outside letters and digits; rename it"),
    (names.author_problem, "", "author is empty; write one made of letters and digits"),
    (names.author_problem, "anonymous", "author 'anonymous' is reserved for pulls without an author; choose another author"),
    (names.author_problem, "a" * 33, "author 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is 33 characters long; the maximum is 32"),
    (names.author_problem, 12, "author must be a string, got 12"),
    (names.name_problem, "my_app-2", None),
    (names.name_problem, "my app", "name 'my app' has characters outside letters, digits, '_' and '-'; rename it"),
    (names.name_problem, "CON", "name 'CON' is a reserved device name on Windows; choose another name"),
    (names.name_problem, "red\u0456s", "name 'red\u0456s' has characters outside letters, digits, '_' and '-' (U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I at position 4); rename it"),
    (names.version_problem, "3.0.4", None),
    (names.version_problem, "..", "version '..' has characters outside letters, digits, '.' and '-', starting with a letter or digit; rename it"),
    (names.version_problem, "-1", "version '-1' has characters outside letters, digits, '.' and '-', starting with a letter or digit; rename it"),
    (names.version_problem, "1/2", "version '1/2' has characters outside letters, digits, '.' and '-', starting with a letter or digit; rename it"),
    (names.version_problem, "nul.1", "version 'nul.1' is a reserved device name on Windows; choose another version"),
])
def test_name_rules(check, value, expected):
    assert check(value) == expected


def test_identity_folds_case_and_underscore():
    assert names.identity("My_App") == names.identity("my-app") == "my-app"
