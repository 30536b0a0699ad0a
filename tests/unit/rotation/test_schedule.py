import random
import threading

import pytest

from databricks.labs.oauth_rotator.rotation.schedule import FakeClock, RefreshPolicy, SystemClock


def test_an_hour_long_credential_is_refreshed_ten_minutes_before_expiry():
    policy = RefreshPolicy(margin_seconds=600, interval_seconds=3000)
    assert policy.due_at(issued_at=0, expires_at=3600) == 3000


def test_the_interval_caps_the_time_between_refreshes():
    policy = RefreshPolicy(margin_seconds=600, interval_seconds=1200)
    assert policy.due_at(issued_at=0, expires_at=3600) == 1200


def test_a_credential_shorter_than_twice_the_margin_is_refreshed_at_half_its_life():
    policy = RefreshPolicy(margin_seconds=600, interval_seconds=3000)
    assert policy.due_at(issued_at=100, expires_at=400) == 250


@pytest.mark.parametrize("lifetime", [0.001, 2, 30, 119])
def test_a_refresh_never_comes_sooner_than_a_minute_after_issue_whatever_the_credential_says(lifetime):
    """Issue 19: a credential that lived 2 s gave 16 cycles in 30 s."""
    policy = RefreshPolicy(margin_seconds=600, interval_seconds=3000)
    assert policy.due_at(issued_at=100, expires_at=100 + lifetime) == 160
    assert RefreshPolicy(interval_seconds=1).due_at(issued_at=0, expires_at=3600) == 60


@pytest.mark.parametrize("failures", [1, 2, 3, 4, 10, 50])
def test_backoff_grows_with_jitter_and_is_capped(failures):
    policy = RefreshPolicy(backoff_base_seconds=5, backoff_cap_seconds=300)
    delays = [policy.retry_delay(failures, needs_person=False, rng=random.Random(seed)) for seed in range(50)]
    ceiling = min(300, 5 * 2 ** (failures - 1))
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1, "jitter spreads retries"


def test_errors_that_need_a_person_are_retried_slowly():
    policy = RefreshPolicy(needs_person_retry_seconds=900)
    assert policy.retry_delay(1, needs_person=True) == 900


def test_fake_clock_moves_when_waited_on_and_when_a_suspend_is_simulated():
    clock = FakeClock(start=1000)
    stop = threading.Event()
    assert clock.wait(stop, 30) is False
    clock.jump(7200)
    assert clock.time() == 1000 + 30 + 7200
    stop.set()
    assert clock.wait(stop, 5) is True


def test_system_clock_wait_returns_as_soon_as_stopped():
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    assert SystemClock().wait(stop, 10) is True


@pytest.mark.parametrize(
    ("value", "floor"), [(None, 60), ("1", 1), ("30", 30), ("0", 60), ("0.5", 60), ("3600", 60), ("nan", 60), ("x", 60)]
)
def test_the_refresh_floor_may_be_lowered_to_a_second_for_tests_and_never_removed(value, floor):
    from databricks.labs.oauth_rotator.rotation.schedule import MIN_REFRESH_VARIABLE, min_refresh_seconds

    assert min_refresh_seconds({} if value is None else {MIN_REFRESH_VARIABLE: value}) == floor
