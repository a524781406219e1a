"""The chat delivery contract through real faults against real processes.

Each run: several clients in two rooms send while the fault happens; at the
end every client's log is checked (tests/fault/check.py): 0 lost acknowledged
messages, 0 duplicates, one order for all, and the database agrees.
"""

import asyncio
import time

import pytest

from tests.fault.harness import (  # noqa: F401 - people_fixture provides `people`
    DAPHNE_ENV,
    assert_contract,
    explained,
    make_clients,
    people_fixture,
    run_clients,
    wait_all_welcomed,
)
from tests.fault.proxy import FaultProxy
from tests.fixtures.live import daphne_service, run_dir
from videochat.devstack import redis_service

pytestmark = [pytest.mark.live, pytest.mark.fault, pytest.mark.django_db(transaction=True)]


def test_chaos_proxy_resets_and_stalls_lose_nothing(people):
    daphne = daphne_service(**DAPHNE_ENV).start()
    try:

        async def main():
            proxy = await FaultProxy(daphne.port, seed=4).start()
            clients = make_clients(people, proxy.port, to_send=25)

            async def faults():
                proxy.start_chaos(every_s=0.2, reset_share=0.5)
                await asyncio.sleep(7)
                proxy.stop_chaos()

            took = await run_clients(clients, faults)
            await proxy.stop()
            return clients, proxy, took

        clients, proxy, took = asyncio.run(main())
    finally:
        daphne.stop()
    summaries = assert_contract(clients)
    # The faults really happened and forced reconnects.
    assert proxy.resets >= 10 and proxy.stalls >= 10, (proxy.resets, proxy.stalls)
    assert sum(s["connects"] for s in summaries) > len(clients) + 10
    print(f"chaos: {summaries} resets={proxy.resets} stalls={proxy.stalls} in {took:.1f}s")


def test_daphne_sigkilled_and_restarted_mid_run_loses_nothing(people):
    daphne = daphne_service(**DAPHNE_ENV).start()
    t0 = time.monotonic()
    kills = 0
    in_flight: list[int] = []
    early: list[int] = []  # clients welcomed by each new daphne before its start() returned
    clients = make_clients(people, daphne.port, to_send=40)
    try:

        async def main():
            nonlocal daphne, kills

            async def faults():
                nonlocal daphne, kills
                since = time.monotonic()
                for _ in range(2):
                    # Each kill hits every client connected to this daphne (under load
                    # a fixed sleep did not ensure it: 37 connects of 45 in CI).
                    await wait_all_welcomed(clients, since)
                    in_flight.append(sum(c.to_send - len(c.acks) for c in clients))
                    daphne.kill()  # SIGKILL: no close frames, no cleanup
                    kills += 1
                    # From here a socket that opens was accepted by the next daphne. Not
                    # from start()'s return: a client may be welcomed by the new daphne
                    # before the harness sees its /healthz answer, and was then never
                    # counted (the "not welcomed within 20 s" of CI: reproduced in 3 of 8
                    # runs: the clients named were each time the first ones back).
                    since = time.monotonic()
                    await asyncio.sleep(0.8)
                    daphne = await asyncio.to_thread(
                        daphne_service(daphne.port, **DAPHNE_ENV).start
                    )
                    ready = time.monotonic()
                    early.append(sum(since <= (c.held_opened_at or 0) < ready for c in clients))
                # And every client came back to the last one.
                await wait_all_welcomed(clients, since)

            return await run_clients(clients, faults)

        with explained(clients, t0, daphne.log_path):
            took = asyncio.run(main())
    finally:
        daphne.stop()
    assert kills == 2
    with explained(clients, t0, daphne.log_path):
        summaries = assert_contract(clients)
        # Every client was connected at each kill and came back after each restart.
        assert all(c.connects >= 3 for c in clients), [c.connects for c in clients]
        assert in_flight[0] > 0  # the first kill hit while messages were still being sent
    print(
        f"daphne kill: {summaries} in flight at the kills {in_flight}, "
        f"welcomed before start() returned {early}, in {took:.1f}s"
    )


# while-connecting: Redis dies as the sockets open and join (under load the 1.5 s of
# mid-run may be spent connecting): daphne must serve them all once it is back.
@pytest.mark.parametrize("kill_after_s", [1.5, 0.0], ids=["mid-run", "while-connecting"])
def test_redis_restarted_mid_run_loses_nothing(people, kill_after_s):
    # A private redis-server for this test alone (not the suite's, never the shared one),
    # without persistence: the restart loses presence, groups and rate limits.
    redis = redis_service(run_dir(), persist=False).start()
    daphne = daphne_service(REDIS_URL=f"redis://127.0.0.1:{redis.port}/0", **DAPHNE_ENV).start()
    restarts = 0
    in_flight: list[int] = []
    back_at: list[float] = []
    try:

        async def main():
            nonlocal redis, restarts
            clients = make_clients(people, daphne.port, to_send=40)

            async def faults():
                nonlocal redis, restarts
                await asyncio.sleep(kill_after_s)
                in_flight.append(sum(c.to_send - len(c.acks) for c in clients))
                redis.kill()
                await asyncio.sleep(1.5)
                redis = await asyncio.to_thread(
                    redis_service(run_dir(), redis.port, persist=False).start
                )
                restarts += 1
                back_at.append(time.monotonic())
                await asyncio.sleep(2)

            took = await run_clients(clients, faults, settle_s=40)
            return clients, took

        started = time.monotonic()
        clients, took = asyncio.run(main())
        assert time.monotonic() - started < 60
    finally:
        daphne.stop()
        redis.stop()
    assert restarts == 1
    # A failure shows each client's sockets (times from Redis' return) and daphne's
    # warnings: CI once had no client acknowledged at all and no error frame.
    with explained(clients, back_at[0], daphne.log_path):
        summaries = assert_contract(clients)
        if kill_after_s:
            assert in_flight[0] > 0  # the restart hit while messages were still being sent
        # Live wake-ups came back after the restart (the fan-out resubscribed), for
        # everyone mid-run. While connecting, a client whose socket opens only after its
        # room's others have sent everything catches up by sync with nothing left to get
        # live (the likely cause of 1 failure in about 20 runs under load, not proven):
        # there, in every room someone gets it live.
        live = [c for c in clients if any(t > back_at[0] + 0.5 for t in c.live_at)]
        if kill_after_s:
            assert live == clients, [c.name for c in clients if c not in live]
        else:
            assert {c.room for c in live} == {c.room for c in clients}, [c.name for c in live]
    print(f"redis restart: {summaries} in {took:.1f}s")
