"""Cell claims (pointly.model.study.claims): a claim is live while its holder lives, stale when the
holder's process is gone (same host) or its file went unrefreshed for STALE seconds (another
host); the holder's heartbeat refreshes it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from pointly.model.study import claims


def test_a_claim_is_held_until_released(tmp_path):
    cell = tmp_path / "cells" / "c"
    held = claims.try_claim(cell)
    assert held is not None
    holder = claims.claim_holder(cell / claims.CLAIM)
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert claims.try_claim(cell) is None  # a live holder, this very process included
    held.release()
    assert not (cell / claims.CLAIM).exists() and claims.claim_holder(cell / claims.CLAIM) is None
    with claims.try_claim(cell) as again:
        assert again is not None and (cell / claims.CLAIM).is_file()
    assert not (cell / claims.CLAIM).exists()


def _write(path, **holder):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(holder), encoding="utf-8")


def test_a_claim_of_a_dead_process_on_this_host_is_stale(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = tmp_path / "c" / claims.CLAIM
    _write(path, host=socket.gethostname(), pid=gone.pid, started=None)
    assert claims.claim_holder(path) is None
    # a live pid that started at another time is a reused pid: stale too (where /proc exists)
    if claims._start_ticks(os.getpid()) is not None:
        _write(path, host=socket.gethostname(), pid=os.getpid(), started="1")
        assert claims.claim_holder(path) is None
        _write(path, host=socket.gethostname(), pid=os.getpid(), started=claims._start_ticks(os.getpid()))
        assert claims.claim_holder(path) is not None
    _write(path, host=socket.gethostname(), pid=gone.pid, started=None)
    with claims.try_claim(path.parent) as taken:  # a stale claim is taken over
        assert taken is not None and json.loads(path.read_text())["pid"] == os.getpid()


def test_another_hosts_claim_lives_while_it_is_refreshed(tmp_path):
    path = tmp_path / "c" / claims.CLAIM
    _write(path, host="another-machine.example", pid=1, started="5")
    assert claims.claim_holder(path)["host"] == "another-machine.example"
    old = time.time() - claims.STALE - 1
    os.utime(path, (old, old))
    assert claims.claim_holder(path) is None
    path.write_text("{torn", encoding="utf-8")  # a torn write is stale as well
    assert claims.claim_holder(path) is None


def test_the_heartbeat_refreshes_a_held_claim(tmp_path):
    held = claims.try_claim(tmp_path / "c", heartbeat=0.02)
    old = time.time() - 3600
    os.utime(held.path, (old, old))
    deadline = time.time() + 5
    while held.path.stat().st_mtime < time.time() - 60 and time.time() < deadline:
        time.sleep(0.02)
    assert held.path.stat().st_mtime > time.time() - 60
    held.release()
