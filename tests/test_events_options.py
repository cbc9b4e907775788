"""The edge-run options of events/sinks/recording/web (edge.eventsinks.options) and the _background class."""
import argparse
import json
import socket
import urllib.request

import pytest

from edge.eventsinks.options import EPILOG, OptionError, add_arguments, open_hub

LABELS = ["Archery", "Surfing", "_background"]


def parse(*argv):
    p = argparse.ArgumentParser(epilog=EPILOG)
    add_arguments(p)
    return p.parse_args(list(argv))


def test_no_event_option_means_no_hub():
    assert open_hub(parse(), LABELS) is None


def test_hub_from_options_with_file_sink_recorder_and_web(tmp_path):
    a = parse("--events", str(tmp_path / "e.jsonl"), "--record", str(tmp_path / "clips"), "--serve", "127.0.0.1:0",
              "--event-enter", "0.7", "--event-exit", "0.5", "--event-class", "Surfing=0.8:0.6",
              "--event-min-duration", "0", "--event-smoothing", "none")
    hub = open_hub(a, LABELS)
    try:
        assert hub.config.thresholds("Surfing") == (0.8, 0.6) and hub.config.thresholds("Archery") == (0.7, 0.5)
        evs = hub.on_prediction("cam1", [0.9, 0.05, 0.05], 0.0, None, 0)
        assert [(e["event"], e["label"]) for e in evs] == [("start", "Archery")]
        state = json.loads(urllib.request.urlopen(hub.web.url + "api/state", timeout=5).read())
        assert state["cameras"]["cam1"]["active"] == ["Archery"]
    finally:
        c = hub.close()
    assert c["sinks"]["events file " + str(tmp_path / "e.jsonl")]["delivered"] == 2   # start + end at close


@pytest.mark.parametrize("argv, needle", [
    (["--events", "kafka://u:secret@h/t"], "--events kafka://u:***@h/t: unknown event sink"),
    (["--serve", "0.0.0.0:0"], "set a token"),
    (["--serve", "localhost:http"], "expected HOST:PORT"),
    (["--events", "x.jsonl", "--event-class", "Golf=0.5"], "Golf: not a class"),
    (["--events", "x.jsonl", "--event-enter", "0.3", "--event-exit", "0.5"], "exit <= enter"),
])
def test_bad_options_say_what_to_fix(argv, needle):
    with pytest.raises(OptionError) as e:
        open_hub(parse(*argv), LABELS)
    assert needle in str(e.value) and "secret" not in str(e.value)


def test_port_in_use_is_an_option_error_and_opened_sinks_are_closed(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        with pytest.raises(OptionError, match="cannot listen there"):
            open_hub(parse("--events", str(tmp_path / "e.jsonl"), "--serve",
                           "127.0.0.1:{}".format(s.getsockname()[1])), LABELS)
    finally:
        s.close()


def test_bad_class_threshold_syntax():
    with pytest.raises(SystemExit):
        parse("--event-class", "Archery")


def test_background_folder_is_an_ordinary_training_class(tmp_path):
    """Training side of "no action": a ``_background`` class folder is picked up like any class."""
    from train.data.layout import walk_dataset
    for c in ("Archery", "_background"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "v_{}_g01_c01.avi".format(c)).write_bytes(b"\0" * 16)
    classes, videos, _ = walk_dataset(tmp_path)
    assert classes == ["Archery", "_background"] and len(videos) == 2
