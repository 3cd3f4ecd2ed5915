"""Readers of text files answer any bytes in one line: a scenario file and a gates file that are
binary, not UTF-8, or arbitrary bytes either load or raise the reader's own error, whose message
is one line naming the file (never a traceback from the decoder or the YAML parser)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ortwin.gate import GateError, load_gates
from twin.io import TextFileError, read_text
from twin.scenario import ScenarioError, load_scenario


@pytest.mark.parametrize(("data", "words"), [
    (b"\xff\xfe\x00n\x00a\x00m\x00e", "binary data"),
    (b"name: caf\xe9\n", "expected UTF-8 text, byte 9 is not (0xe9)"),
])
def test_bad_bytes_are_named(tmp_path, data, words):
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    with pytest.raises(TextFileError, match=re.escape(words)):
        read_text(path)
    for load, error in ((load_scenario, ScenarioError), (load_gates, GateError)):
        with pytest.raises(error) as info:
            load(path)
        assert str(info.value).splitlines() == [str(info.value)]
        assert str(path) in str(info.value) and words in str(info.value)


def test_a_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffname: x\n".encode())
    assert read_text(path) == "name: x\n"


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_load_or_fail_in_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "any.yaml"
    path.write_bytes(data)
    for load, error in ((load_scenario, ScenarioError), (load_gates, GateError)):
        try:
            load(path)
        except error as e:
            assert "\n" not in str(e) and str(e)
