"""Progress of long builds: a bar on a terminal, plain log lines elsewhere.

Short runs print nothing: the bar appears only once a run has taken
SHOW_AFTER seconds. When stderr is not a terminal (CI logs), the stages that
start after that and, every LOG_EVERY seconds, the count so far are logged at
INFO level instead, because a redrawn bar would fill a log file with control
characters. rich draws the bar: Typer already depends on it, so it adds no
dependency.
"""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("registry_index.progress")

SHOW_AFTER = 2.0
LOG_EVERY = 10.0
# advance() looks at the clock once per this many steps, to stay cheap per file.
_CHECK_EVERY = 512


class Progress:
    """Reports the stages of one run and the steps done in each."""

    def __init__(self, enabled: bool = True, terminal: bool | None = None, label: str = "build"):
        self.enabled = enabled
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.label = label
        self.started = time.monotonic()
        self.name = ""
        self.total: int | None = None
        self.count = 0
        self.last_log = self.started
        # A bar, once shown, and its one task.
        self._bar = None
        self._task = None

    def stage(self, name: str, total: int | None = None) -> None:
        """Start the stage `name`, of `total` steps when known."""
        self.name, self.total, self.count = name, total, 0
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self.label}: {name}", total=total, completed=0)
        elif not self.terminal and time.monotonic() - self.started >= SHOW_AFTER:
            steps = f" ({total} steps)" if total is not None else ""
            log.info("%s: %s%s", self.label, name, steps)
        if self.terminal:
            self._check()

    def advance(self, steps: int = 1) -> None:
        self.count += steps
        if self.enabled and (self.count % _CHECK_EVERY == 0 or self.total == self.count):
            self._check()

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _check(self) -> None:
        now = time.monotonic()
        if self.terminal:
            if self._bar is None and now - self.started >= SHOW_AFTER:
                self._start_bar()
            if self._bar is not None:
                self._bar.update(self._task, completed=self.count)
        elif now - self.last_log >= LOG_EVERY and self.total:
            self.last_log = now
            log.info("%s: %s %d/%d", self.label, self.name, self.count, self.total)

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        self._bar = Bar(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(file=sys.stderr), transient=True,
        )
        self._task = self._bar.add_task(f"{self.label}: {self.name}", total=self.total, completed=self.count)
        self._bar.start()
