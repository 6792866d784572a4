"""The options the benchmarks share: bad counts and unusable work folders give a message, not a traceback."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from options import add_registry_options, make_workdir  # noqa: E402


def parse(*arguments: str) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="bench")
    add_registry_options(parser, seed_help="seed", workdir_help="folder")
    return parser, parser.parse_args(list(arguments))


@pytest.mark.parametrize("arguments, message", [
    (["--images", "0"], "bench: error: --images and --versions must be at least 1, not 0 and 10"),
    (["--versions", "-2"], "bench: error: --images and --versions must be at least 1, not 10000 and -2"),
    (["--workdir", "/proc/none"], "bench: error: cannot create --workdir /proc/none: No such file or directory; choose a writable folder"),
    (["--workdir", "/proc"], "bench: error: cannot create a folder in --workdir /proc: No such file or directory; choose a writable folder"),
])
def test_bad_options_exit_with_message(arguments, message, capsys):
    parser, parsed = parse(*arguments)
    with pytest.raises(SystemExit) as exited:
        make_workdir(parser, parsed, "bench-")
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == message


def test_workdir_made_inside_given_folder(tmp_path):
    parser, parsed = parse("--workdir", str(tmp_path / "new"))
    workdir = make_workdir(parser, parsed, "bench-")
    assert workdir.parent == tmp_path / "new"
    assert workdir.name.startswith("bench-")
    assert workdir.is_dir()
