"""ConnectionBalance: a worker over its fair share of the open connections closes one (it is told to)."""

from __future__ import annotations

import os

from tastebud.http_server.balance import ConnectionBalance


def other_worker(balance: ConnectionBalance, connections: int) -> None:
    """Pretend a second live worker (this test's parent process) holds ``connections``."""
    balance._pids[1] = os.getppid()  # type: ignore[attr-defined]
    balance._counts[1] = connections  # type: ignore[attr-defined]


def test_a_lone_worker_never_closes() -> None:
    balance = ConnectionBalance(slots=4)
    balance.join()
    assert not balance.over_fair_share(8)


def test_over_the_fair_share_closes_until_even() -> None:
    balance = ConnectionBalance(slots=4)
    balance.join()
    for mine, theirs, close in [(7, 1, True), (5, 3, True), (4, 4, False), (5, 4, False), (1, 7, False)]:
        other_worker(balance, theirs)
        assert balance.over_fair_share(mine) is close, (mine, theirs)  # fair share: ceil(total / 2)


def test_gone_workers_do_not_count_and_their_slot_is_reused() -> None:
    balance = ConnectionBalance(slots=2)
    balance._pids[0] = 2**22 + 12345  # type: ignore[attr-defined]  # no such process
    balance._counts[0] = 50  # type: ignore[attr-defined]
    balance.join()
    assert balance._slot == 0  # type: ignore[attr-defined]
    assert not balance.over_fair_share(3)
    balance.leave()
    assert balance._pids[0] == 0  # type: ignore[attr-defined]
