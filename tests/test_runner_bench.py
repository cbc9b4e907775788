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


def test_no_bundle_says_how_to_get_one(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench_runner, "DEFAULT_BUNDLE", tmp_path / "nothing")
    assert bench_runner.main(["--seconds", "1"]) == 2
    assert "make demo" in capsys.readouterr().err
    assert soak.main(["--minutes", "1"]) == 2
    assert "--model DIR" in capsys.readouterr().err
    assert bench_runner.find_bundle("some/dir") == "some/dir"


def test_benchmarks_import_nothing_from_tests():
    from pathlib import Path
    for p in sorted(Path(bench_runner.__file__).parent.glob("*.py")):
        src = p.read_text()
        assert "_tiny_models" not in src and '/ "tests"' not in src, "{0} reaches into tests/".format(p)
