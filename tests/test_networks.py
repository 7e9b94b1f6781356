"""The poster's networks (Tables 1 and 2) and their architecture tables."""
import pytest
import torch

from pconv_torch.masks import crop_boxes, local_boxes
from pconv_torch.networks import Discriminator, Generator
from pconv_torch.summary import architecture_table, format_table


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def hole_mask(n, size, y0, x0, side):
    """(n, 1, size, size) mask, 1 = valid, with a square hole."""
    m = torch.ones(n, 1, size, size)
    m[..., y0 : y0 + side, x0 : x0 + side] = 0
    return m


# Table 1 of the poster: (K, S, F, activation) per row.
TABLE_1 = [
    (5, 2, 64, "ReLU"), (5, 2, 128, "ReLU"), (3, 2, 256, "ReLU"), (3, 2, 256, "ReLU"),
    (3, 1, 256, "Leaky ReLU"), (3, 1, 256, "Leaky ReLU"), (3, 1, 128, "Leaky ReLU"),
    (3, 1, 64, "Leaky ReLU"), (3, 1, 3, "Leaky ReLU"), (1, 1, 3, "Sigmoid"),
]


# Input channels of Table 1's rows: the image, the encoder chain, then upsampled + skip.
IN_CHANNELS = [3, 64, 128, 256, 256 + 256, 256 + 128, 256 + 64, 128 + 3, 64, 3]
# Table 2: five 5x5/2 convolutions per branch (the local branch uses the first four), then a
# fully connected layer of 1024 on the 4x4 map left of a 128x128 image or a 64x64 patch.
TABLE_2_FILTERS = (32, 64, 64, 128, 128)


