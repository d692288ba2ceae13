"""The bounded retry the venues' adapters share (quant/venues/_retry.py)."""

from __future__ import annotations

import pytest

from quant.venues._retry import Backoff, Retryable


def test_backoff_when_every_attempt_fails_then_waits_doubling_and_gives_up_with_last() -> None:
    waits: list[float] = []
    tries: list[int] = []

    def attempt() -> str:
        tries.append(1)
        raise Retryable(f"HTTP 503 #{len(tries)}")

    retry = Backoff(max_attempts=4, backoff_s=0.5, max_backoff_s=1.5, sleep=waits.append)
    with pytest.raises(RuntimeError, match="gave up: HTTP 503 #4"):
        retry.run(attempt, lambda last: RuntimeError(f"gave up: {last}"))
    assert len(tries) == 4
    assert waits == [0.5, 1.0, 1.5]  # doubled, capped, no wait after the last attempt


def test_backoff_when_server_sends_retry_after_then_waits_at_least_that() -> None:
    waits: list[float] = []
    answers = iter([Retryable("HTTP 429", wait_s=1.25), "ok"])

    def attempt() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    retry = Backoff(max_attempts=3, backoff_s=0.1, max_backoff_s=8.0, sleep=waits.append)
    assert retry.run(attempt, RuntimeError) == "ok"
    assert waits == [1.25]


def test_backoff_when_failure_is_not_retryable_then_raises_at_once() -> None:
    waits: list[float] = []
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise KeyError("refused")

    with pytest.raises(KeyError):
        Backoff(max_attempts=5, sleep=waits.append).run(attempt, RuntimeError)
    assert calls == [1] and waits == []


def test_backoff_when_max_attempts_below_one_then_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts must be >= 1"):
        Backoff(max_attempts=0)
