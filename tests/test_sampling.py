"""The paper's temporal sampling: ``i * max(frames // N, 1)`` for i < N, indices that exist."""
import pytest

from edge.sampling import PAD, SKIP, TemporalSampling, frame_step, pad_indices, paper_indices


def paper_frames_extraction_indices(video_frames_count, sequence_length):
    """The paper's frames_extraction loop, reduced to the positions it seeks to; the read fails
    (and the loop breaks) past the last frame."""
    skip_frames_window = max(int(video_frames_count / sequence_length), 1)
    out = []
    for frame_counter in range(sequence_length):
        pos = frame_counter * skip_frames_window
        if pos >= video_frames_count:
            break
        out.append(pos)
    return out


@pytest.mark.parametrize("count", [1, 5, 19, 20, 21, 39, 40, 41, 59, 99, 111, 363, 1000, 1234])
@pytest.mark.parametrize("n", [1, 8, 16, 20, 30])
def test_paper_indices_equal_the_paper_loop(count, n):
    assert paper_indices(count, n) == paper_frames_extraction_indices(count, n)


@pytest.mark.parametrize("count,n,expected", [
    (5, 20, [0, 1, 2, 3, 4]),                          # shorter than N: every frame, fewer than N
    (20, 20, list(range(20))),                         # exactly N
    (39, 20, list(range(20))),                         # 39 // 20 = 1: the first 20 frames (the paper's choice)
    (40, 20, list(range(0, 40, 2))),
    (363, 20, list(range(0, 360, 18))),                # a real UCF101 clip: last frames never sampled
])
def test_paper_indices_known_values(count, n, expected):
    assert paper_indices(count, n) == expected


def test_indices_are_increasing_in_range_and_at_most_n():
    for count in range(1, 300):
        for n in (1, 7, 20):
            idx = paper_indices(count, n)
            assert len(idx) == min(n, count)
            assert idx == sorted(set(idx))
            assert idx[0] == 0 and idx[-1] < count
            if len(idx) > 1:
                assert idx[1] - idx[0] == frame_step(count, n)


def test_empty_video_and_bad_n():
    assert paper_indices(0, 20) == []
    with pytest.raises(ValueError):
        paper_indices(10, 0)


def test_pad_indices_repeat_the_last_frame():
    assert pad_indices([0, 1, 2, 3, 4], 8) == [0, 1, 2, 3, 4, 4, 4, 4]
    assert pad_indices(list(range(10)), 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        pad_indices([], 3)


def test_temporal_sampling_round_trip():
    ts = TemporalSampling(frames=20, frame_interval_s=0.08, short_policy=SKIP)
    assert ts.clip_seconds == pytest.approx(1.6)
    back = TemporalSampling.from_dict(ts.to_dict())
    assert back == ts
    assert TemporalSampling().short_policy == PAD and TemporalSampling().clip_seconds is None
