"""rq logs one line per job (bin/up's output stays readable with a job a minute)."""

import pytest

from tests.fixtures.workers import rq_burst

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_an_rq_job_logs_one_line():
    import django_rq

    from deliveries import jobs

    django_rq.get_queue("default").enqueue(jobs.expire_presence)
    result = rq_burst(LOG_JSON="0")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if "expire_presence" in line]
    assert len(lines) == 1, output
    assert "Successfully completed" in lines[0]
    for noise in ("Job OK", "result is kept", "cleaning registries"):
        assert noise not in output, output
