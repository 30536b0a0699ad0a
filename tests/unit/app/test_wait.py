"""`wait`: ready when every target asked for has a credential on file beyond the margin; a timeout names the rest."""

from __future__ import annotations

import pytest

from databricks.labs.oauth_rotator.app import wait
from databricks.labs.oauth_rotator.errors import ConfigError
from tests.unit.app.test_password import NOW, TOKEN, files


class Clock:
    """Time that moves only when slept."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_credential_beyond_the_margin_is_ready_at_once(tmp_path):
    config, environ = files(tmp_path, TOKEN, NOW + 10 * 60 + 1)
    clock = Clock(NOW)
    wait.wait_until_ready(config, environ=environ, clock=clock.time, sleep=clock.sleep)
    wait.wait_until_ready(config, "sales", environ=environ, clock=clock.time, sleep=clock.sleep)
    assert clock.slept == []


def test_within_the_margin_it_looks_a_few_times_a_second_then_names_the_target(tmp_path):
    config, environ = files(tmp_path, TOKEN, NOW + 10 * 60 - 1)
    clock = Clock(NOW)
    with pytest.raises(wait.NotReadyError, match=r"not ready after 2 s: sales$") as raised:
        wait.wait_until_ready(config, timeout=2, environ=environ, clock=clock.time, sleep=clock.sleep)
    assert raised.value.exit_code == 1
    assert len(clock.slept) == 10 and max(clock.slept) <= wait.POLL_SECONDS


def test_a_credential_written_while_it_waits_ends_the_wait(tmp_path):
    config, environ = files(tmp_path, TOKEN, NOW - 1)
    status = tmp_path / "state" / "status.json"
    clock = Clock(NOW)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.slept) == 3:  # the scheduler's cycle lands: the same line, now recorded for another hour
            status.write_text(status.read_text().replace(str(NOW - 1), str(NOW + 3600)))

    wait.wait_until_ready(config, timeout=30, environ=environ, clock=clock.time, sleep=sleep)
    assert len(clock.slept) == 3


def test_an_unknown_target_or_config_is_bad_usage_at_once(tmp_path):
    config, environ = files(tmp_path, TOKEN, NOW + 3600)
    clock = Clock(NOW)
    with pytest.raises(ConfigError, match="no target named 'nope'"):
        wait.wait_until_ready(config, "nope", environ=environ, clock=clock.time, sleep=clock.sleep)
    with pytest.raises(ConfigError):
        wait.wait_until_ready(str(tmp_path / "none.yml"), environ=environ, clock=clock.time, sleep=clock.sleep)
    assert clock.slept == []
