"""Waiting out GitHub's rate limits, on top of PyGithub's retry policy.

GitHub limits content-creating requests (about 80 a minute and 500 an hour)
and answers a request past a limit with 403 or 429. Its REST API docs
("Rate limits for the REST API") say what to wait: the seconds in
`Retry-After` when present, else until the epoch second in
`x-ratelimit-reset` when `x-ratelimit-remaining` is 0, else at least a
minute, and exponentially longer while the request keeps failing.

PyGithub 2.10's GithubRetry already retries a 403 that carries `Retry-After`
or a rate-limit message, but it waits a fixed `secondary_rate_wait` for a
secondary limit without `Retry-After`, reads `x-ratelimit-reset` only for the
primary limit, does not retry a 429 without `Retry-After`, and sleeps through
urllib3's `time.sleep`. `RateLimitRetry` keeps its decision of what to retry
and replaces the wait, so it follows GitHub's order, logs each wait, and
sleeps through a function that tests can replace.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from github.GithubRetry import GithubRetry

log = logging.getLogger(__name__)

RATE_LIMIT_STATUSES = (403, 429)
# GitHub asks for at least one minute when a secondary limit gives no time.
FIRST_BACKOFF_SECONDS = 60.0


class RateLimitRetry(GithubRetry):
    """GithubRetry that waits as GitHub asks after 403 and 429 rate-limit responses.

    `sleep` and `clock` default to time.sleep and time.time; tests pass
    functions of a simulated clock, so a wait of an hour takes no real time.
    """

    def __init__(self, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time, **kwargs: Any):
        self.sleep_function = sleep
        self.clock = clock
        forcelist = list(kwargs.get("status_forcelist", range(500, 600)))
        # GithubRetry adds 403 itself; GitHub sends 429 for secondary limits too.
        if 429 not in forcelist:
            forcelist.append(429)
        kwargs["status_forcelist"] = forcelist
        super().__init__(**kwargs)

    def new(self, **kwargs: Any) -> RateLimitRetry:
        # urllib3 makes a new Retry object for every attempt; carry our settings over.
        kwargs.update(sleep=self.sleep_function, clock=self.clock)
        return super().new(**kwargs)

    def sleep(self, response=None) -> None:
        """Wait before the next attempt; urllib3 calls this after `increment` decided to retry."""
        if response is None or response.status not in RATE_LIMIT_STATUSES:
            seconds = self._server_error_wait(response)
            if seconds > 0:
                self.sleep_function(seconds)
            return
        # GithubRetry.increment raised already for a 403 that is not a rate limit.
        seconds, reason = self.rate_limit_wait(response)
        attempt = self.history[-1] if self.history else None
        request = f"{attempt.method} {attempt.url}" if attempt is not None else "a request"
        log.info("GitHub rate limit on %s (HTTP %d): waiting %g s (%s)", request, response.status, seconds, reason)
        self.sleep_function(seconds)

    def rate_limit_wait(self, response) -> tuple[float, str]:
        """Return the seconds to wait after a rate-limit response, and where that figure comes from."""
        retry_after = self.get_retry_after(response)
        if retry_after is not None:
            return retry_after, "Retry-After"
        reset = response.headers.get("x-ratelimit-reset", "")
        if reset.isdigit() and response.headers.get("x-ratelimit-remaining", "0") == "0":
            # The reset is a whole epoch second; the extra second covers where in it the reset happens.
            return max(int(reset) - self.clock(), 0.0) + 1, "x-ratelimit-reset"
        failures = 0
        for attempt in reversed(self.history):
            if attempt.status not in RATE_LIMIT_STATUSES:
                break
            failures += 1
        return FIRST_BACKOFF_SECONDS * 2 ** max(failures - 1, 0), f"rate-limit response {failures} in a row, no wait given"

    def _server_error_wait(self, response) -> float:
        retry_after = self.get_retry_after(response) if response is not None and self.respect_retry_after_header else None
        return retry_after if retry_after else self.get_backoff_time()
