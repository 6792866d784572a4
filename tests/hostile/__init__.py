"""The hostile-input corpus: inputs an attacker controls, each with the exact error it must give.

One module per surface, each with one table of cases:

- `index_yaml`: files of the index folder, as a pull request can change them;
- `archives`: .ki files, as `add` and PR validation read them;
- `http_targets`: raw requests to `registry-index serve`.

`tests/test_hostile_corpus.py` runs every table. A surface that gets code
later adds its own module and table here: pull-request changes (ownership,
immutability, asset downloads) with the publishing flow, and `register`
passwords (over bcrypt's 72-byte limit, empty) with `register`.
"""
