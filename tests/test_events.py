"""The event state machine (edge.events): hysteresis, minimum duration, hold, smoothing, background."""
import numpy as np
import pytest

from edge.events import EVENT_KEYS, EventConfig, EventDetector, ScoreSmoother

LABELS = ["Archery", "Surfing", "_background"]


def run(det, seq, dt=0.1, t0=0.0):
    """Feed score vectors at ``dt`` spacing; returns [(event, label, stream_time, frames), ...]."""
    out = []
    for i, s in enumerate(seq):
        for ev in det.update(s, t0 + i * dt, 1000.0 + t0 + i * dt, frame_index=i):
            out.append(ev)
    return out


def vec(a=0.0, s=0.0):
    return [a, s, max(0.0, 1.0 - a - s)]


def brief(events):
    return [(e["event"], e["label"], e["stream_time"], e["frames"]) for e in events]


def test_start_after_min_duration_and_end_after_hold_with_exact_times():
    cfg = EventConfig(enter=0.6, exit=0.4, min_duration_s=0.3, hold_s=0.2, smoothing="none")
    det = EventDetector("cam1", LABELS, cfg)
    seq = [vec(0.1)] * 5 + [vec(0.9)] * 10 + [vec(0.1)] * 5
    evs = run(det, seq)
    assert brief(evs) == [("start", "Archery", 0.5, [5, 8]), ("end", "Archery", 1.4, [5, 14])]
    assert set(evs[0]) == set(EVENT_KEYS) and evs[0]["clip"] is None
    assert evs[0]["camera"] == "cam1" and evs[0]["wall_time"] == pytest.approx(1000.5)
    assert evs[1]["confidence"] == pytest.approx(0.9)        # end: the peak
    assert det.idle


def test_blip_shorter_than_min_duration_makes_no_event():
    det = EventDetector("c", LABELS, EventConfig(min_duration_s=0.5, smoothing="none"))
    assert run(det, [vec(0.1)] * 3 + [vec(0.95)] * 4 + [vec(0.1)] * 5) == []
    assert det.counts["start"] == 0


def test_hysteresis_keeps_event_between_exit_and_enter():
    det = EventDetector("c", LABELS, EventConfig(enter=0.7, exit=0.3, min_duration_s=0.0, hold_s=0.0,
                                                 smoothing="none"))
    # 0.5 is below enter but above exit: stays active; 0.2 ends it.
    evs = run(det, [vec(0.8), vec(0.5), vec(0.5), vec(0.5), vec(0.2)])
    assert [e["event"] for e in evs] == ["start", "end"]
    assert evs[1]["frames"] == [0, 3]
    # 0.5 alone never starts one
    det2 = EventDetector("c", LABELS, EventConfig(enter=0.7, exit=0.3, min_duration_s=0.0, smoothing="none"))
    assert run(det2, [vec(0.5)] * 10) == []


def test_short_dip_within_hold_does_not_split_the_event():
    det = EventDetector("c", LABELS, EventConfig(min_duration_s=0.0, hold_s=0.35, smoothing="none"))
    seq = [vec(0.9)] * 5 + [vec(0.1)] * 2 + [vec(0.9)] * 5 + [vec(0.1)] * 6
    evs = run(det, seq)
    assert [e["event"] for e in evs] == ["start", "end"]
    assert evs[1]["frames"] == [0, 11]


def test_background_class_never_makes_events_and_is_idle():
    det = EventDetector("c", LABELS, EventConfig(min_duration_s=0.0, smoothing="none"))
    assert run(det, [[0.0, 0.0, 1.0]] * 20) == []
    assert det.idle and det.active() == []


def test_per_class_thresholds_and_unknown_class_error():
    cfg = EventConfig(enter=0.9, exit=0.5, per_class={"Surfing": (0.5, 0.3)}, min_duration_s=0.0,
                      smoothing="none")
    det = EventDetector("c", LABELS, cfg)
    evs = run(det, [vec(0.6, 0.6)] * 3)           # 0.6: enough for Surfing only
    assert [(e["event"], e["label"]) for e in evs] == [("start", "Surfing")]
    with pytest.raises(ValueError, match="unknown class"):
        EventDetector("c", LABELS, EventConfig(per_class={"Golf": (0.5, 0.3)}))


@pytest.mark.parametrize("kw", [dict(enter=0.4, exit=0.6), dict(enter=0.0), dict(smoothing="median"),
                                dict(alpha=0.0), dict(window=0), dict(min_duration_s=-1)])
def test_bad_config_is_refused(kw):
    with pytest.raises(ValueError, match="events:"):
        EventConfig(**kw)


def test_updates_every_interval_and_mean_confidence():
    det = EventDetector("c", LABELS, EventConfig(min_duration_s=0.0, update_every_s=0.25, smoothing="none"))
    seq = [vec(0.8), vec(1.0)] * 5
    evs = run(det, seq)
    kinds = [e["event"] for e in evs]
    assert kinds[0] == "start" and kinds.count("update") == 3     # t = 0.3, 0.6, 0.9
    last = evs[-1]
    assert last["mean_confidence"] == pytest.approx(np.mean([0.8, 1.0] * 5))


def test_ema_and_window_smoothing():
    cfg = EventConfig(smoothing="ema", alpha=0.5)
    sm = ScoreSmoother(cfg, 2)
    assert list(sm(np.array([1.0, 0.0]))) == [1.0, 0.0]
    assert list(sm(np.array([0.0, 1.0]))) == [0.5, 0.5]
    sw = ScoreSmoother(EventConfig(smoothing="window", window=2), 2)
    sw([1.0, 0.0]); sw([0.0, 1.0])
    assert list(sw([0.0, 1.0])) == [0.0, 1.0]
    # A single-prediction spike is smoothed away by the EMA: no event
    det = EventDetector("c", LABELS, EventConfig(enter=0.6, smoothing="ema", alpha=0.4, min_duration_s=0.0))
    assert run(det, [vec(0.0)] * 5 + [vec(1.0)] + [vec(0.0)] * 5) == []


def test_dict_scores_flush_and_two_classes_in_sequence():
    det = EventDetector("c", LABELS, EventConfig(min_duration_s=0.2, hold_s=0.2, smoothing="none"))
    seq = [{"Archery": 0.9}] * 6 + [{"Surfing": 0.9}] * 6
    evs = run(det, seq)
    assert [(e["event"], e["label"]) for e in evs] == [("start", "Archery"), ("end", "Archery"),
                                                       ("start", "Surfing")]
    assert evs[1]["stream_time"] == pytest.approx(0.5) and evs[2]["stream_time"] == pytest.approx(0.6)
    tail = det.flush()
    assert [(e["event"], e["label"]) for e in tail] == [("end", "Surfing")]
    assert det.flush() == []
    with pytest.raises(ValueError, match="2 scores for 3 labels"):
        det.update([0.1, 0.2], 5.0)
