"""router.configcase: reading ``router test`` case files, with problems located by line and key."""

from __future__ import annotations

import pytest

from router.configcase import CaseFileError, case_files, load_cases


def test_a_case_file_error_names_the_line_and_key(tmp_path):
    (tmp_path / "c.yaml").write_text("sources: {}\n")
    path = tmp_path / "case.yaml"
    path.write_text(
        "config: c.yaml\ncases:\n  - name: one\n    source: s\n    input: {}\n"
        "    expect:\n      sinks:\n        out: everything\n"
    )
    with pytest.raises(CaseFileError) as info:
        load_cases(path)
    assert str(info.value).startswith(f"{path}:8: cases[0].expect.sinks.out:")


def test_case_files_takes_files_and_the_yaml_files_of_directories(tmp_path):
    (tmp_path / "d").mkdir()
    for name in ("d/b.yaml", "d/a.yml", "d/notes.txt", "one.yaml"):
        (tmp_path / name).write_text("")
    found = case_files([tmp_path / "one.yaml", tmp_path / "d"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "one.yaml",
        "d/a.yml",
        "d/b.yaml",
    ]


def test_a_missing_path_or_an_empty_directory_is_a_case_file_error(tmp_path):
    with pytest.raises(CaseFileError, match="no such file or directory"):
        case_files([tmp_path / "nope.yaml"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaseFileError, match="no case files"):
        case_files([tmp_path / "empty"])
