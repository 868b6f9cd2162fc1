"""The restart policy of `spp up` on a fake clock: backoff doubling to a cap, reset after a stable
spell, a failed start counting as a crash, giving up after too many crashes in the window."""

from __future__ import annotations

import pytest

from services.common.supervisor import GaveUp, RestartPolicy, Supervisor, Unit

TICK = 0.0625  # a power of two: the fake clock's sums stay exact


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fake:
    """A unit that is up until `die()`; `fail_starts` makes the next starts raise."""

    def __init__(self) -> None:
        self.up = True
        self.starts = 0
        self.fail_starts = 0

    def die(self) -> None:
        self.up = False

    def start(self) -> None:
        if self.fail_starts:
            self.fail_starts -= 1
            raise OSError("address already in use")
        self.starts += 1
        self.up = True

    def unit(self) -> Unit:
        return Unit(alive=lambda: self.up, start=self.start, exit_status=lambda: "exited with code 1")


def run(supervisor: Supervisor, clock: Clock, seconds: float, tick: float = 0.125) -> None:
    for _ in range(round(seconds / tick)):
        clock.now += tick
        supervisor.step()


def crash_and_time_restart(supervisor: Supervisor, clock: Clock, fake: Fake) -> float:
    """Kill the unit and return how long it took the supervisor to start it again."""
    fake.die()
    starts, began = fake.starts, clock.now
    while fake.starts == starts:
        clock.now += TICK
        supervisor.step()
    return clock.now - began


def make(policy: RestartPolicy = RestartPolicy(max_crashes=100)):
    clock, fake, other, lines = Clock(), Fake(), Fake(), []
    supervisor = Supervisor({"training": fake.unit(), "gateway": other.unit()}, policy, clock=clock,
                            log=lines.append)
    return supervisor, clock, fake, other, lines


def test_backoff_doubles_to_ten_seconds_and_the_others_are_left_alone():
    supervisor, clock, fake, other, lines = make()
    delays = [crash_and_time_restart(supervisor, clock, fake) for _ in range(7)]
    # one tick to notice the crash, then the delay
    assert delays == [TICK + d for d in (0.5, 1, 2, 4, 8, 10, 10)]
    assert other.starts == 0 and other.up
    assert lines[0] == "training exited with code 1; restarting in 0.5 s (crash 1 of 100 allowed within 60 s)"
    assert lines[1] == "training restarted"


def test_backoff_starts_over_after_a_stable_spell():
    supervisor, clock, fake, _, _ = make()
    assert [crash_and_time_restart(supervisor, clock, fake) for _ in range(3)] == [TICK + d for d in (0.5, 1, 2)]
    run(supervisor, clock, 30)
    assert crash_and_time_restart(supervisor, clock, fake) == TICK + 0.5


def test_a_failed_start_is_a_crash_with_the_next_delay():
    supervisor, clock, fake, _, lines = make()
    fake.fail_starts = 2
    assert crash_and_time_restart(supervisor, clock, fake) == TICK + 0.5 + 1 + 2
    assert lines[1] == ("training failed to start (OSError: address already in use); restarting in 1 s "
                        "(crash 2 of 100 allowed within 60 s)")


def test_gives_up_after_five_crashes_within_a_minute_but_not_when_they_are_spread_out():
    supervisor, clock, fake, _, _ = make(RestartPolicy())
    for _ in range(4):
        crash_and_time_restart(supervisor, clock, fake)
    fake.die()
    with pytest.raises(GaveUp, match=r"^training exited with code 1; it crashed 5 times within 60 s, giving up$"):
        run(supervisor, clock, 1)

    supervisor, clock, fake, _, _ = make(RestartPolicy())
    for _ in range(8):  # one crash every ~31 s: never 5 within 60 s
        crash_and_time_restart(supervisor, clock, fake)
        run(supervisor, clock, 31, tick=1)
    assert fake.starts == 8
