"""Build progress: nothing for short runs, log lines without a terminal, a bar on one."""

import io
import logging

from registry_index import progress as progress_module
from registry_index.progress import Progress


def test_short_run_reports_nothing(caplog):
    caplog.set_level(logging.INFO)
    report = Progress(terminal=False)
    report.stage("loading the index")
    report.stage("rendering images", total=3)
    report.advance(3)
    report.done()
    assert caplog.messages == []


def test_log_lines_without_terminal(caplog, monkeypatch):
    monkeypatch.setattr(progress_module, "SHOW_AFTER", 0.0)
    monkeypatch.setattr(progress_module, "LOG_EVERY", 0.0)
    caplog.set_level(logging.INFO)
    report = Progress(terminal=False)
    report.stage("loading the index")
    report.stage("rendering images", total=2)
    report.advance()
    report.advance()
    report.done()
    assert caplog.messages == [
        "build: loading the index",
        "build: rendering images (2 steps)",
        "build: rendering images 2/2",
    ]


def test_bar_on_terminal(monkeypatch):
    monkeypatch.setattr(progress_module, "SHOW_AFTER", 0.0)
    stream = io.StringIO()
    monkeypatch.setattr(progress_module.sys, "stderr", stream)
    report = Progress(terminal=True)
    report.stage("rendering images", total=4)
    report.advance(4)
    assert report._bar is not None
    assert report._bar.tasks[0].completed == 4
    assert report._bar.tasks[0].description == "build: rendering images"
    report.done()
    assert report._bar is None


def test_disabled_progress_is_silent(caplog, monkeypatch):
    monkeypatch.setattr(progress_module, "SHOW_AFTER", 0.0)
    caplog.set_level(logging.INFO)
    report = Progress(enabled=False, terminal=False)
    report.stage("loading the index")
    report.done()
    assert caplog.messages == []
