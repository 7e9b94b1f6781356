"""pconv_torch.benchmark (``pconv bench``): the layer shapes it times, the timing loop and the
table it prints (tiny sizes, CPU)."""

import itertools

import pytest

from pconv_torch import benchmark


def test_the_layers_are_the_generators_eight_partial_convolutions():
    layers = benchmark.generator_pconv_layers(64)
    assert [spec[0] for spec in layers] == ["enc1", "enc2", "enc3", "enc4",
                                             "dec5", "dec6", "dec7", "dec8"]
    enc1, dec5 = layers[0], layers[4]
    assert enc1[1:] == ((3,), 64, 5, 2, 2, 1)  # Table 1: 5x5/2 -> 64 on the image
    assert len(dec5[1]) == 2 and dec5[3:5] == (3, 1)  # upsampled features + skip, 3x3/1
    for (_, groups, c_out, _, stride, _, div), nxt in zip(layers, layers[1:]):
        if nxt[0].startswith("enc"):  # each encoder layer feeds the next one
            assert nxt[1] == (c_out,) and nxt[-1] == div * stride


def test_bench_device_times_every_variant_with_the_given_clock_and_statistic():
    ticks = itertools.count()
    clock = lambda: float(next(ticks))  # noqa: E731 - each timed call takes one tick
    layers = [spec for spec in benchmark.generator_pconv_layers(32) if spec[0] in ("enc2", "dec6")]
    rows = benchmark.bench_device(layers, benchmark.torch.device("cpu"), batch=1, size=32,
                                  repeats=3, warmup=1, clock=clock, stat="min")
    assert [spec for spec, _ in rows] == layers
    for _, times in rows:
        assert times == {"conv": 1.0, "pconv": 1.0, "naive": 1.0}


def test_the_command_prints_one_row_per_layer_and_the_total(capsys):
    benchmark.main(["--quick", "--device", "cpu", "--layers", "enc1,dec8", "--repeats", "1"])
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines() if line.startswith(("enc", "dec", "total"))]
    assert rows == ["enc1", "dec8", "total"]
    assert "batch 2, input 32x32" in out


@pytest.mark.parametrize("argv, message", [
    (["--quick", "--layers", "enc9"], "unknown layers"),
    (["--size", "40"], "multiple of 16"),  # (--quick would set the size to 32)
    (["--quick", "--clock", "cpu", "--device", "all"], "--clock cpu"),
])
def test_bad_options_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(argv)
    assert message in capsys.readouterr().err
