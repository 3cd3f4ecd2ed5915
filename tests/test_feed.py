"""The observation feed: lines round-trip, bad lines are quarantined with one-line reasons,
the published JSON Schema is the generated one and agrees with the parser line by line."""

from __future__ import annotations

import datetime as dt
import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.feed import (
    SCHEMA_PATH,
    VALUES,
    FeedError,
    Observation,
    json_schema,
    parse_line,
    read_feed,
    write_feed,
)

T = dt.datetime(2026, 11, 23, 7, 31, tzinfo=dt.timezone(dt.timedelta(hours=1)))
GOOD = {"v": 1, "time": "2026-11-23T07:31:00+01:00", "room": "OR3", "kind": "room_state",
        "value": "setup", "source": "camera", "confidence": 0.93}

BAD = [
    ("{", "line 1: not JSON"),
    ("[1]", "line 1: expected a JSON object"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "v"}), "line 1: v: required field"),
    (json.dumps({**GOOD, "time": "2026-11-23T07:31:00"}), "time: expected an ISO 8601 time"),
    (json.dumps({**GOOD, "kind": "milestone"}), "value: 'setup' is not a milestone"),
    (json.dumps({**GOOD, "extra": 1}), "line 1: extra: unknown field"),
    (json.dumps({**GOOD, "confidence": 1.5}), "line 1: confidence: expected less than"),
    (json.dumps({**GOOD, "source": "gossip"}), "line 1: source: expected"),
    (json.dumps({**GOOD, "v": 3}), "line 1: v: expected one of 1, 2"),
    (json.dumps({**GOOD, "event_id": "m1"}), "v: event_id and received need version 2"),
    (json.dumps({**GOOD, "v": 2, "received": "2026-11-23T07:40:00"}), "received: expected"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "room"}), "room: required field"),
]


def test_published_schema_is_the_generated_one():
    assert json.loads(SCHEMA_PATH.read_text()) == json_schema()


@pytest.mark.parametrize(("line", "expected"), BAD)
def test_bad_lines_fail_in_one_line_and_the_schema_agrees(line, expected):
    with pytest.raises(FeedError) as e:
        parse_line(line, 1, "feed.jsonl")
    assert str(e.value).startswith("feed.jsonl: ") and expected in str(e.value)
    assert "\n" not in str(e.value)
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, json_schema(), format_checker=jsonschema.FormatChecker())


observations = st.builds(
    lambda kind, i, room, case, conf, minutes: Observation(
        time=T + dt.timedelta(minutes=minutes), room=room, kind=kind,
        value=VALUES[kind][i % len(VALUES[kind])], case_id=case, source="camera",
        confidence=conf),
    st.sampled_from(list(VALUES)), st.integers(0, 100), st.sampled_from(["OR1", "OR10"]),
    st.none() | st.text("abc-0123", min_size=1, max_size=8), st.floats(0, 1),
    st.integers(0, 10_000))


@given(st.lists(observations, max_size=20))
@settings(max_examples=50, deadline=None)
def test_observations_round_trip_and_validate(tmp_path_factory, obs):
    path = tmp_path_factory.mktemp("feed") / "f.jsonl"
    write_feed(obs, path)
    feed = read_feed(path)
    assert feed.observations == obs and feed.quarantine == [] and feed.lines_read == len(obs)
    schema = json_schema()
    for line in path.read_text().splitlines():
        jsonschema.validate(json.loads(line), schema, format_checker=jsonschema.FormatChecker())


def test_bad_lines_are_quarantined_never_dropped(tmp_path):
    good = Observation(time=T, room="OR1", kind="milestone", value="in_room", case_id="c1",
                       source="ehr")
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join([good.line(), BAD[0][0], "", BAD[4][0], good.line()]) + "\n")
    feed = read_feed(path)
    assert feed.observations == [good, good] and feed.lines_read == 4
    assert [q["line"] for q in feed.quarantine] == [2, 4]
    assert "not a milestone" in feed.quarantine[1]["reason"]
    with pytest.raises(FeedError, match="file not found"):
        read_feed(tmp_path / "missing.jsonl")


def test_version_1_lines_stay_readable_and_match_their_published_schema():
    v1 = json.loads((SCHEMA_PATH.parent / "observation-v1.schema.json").read_text())
    jsonschema.validate(GOOD, v1, format_checker=jsonschema.FormatChecker())
    obs = parse_line(json.dumps(GOOD))
    assert obs.v == 1 and "event_id" not in json.loads(obs.line())
    v2 = {**GOOD, "v": 2, "event_id": "adt-77", "received": "2026-11-23T07:52:00+01:00"}
    jsonschema.validate(v2, json_schema(), format_checker=jsonschema.FormatChecker())
    again = parse_line(parse_line(json.dumps(v2)).line())
    assert again.event_id == "adt-77" and again.received is not None
