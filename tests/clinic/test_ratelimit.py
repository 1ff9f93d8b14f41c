"""The database-backed rate limit behind password resets holds when requests arrive at once (run this file with
BACKCARE_TEST_DB=postgres as well: there the threads really write in parallel)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.db.models import F

from backcare.clinic.models import RateCount
from backcare.clinic.services import ratelimit

THREADS = 16
LIMIT = 5


@pytest.mark.django_db(transaction=True)
def test_no_more_than_the_limit_get_through_when_requests_arrive_at_once():
    start = threading.Barrier(THREADS)
    answers: list[bool] = []
    lock = threading.Lock()

    def request() -> None:
        try:
            start.wait()
            allowed = ratelimit.hit("test", "203.0.113.9", limit=LIMIT, window=dt.timedelta(hours=1))
            with lock:
                answers.append(allowed)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(answers) == THREADS
    assert answers.count(True) == LIMIT
    assert RateCount.objects.get(scope="test").count == THREADS  # refused requests count too


@pytest.mark.django_db
def test_the_window_moves_on_and_other_values_are_counted_apart():
    window = dt.timedelta(hours=1)
    assert [ratelimit.hit("t", "a@x.test", limit=2, window=window) for _ in range(3)] == [True, True, False]
    assert ratelimit.hit("t", "B@x.test", limit=2, window=window)
    assert not ratelimit.hit("t", " A@X.test ", limit=2, window=window)  # the same address, however typed
    RateCount.objects.update(window_start=F("window_start") - window)  # an hour later
    assert ratelimit.hit("t", "a@x.test", limit=2, window=window)
    assert RateCount.objects.count() == 1  # the ended windows are cleared
    assert "a@x.test" not in str(list(RateCount.objects.values_list("key", flat=True)))
