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


def test_a_stale_count_of_an_idle_worker_is_replaced_by_what_it_publishes() -> None:
    """The idle worker's last busy count made 16/16 look even while it held nothing: it publishes 0 on its tick."""
    balance = ConnectionBalance(slots=4)
    balance.join()
    other_worker(balance, 16)  # what the other worker held when it last answered
    assert not balance.over_fair_share(16)
    balance._counts[1] = 0  # type: ignore[attr-defined]  # its publish(0) on the next tick
    assert balance.over_fair_share(16)


def test_publish_records_this_workers_count_only_after_join() -> None:
    balance = ConnectionBalance(slots=2)
    balance.publish(5)  # not joined: nothing to record
    assert list(balance._counts) == [0, 0]  # type: ignore[attr-defined]
    balance.join()
    balance.publish(5)
    assert balance._counts[balance._slot] == 5  # type: ignore[attr-defined]


def test_the_worker_server_publishes_its_open_connections_on_every_tick() -> None:
    import asyncio

    import uvicorn

    from tastebud.http_server.asgi import LambdaAsgiApp
    from tastebud.http_server.prefork import BalancedDrainingServer

    balance = ConnectionBalance(slots=2)
    balance.join()
    app = LambdaAsgiApp(lambda: None, balance=balance)  # type: ignore[arg-type,return-value]
    server = BalancedDrainingServer(config=uvicorn.Config(app, lifespan="off"))
    app.count_connections_with(lambda: 3)
    balance.publish(16)  # a stale count from a busy moment
    assert asyncio.run(server.on_tick(1)) is False  # still serving
    assert balance._counts[balance._slot] == 3  # type: ignore[attr-defined]
