"""The runner benchmarks' pure parts (the runs themselves are too long for the default suite)."""
import pytest

from benchmarks import bench_runner, soak


def test_soak_rss_growth_uses_samples_after_warmup():
    samples = [(0, 50_000), (10, 90_000), (20, 102_400), (40, 102_400), (60, 104_448)]
    grow, base, last = soak.growth_mb(samples, warmup_s=20)
    assert base == 100.0 and last == 102.0 and grow == pytest.approx(2.0)
    assert soak.growth_mb([], 20) == (0.0, 0.0, 0.0)


def test_bench_and_soak_help(capsys):
    for mod in (bench_runner, soak):
        with pytest.raises(SystemExit) as e:
            mod.main(["--help"])
        assert e.value.code == 0
        assert "examples:" in capsys.readouterr().out
    assert bench_runner.TARGETS == {"fps": 29.5, "dropped_pct": 1.0, "c2p_p99_ms": 20.0}


def test_bad_arguments_exit_2(capsys):
    assert bench_runner.main(["--seconds", "0"]) == 2
    assert soak.main(["--minutes", "0"]) == 2
