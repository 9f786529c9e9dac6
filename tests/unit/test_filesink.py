"""The file sink: where it writes, whole lines only, and the errors that name the file."""

from __future__ import annotations

import pytest

from router.errors import SinkUnavailable, StorageUnusable
from router.filesink import FileSink
from tests.helpers.storage_faults import fill, tmpfs


def sink(path, data_dir=None, **options) -> FileSink:
    made = FileSink("out", {"path": str(path), **options}, client=None)  # type: ignore[arg-type]
    made.data_dir = data_dir
    return made


async def test_each_event_is_one_line_appended_across_reopens(tmp_path):
    path = tmp_path / "deep" / "out.ndjson"
    for batch in ([b'{"a":1}', b'{"b":2}'], [b'{"c":3}']):
        out = sink(path, fsync=True)
        await out.open()
        await out.send(batch)
        await out.aclose()
    assert path.read_bytes() == b'{"a":1}\n{"b":2}\n{"c":3}\n'


async def test_a_relative_path_is_under_the_data_dir(tmp_path):
    out = sink("events/out.ndjson", data_dir=tmp_path / "data")
    await out.open()
    await out.send([b"{}"])
    await out.aclose()
    assert (tmp_path / "data" / "events" / "out.ndjson").read_bytes() == b"{}\n"


async def test_closing_twice_is_harmless(tmp_path):
    out = sink(tmp_path / "out.ndjson")
    await out.open()
    await out.aclose()
    await out.aclose()


async def test_a_path_that_cannot_be_opened_names_the_file_and_the_option(tmp_path):
    (tmp_path / "out.ndjson").mkdir()
    with pytest.raises(StorageUnusable) as caught:
        await sink(tmp_path / "out.ndjson").open()
    assert caught.value.path == str(tmp_path / "out.ndjson")
    assert str(caught.value).endswith("set sinks.out.path to a writable file")


async def test_a_batch_that_does_not_fit_is_cut_back_to_whole_lines_and_retryable(tmp_path):
    with tmpfs(tmp_path / "fs", "1m") as fs:
        out = sink(fs / "out.ndjson")
        await out.open()
        try:
            await out.send([b'{"first":1}'])
            filler = fill(fs, leave=10_000)
            big = [b'{"x":"' + b"y" * 4000 + b'"}'] * 8  # about 32 kB into 10 kB of room
            with pytest.raises(SinkUnavailable, match=f"no space left to write {fs}/out.ndjson"):
                await out.send(big)
            assert (fs / "out.ndjson").read_bytes() == b'{"first":1}\n'
            filler.unlink()
            await out.send(big)  # the retry appends after the last whole line
        finally:
            await out.aclose()
        lines = (fs / "out.ndjson").read_bytes().splitlines()
    assert lines == [b'{"first":1}', *big]
