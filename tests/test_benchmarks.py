"""The training benchmark's measurements run and report what they promise (tiny sizes)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return load("bench_training")


def test_distance_to_the_limit_reports_every_phase_and_mode(bench, capsys):
    result = bench.main(["--limit", "--presets", "ci", "--modes", "eager,static", "--rounds", "1",
                         "--steps", "1", "--warmup", "0", "--matmul", "64", "--threads", "1"])
    assert set(result) == {("ci", residual, mode, phase) for residual in (False, True)
                           for mode in ("eager", "static") for phase in (1, 2, 3)}
    for row in result.values():
        assert row["s_per_step"] > 0 and row["images_per_s"] > 0
        assert 0 < row["fraction"] == pytest.approx(row["tflops"] * 1e3 / row["matmul_gflops"])
    out = capsys.readouterr().out
    assert "matmul rate measured in this run: float32" in out and "vs eager" in out


def test_pyramid_share_times_both_passes(bench):
    result = bench.main(["--pyramid", "--size", "32", "--width", "0.125", "--batch", "2",
                         "--rounds", "1", "--steps", "1", "--warmup", "0", "--threads", "1"])
    assert result["inside"] > 0 and result["given"] > 0
    assert result["ratio"] == pytest.approx(result["inside"] / result["given"])
