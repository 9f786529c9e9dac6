"""router.deadletters: the dead letters of a data directory's spool, read without a daemon."""

from __future__ import annotations

import pytest

from router import deadletters, errors
from router.deadletters import DeadLetters
from router.spool import connect, sink_ids


def test_an_unknown_sink_is_a_usage_error_of_the_tree_that_lists_the_known_sinks(tmp_path):
    db = connect(tmp_path / "spool.db")
    sink_ids(db, ["alpha", "beta"])
    db.commit()
    db.close()
    with DeadLetters(tmp_path) as dlq, pytest.raises(errors.UnknownSink) as caught:
        dlq.count("gamma")
    assert isinstance(caught.value, errors.UsageError) and isinstance(caught.value, LookupError)
    assert str(caught.value) == "no sink named 'gamma' in this spool (sinks: alpha, beta)"
    assert deadletters.UnknownSink is errors.UnknownSink
    assert "UnknownSink" in errors.__all__ and "UnknownSink" in deadletters.__all__
