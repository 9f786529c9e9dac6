"""load_yaml: data, the line of every key, ${VAR} interpolation and its problems."""

from __future__ import annotations

import textwrap

from router.yamlsource import dotted, load_yaml

TEXT = textwrap.dedent("""\
    server:
      bind: 127.0.0.1:8080
    sinks:
      out:
        batch: [1, 2]
        api_key: ${KEY}
""")


def test_every_key_and_item_has_its_line():
    loaded = load_yaml(TEXT, "router.yaml", env={"KEY": "k-123"})
    assert loaded.problems == []
    assert loaded.data["sinks"]["out"]["batch"] == [1, 2]
    assert loaded.lines[("server", "bind")] == 2
    assert loaded.lines[("sinks", "out", "batch", 1)] == 5
    # A path without a line of its own takes its nearest ancestor's.
    assert loaded.line(("sinks", "out", "api_key", "deeper")) == 6
    assert loaded.line(("nothing",)) == 1


def test_interpolated_values_are_secrets_and_plain_scalars_are_typed_after():
    text = "a: ${KEY}\nn: ${N:-2}\nq: '${N:-2}'\nempty: ${E:-d}\nlit: $${KEY}\n"
    loaded = load_yaml(text, "f.yaml", env={"KEY": "k-123", "E": ""})
    assert loaded.data == {"a": "k-123", "n": 2, "q": "2", "empty": "d", "lit": "${KEY}"}
    assert loaded.secrets == {"k-123"}


def test_an_unset_variable_is_a_problem_at_its_key_and_line():
    loaded = load_yaml(TEXT, "router.yaml", env={})
    (problem,) = loaded.problems
    assert str(problem) == (
        "router.yaml:6: sinks.out.api_key: environment variable ${KEY} is not set"
    )
    assert loaded.failed_paths == {("sinks", "out", "api_key")}


def test_duplicate_and_unsupported_keys_are_problems():
    loaded = load_yaml("a: 1\na: 2\n? [x]\n: 3\n", "f.yaml", env={})
    assert [str(p) for p in loaded.problems] == [
        "f.yaml:2: a: duplicate key",
        "f.yaml:3: unsupported key ['x']",
    ]


def test_invalid_yaml_is_one_problem_with_its_line():
    loaded = load_yaml("a: [1, 2\nb: 3\n", "f.yaml", env={})
    (problem,) = loaded.problems
    assert problem.file == "f.yaml" and problem.line is not None
    assert problem.message.startswith("invalid YAML: ")


def test_an_empty_document_is_an_empty_mapping():
    assert load_yaml("", "f.yaml", env={}).data == {}
    assert load_yaml("# only a comment\n", "f.yaml", env={}).data == {}


def test_anchors_and_merge_keys_keep_their_lines():
    loaded = load_yaml("base: &b {x: 1}\nsink:\n  <<: *b\n  y: 2\n", "f.yaml", env={})
    assert loaded.data["sink"] == {"x": 1, "y": 2}
    assert loaded.lines[("sink", "y")] == 4


def test_dotted_paths():
    assert dotted(("sinks", "out", "batch", 0, "x")) == "sinks.out.batch[0].x"
    assert dotted((0,)) == "[0]"
    assert dotted(()) == ""
