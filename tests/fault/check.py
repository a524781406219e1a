"""The contract, checked on every client's log at the end of a fault run."""

from __future__ import annotations

from .client import ChatClient


def check_logs(clients: list[ChatClient], *, db_rows: list[tuple[int, str]]) -> dict:
    """Raise AssertionError naming the broken property; return a summary.

    - 0 lost acknowledged messages: every ack (client_id -> seq) of any client
      is in every client's log at that seq;
    - 0 duplicates: no client_id twice in any log, every client_id acked with
      one seq only, and no two rows for one client_id in the database;
    - one order for all: every log is the same sequence (1..head, no gaps).
    """
    problems: list[str] = []
    acked: dict[str, int] = {}
    for c in clients:
        for cid, seqs in c.acks.items():
            if len(set(seqs)) != 1:
                problems.append(f"{c.name}: {cid} acked with different seqs {seqs}")
            if cid in acked and acked[cid] != seqs[0]:
                problems.append(f"{cid} acked as {acked[cid]} and {seqs[0]}")
            acked[cid] = seqs[0]
        missing = [cid for cid in c.sent_ids if cid not in c.acks]
        if missing:
            problems.append(f"{c.name}: never acknowledged {missing[:5]}")

    reference = [(o.seq, o.client_id) for o in clients[0].log]
    for c in clients:
        entries = [(o.seq, o.client_id) for o in c.log]
        seqs = [s for s, _ in entries]
        if seqs != list(range(1, len(seqs) + 1)):
            problems.append(f"{c.name}: log is not 1..n without gaps: {seqs[:20]}")
        ids = [cid for _, cid in entries if cid is not None]
        dups = {cid for cid in ids if ids.count(cid) > 1}
        if dups:
            problems.append(f"{c.name}: duplicates {sorted(dups)[:5]}")
        by_seq = dict(entries)
        lost = [cid for cid, seq in acked.items() if by_seq.get(seq) != cid]
        if lost:
            problems.append(f"{c.name}: lost acknowledged {lost[:5]}")
        if entries != reference:
            problems.append(f"{c.name}: order differs from {clients[0].name}")

    db_ids = [cid for _, cid in db_rows]
    if len(db_ids) != len(set(db_ids)):
        problems.append("duplicate client_id rows in the database")
    if [s for s, _ in db_rows] != list(range(1, len(db_rows) + 1)):
        problems.append("database seqs are not dense")
    if dict(db_rows) != dict(reference):
        problems.append("client logs differ from the database")
    if problems:
        codes: dict[str, int] = {}
        for c in clients:
            for e in c.errors:
                codes[str(e.get("code"))] = codes.get(str(e.get("code")), 0) + 1
        problems.append(f"error frames seen by clients: {codes}")
    assert not problems, "\n".join(problems[-30:])
    return {
        "clients": len(clients),
        "messages": len(reference),
        "acked": len(acked),
        "connects": sum(c.connects for c in clients),
    }