def conv_params(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def linear_params(n_in, n_out):
    return n_in * n_out + n_out


GENERATOR_PARAMS = sum(conv_params(k, c, f) for (k, _, f, _), c in zip(TABLE_1, IN_CHANNELS))


def branch_params(n_convs):
    chain = (3,) + TABLE_2_FILTERS[:n_convs]
    convs = sum(conv_params(5, a, b) for a, b in zip(chain, chain[1:]))
    return convs + linear_params(chain[-1] * 4 * 4, 1024)


DISCRIMINATOR_PARAMS = branch_params(5) + branch_params(4) + linear_params(2048, 1)
GLOBAL_ONLY_PARAMS = branch_params(5) + linear_params(1024, 1)


# --- parameter counts and the state-dict contract ------------------------------------------
@pytest.mark.parametrize("conv", ["partial", "plain"])
def test_generator_parameter_count(conv):
    assert n_params(Generator(conv=conv)) == GENERATOR_PARAMS


def test_discriminator_parameter_counts():
    assert n_params(Discriminator()) == DISCRIMINATOR_PARAMS
    assert n_params(Discriminator(local=False)) == GLOBAL_ONLY_PARAMS


def test_generator_state_dict_keys_and_shapes():
    sd = Generator().state_dict()
    expected = {"fill"} | {f"layers.{i}.conv.{p}" for i in range(10) for p in ("weight", "bias")}
    assert set(sd) == expected
    assert sd["fill"].shape == (3,) and sd["fill"].dtype == torch.float32
    for i, ((k, _, f, _), c) in enumerate(zip(TABLE_1, IN_CHANNELS)):
        assert sd[f"layers.{i}.conv.weight"].shape == (f, c, k, k)
        assert sd[f"layers.{i}.conv.bias"].shape == (f,)


def test_generator_batch_norm_keys():
    g = Generator(norm="batch", conv="plain")
    bn = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    norm_keys = {k for k in g.state_dict() if ".norm." in k}
    assert norm_keys == {f"layers.{i}.norm.{p}" for i in range(8) for p in bn}


def test_discriminator_state_dict_keys():
    sd = Discriminator().state_dict()
    expected = {"head.weight", "head.bias"}
    for br, n_conv in (("global_branch", 5), ("local_branch", 4)):
        expected |= {f"{br}.convs.{i}.{p}" for i in range(n_conv) for p in ("weight", "bias")}
        expected |= {f"{br}.fc.weight", f"{br}.fc.bias"}
    assert set(sd) == expected
    assert sd["global_branch.fc.weight"].shape == (1024, 2048)
    assert sd["local_branch.fc.weight"].shape == (1024, 2048)
    assert sd["head.weight"].shape == (1, 2048)
    assert set(Discriminator(local=False).state_dict()) == {
        k for k in expected if not k.startswith("local_branch")
    }
    assert Discriminator(local=False).head.weight.shape == (1, 1024)


# --- forward: shapes and ranges ------------------------------------------------------------
def test_default_networks_at_128():
    torch.manual_seed(0)
    image, mask = torch.rand(2, 3, 128, 128), hole_mask(2, 128, 40, 30, 48)
    out = Generator()(image, mask)
    assert out.shape == (2, 3, 128, 128)
    assert out.min() >= 0 and out.max() <= 1
    logits = Discriminator()(out, local_boxes(mask, box=64))
    assert logits.shape == (2,) and torch.isfinite(logits).all()
    assert Discriminator(local=False)(out).shape == (2,)


@pytest.mark.parametrize("kwargs,size,n_blocks,enc_out", [
    ({"depth": 5}, 64, 12, (64, 128, 256, 256, 256)),
    ({"width": 0.5}, 32, 10, (32, 64, 128, 128)),
    ({"depth": 5, "width": 0.5, "norm": "batch"}, 64, 12, (32, 64, 128, 128, 128)),
    ({"depth": 3, "conv": "plain", "norm": "batch"}, 16, 8, (64, 128, 256)),
])
def test_generator_variants(kwargs, size, n_blocks, enc_out):
    torch.manual_seed(0)
    g = Generator(**kwargs)
    assert len(g.layers) == n_blocks
    d = g.depth
    assert tuple(b.conv.out_channels for b in g.layers[:d]) == enc_out
    assert g.layers[d].conv.in_channels == enc_out[-1] + enc_out[-2]  # up(bottleneck) ++ skip
    assert g.layers[2 * d - 1].conv.in_channels == g.decoder_channels[-2] + 3  # ++ x0
    out = g(torch.rand(2, 3, size, size), hole_mask(2, size, 3, 5, size // 3))
    assert out.shape == (2, 3, size, size) and out.min() >= 0 and out.max() <= 1


def test_discriminator_small_and_local_patch_used():
    torch.manual_seed(0)
    d = Discriminator(image_size=64, patch_size=32)
    image = torch.rand(3, 3, 64, 64)
    boxes = torch.tensor([[0, 0], [16, 8], [32, 32]])
    logits = d(image, boxes)
    assert logits.shape == (3,)
    # the same computation spelled out: global features ++ local features of the crop
    feat = torch.cat([d.global_branch(image), d.local_branch(crop_boxes(image, boxes, 32))], 1)
    torch.testing.assert_close(logits, d.head(feat).squeeze(1))
    assert not torch.allclose(logits, d(image, torch.zeros(3, 2, dtype=torch.int64)))


@pytest.mark.parametrize("conv", ["partial", "plain"])
def test_gradients_reach_every_parameter(conv):
    torch.manual_seed(0)
    g = Generator(conv=conv, width=0.25)
    g(torch.rand(2, 3, 32, 32), hole_mask(2, 32, 4, 4, 10)).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())


# --- the hole and the fill -----------------------------------------------------------------
@pytest.mark.parametrize("conv", ["partial", "plain"])
def test_generator_ignores_pixels_under_the_hole(conv):
    torch.manual_seed(0)
    g = Generator(conv=conv, width=0.25)
    image, mask = torch.rand(2, 3, 32, 32), hole_mask(2, 32, 6, 9, 14)
    other = torch.where(mask.bool(), image, torch.rand_like(image) * 100 - 50)
    assert not torch.equal(image, other)
    assert torch.equal(g(image, mask), g(other, mask))


def test_fill_buffer_is_used_by_plain_not_by_partial():
    torch.manual_seed(0)
    image, mask = torch.rand(2, 3, 32, 32), hole_mask(2, 32, 6, 9, 14)
    plain, partial = Generator(conv="plain", width=0.25), Generator(conv="partial", width=0.25)
    before = plain(image, mask), partial(image, mask)
    plain.fill.fill_(0.1)
    partial.fill.fill_(0.1)
    assert not torch.allclose(plain(image, mask), before[0])
    # a partial convolution multiplies the filled values by the zero mask: fill cannot matter
    assert torch.equal(partial(image, mask), before[1])
    assert Generator(fill=(0.2, 0.3, 0.4)).fill.tolist() == pytest.approx([0.2, 0.3, 0.4])


# --- bad inputs ----------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    g = Generator(width=0.25)
    with pytest.raises(ValueError, match=r"multiples of 2\*\*depth = 16"):
        g(torch.rand(1, 3, 40, 32), torch.ones(1, 1, 40, 32))
    with pytest.raises(ValueError, match=r"image must be \(N, 3, H, W\)"):
        g(torch.rand(1, 4, 32, 32), torch.ones(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"mask must be \(N, 1, H, W\)"):
        g(torch.rand(1, 3, 32, 32), torch.ones(1, 3, 32, 32))
    with pytest.raises(ValueError, match="boxes"):
        Discriminator(image_size=64, patch_size=32)(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"image must be \(N, 3, 64, 64\)"):
        Discriminator(image_size=64, patch_size=32)(torch.rand(1, 3, 32, 32), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"must lie in \[0, 32\]"):
        d = Discriminator(image_size=64, patch_size=32)
        d(torch.rand(1, 3, 64, 64), torch.tensor([[40, 0]]))
    with pytest.raises(ValueError, match="multiple of 32"):
        Discriminator(image_size=100)
    for kwargs in ({"conv": "gated"}, {"norm": "instance"}, {"depth": 1}, {"width": 0}):
        with pytest.raises(ValueError):
            Generator(**kwargs)


# --- architecture tables -------------------------------------------------------------------
def test_table_matches_poster_table_1():
    g = Generator()
    rows = architecture_table(g)
    body, total = rows[:-1], rows[-1]
    assert [(r["K"], r["S"], r["F"], r["activation"]) for r in body] == TABLE_1
    assert all(r["layer"] == "PConv" for r in body)
    assert [r["output"] for r in body[:4]] == [
        (64, 64, 64), (128, 32, 32), (256, 16, 16), (256, 8, 8)
    ]
    assert body[-1]["output"] == (3, 128, 128)
    assert [r["in"] for r in body[4:8]] == ["256+256", "256+128", "256+64", "128+3"]
    assert total["layer"] == "Total" and total["params"] == n_params(g) == GENERATOR_PARAMS
    assert body[0]["flops"] == 2 * 3 * 5 * 5 * 64 * 64 * 64
    assert total["flops"] == sum(r["flops"] for r in body)


def test_table_matches_poster_table_2():
    d = Discriminator()
    rows = architecture_table(d)
    kinds = [r["layer"] for r in rows]
    assert kinds == ["Conv"] * 5 + ["FC"] + ["Conv"] * 4 + ["FC", "FC", "Total"]
    assert [(r["K"], r["S"], r["F"], r["activation"]) for r in rows[:5]] == [
        (5, 2, f, "ReLU") for f in (32, 64, 64, 128, 128)
    ]
    assert rows[4]["output"] == rows[9]["output"] == (128, 4, 4)
    assert rows[5]["flops"] == 2 * 2048 * 1024 and rows[5]["activation"] == "ReLU"
    assert rows[-1]["params"] == n_params(d) == DISCRIMINATOR_PARAMS


@pytest.mark.parametrize("module,size", [
    (Generator(conv="plain", depth=5, width=0.5, norm="batch"), 64),
    (Generator(width=0.25, depth=3), 32),
    (Discriminator(local=False, image_size=64, width=0.5), 64),
])
def test_table_totals_for_variants_and_no_side_effects(module, size):
    module.train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    rows = architecture_table(module, input_size=(1, 3, size, size))
    assert rows[-1]["params"] == n_params(module)
    assert module.training and all(m.training for m in module.modules())
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in before.items())
    if isinstance(module, Generator) and module.norm == "batch":
        assert rows[0]["params"] == 32 * 3 * 25 + 32 + 2 * 32  # conv + batch norm
        assert rows[-2]["layer"] == "Conv" and rows[-2]["params"] == 3 * 3 + 3


def test_format_table():
    rows = architecture_table(Generator(width=0.25), input_size=(1, 3, 32, 32))
    md = format_table(rows)
    lines = md.strip().splitlines()
    assert lines[0].startswith("| Block") and "FLOPs" in lines[0]
    assert len(lines) == 2 + len(rows) and "Total" in lines[-1]
    assert f"{rows[-1]['params']:,}" in lines[-1]
    text = format_table(rows, "text")
    assert "|" not in text and "Leaky ReLU" in text and "Sigmoid" in text
    with pytest.raises(ValueError, match="fmt"):
        format_table(rows, "html")


def test_the_generator_keeps_the_scale_it_is_built_for():
    from pconv_torch.config import build_models, generator_settings, load_config

    cfg = load_config("ci")
    g, _ = build_models(cfg)
    assert g.image_size == cfg.image_size
    assert {k: getattr(g, k) for k in generator_settings(cfg)} == generator_settings(cfg)
    assert Generator(width=0.125).image_size is None
    with pytest.raises(ValueError, match="image_size must be None or a positive int, got 0"):
        Generator(width=0.125, image_size=0)


def test_standardise_without_residual_is_refused_with_the_same_reason_everywhere():
    from pconv_torch.config import load_config

    with pytest.raises(ValueError, match=r"standardise=True needs residual=True \(it scales"):
        Generator(width=0.125, standardise=True)
    with pytest.raises(ValueError, match=r"standardise.*needs residual=True \(it scales.*"
                                         r"with residual=False set standardise=False too"):
        load_config("ci", residual=False, standardise=True)


def test_n_params_counts_every_parameter_element():
    from pconv_torch.summary import n_params

    assert n_params(torch.nn.Linear(3, 4)) == 3 * 4 + 4
    g = Generator(width=0.125)
    total = architecture_table(g, (1, 3, 32, 32))[-1]
    assert total["layer"] == "Total" and n_params(g) == total["params"]
