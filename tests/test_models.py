"""The paper's networks (Table 1, 2): counts, dense form, torchvision round trip, init."""

import copy

import pytest
import torch
import torchvision
from torch import nn

from vgg_repro import models
from vgg_repro.errors import ConfigError

# Table 2 of the paper (exact counts) and torchvision's GMACs at 224, from
# shared/paper-facts.md. The code under test counts them; these are the targets.
PARAMS = {
    "A": 132_863_336,
    "A-LRN": 132_863_336,
    "B": 133_047_848,
    "C": 133_638_952,
    "D": 138_357_544,
    "E": 143_667_240,
}
GMACS = {"A": 7.61, "A-LRN": 7.61, "B": 11.31, "C": 11.77, "D": 15.47, "E": 19.63}


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_count_matches_table_2(name):
    assert models.count_parameters(models.build_meta(name)) == PARAMS[name]


@pytest.mark.parametrize("name", list(GMACS))
def test_macs_at_224_match_the_paper(name):
    macs = models.count_macs(models.build_meta(name), 224)
    assert round(macs / 1e9, 2) == GMACS[name]


def test_weight_layer_counts_match_table_1():
    assert {n: models.num_weight_layers(n) for n in models.CFGS} == {
        "A": 11,
        "A-LRN": 11,
        "B": 13,
        "C": 16,
        "D": 16,
        "E": 19,
    }


def test_aliases_build_the_same_configuration():
    for alias, letter in models.ALIASES.items():
        assert models.build_meta(alias).name == letter
    assert models.canonical_name("vgg16") == "D"


def test_lrn_only_in_a_lrn_after_first_conv_with_alexnet_parameters():
    a_lrn = models.build_meta("A-LRN")
    lrn = [m for m in a_lrn.features if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrn) == 1
    assert (lrn[0].size, lrn[0].alpha, lrn[0].beta, lrn[0].k) == (5, 1e-4, 0.75, 2.0)
    # conv -> ReLU -> LRN -> maxpool: normalisation of the first layer's responses.
    assert isinstance(a_lrn.features[0], nn.Conv2d) and a_lrn.features[2] is lrn[0]
    for name in ("A", "B", "C", "D", "E"):
        net = models.build_meta(name)
        assert not any(isinstance(m, nn.LocalResponseNorm) for m in net.modules())


def test_config_c_has_three_1x1_convolutions():
    kernels = [m.kernel_size for m in models.build_meta("C").features if isinstance(m, nn.Conv2d)]
    assert kernels.count((1, 1)) == 3 and kernels.count((3, 3)) == 10


def test_width_scales_every_channel_and_fc():
    net = models.build_meta("A", width=0.25, num_classes=10)
    convs = [m.out_channels for m in net.features if isinstance(m, nn.Conv2d)]
    assert convs == [16, 32, 64, 64, 128, 128, 128, 128]
    assert net.classifier[0].out_features == 1024 and net.classifier[6].out_features == 10


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "F"}, "valid names are: A, A-LRN, B, C, D, E"),
        ({"name": "A", "width": 0}, "width must be a positive number"),
        ({"name": "A", "width": -1.0}, "width must be a positive number"),
        ({"name": "A", "crop_size": 100}, "crop_size must be a positive multiple of 32"),
        ({"name": "A", "num_classes": 0}, "num_classes must be a positive integer"),
        ({"name": "A", "init": "he"}, "unknown init scheme 'he'"),
    ],
)
def test_bad_settings_give_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        models.build(**kwargs)


def _narrow(name, **kwargs):
    torch.manual_seed(0)
    net = models.build(name, num_classes=10, width=0.125, init="xavier", **kwargs)
    return net.double().eval()


@pytest.mark.parametrize("name", list(models.CFGS))
def test_dense_form_equals_classifier_at_crop_size(name):
    net = _narrow(name)
    x = torch.randn(2, 3, 224, 224, dtype=torch.float64)
    scores = models.to_dense(net)(x)
    assert scores.shape == (2, 10, 1, 1)
    torch.testing.assert_close(scores.flatten(1), net(x), rtol=1e-9, atol=1e-9)


def test_dense_form_equals_classifier_at_width_one():
    torch.manual_seed(0)
    net = models.build("A", init="xavier").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(models.to_dense(net)(x).flatten(1), net(x))


def test_dense_score_map_is_classifier_on_every_7x7_window():
    net = _narrow("D")
    x = torch.randn(1, 3, 288, 352, dtype=torch.float64)
    dense = models.to_dense(net)
    scores = dense(x)
    fmap = net.features(x)  # 9 x 11
    assert scores.shape[-2:] == (288 // 32 - 6, 352 // 32 - 6) == (3, 5)
    for i in range(scores.shape[2]):
        for j in range(scores.shape[3]):
            window = fmap[:, :, i : i + 7, j : j + 7]
            torch.testing.assert_close(scores[:, :, i, j], net.forward_head(window))


@pytest.mark.parametrize("q", [224, 256, 384, 512])
def test_score_map_side_is_floor_q_over_32_minus_6(q):
    dense = models.to_dense(models.build_meta("E"))
    assert dense(torch.zeros(1, 3, q, q, device="meta")).shape[-1] == q // 32 - 6


def test_dense_form_keeps_mode_and_shares_the_conv_stack():
    net = models.build("A", width=0.125, num_classes=10).train()
    dense = models.to_dense(net)
    assert dense.training and dense.features is net.features
    assert not models.to_dense(net.eval()).training


def test_dense_form_refuses_images_smaller_than_the_crop():
    dense = models.to_dense(_narrow("A"))
    with pytest.raises(ValueError, match=r"at least 224x224 .* got 200x300"):
        dense(torch.zeros(1, 3, 200, 300, dtype=torch.float64))


@pytest.mark.parametrize(
    "name, tv_name", [("A", "vgg11"), ("B", "vgg13"), ("D", "vgg16"), ("E", "vgg19")]
)
def test_torchvision_round_trip_gives_identical_logits(name, tv_name):
    torch.manual_seed(0)
    tv = getattr(torchvision.models, tv_name)(weights=None).eval()
    ours = models.from_torchvision(tv.state_dict(), tv_name).eval()
    assert ours.name == name
    # Both networks pool adaptively to 7x7, so a small input exercises every layer cheaply.
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=0, atol=0)
    back = models.to_torchvision(ours)
    for key, value in tv.state_dict().items():
        assert torch.equal(back.state_dict()[key], value)


def test_from_torchvision_accepts_a_model_and_checks_the_architecture():
    tv13 = torchvision.models.vgg13(weights=None)
    assert models.from_torchvision(tv13, "B").name == "B"
    with pytest.raises(ConfigError, match=r"does not fit configuration D.*missing"):
        models.from_torchvision(tv13.state_dict(), "vgg16")
    with pytest.raises(ConfigError, match="torchvision has no counterpart of configuration C"):
        models.from_torchvision(tv13.state_dict(), "C")


def test_to_torchvision_refuses_a_narrow_net():
    with pytest.raises(ConfigError, match="only width-1.0 networks"):
        models.to_torchvision(models.build("A", width=0.5))


def test_paper_init_is_normal_std_001_with_zero_biases():
    torch.manual_seed(0)
    net = models.build("A", width=0.25, num_classes=10)
    weights = net.features[6].weight  # a 64 -> 64 3x3 conv: 36,864 samples
    assert abs(weights.mean().item()) < 5e-4
    assert weights.std().item() == pytest.approx(0.01, rel=0.03)
    assert all(torch.count_nonzero(m.bias) == 0 for m in net.modules() if hasattr(m, "bias"))


def test_xavier_init_respects_glorot_bound():
    net = models.build("A", width=0.25, num_classes=10, init="xavier")
    w = net.classifier[0].weight
    bound = (6 / (w.shape[0] + w.shape[1])) ** 0.5
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.9 * bound


# The layers A's first four convolutions land in: (stage, index within stage).
A_CONVS = ["features.0", "features.3", "features.6", "features.8"]


@pytest.mark.parametrize("name", ["B", "C", "D", "E"])
def test_init_from_a_copies_exactly_four_convs_and_three_fcs(name):
    torch.manual_seed(0)
    net_a = models.build("A", width=0.125, num_classes=10, init="xavier")
    deep = models.build(name, width=0.125, num_classes=10, init="xavier")
    before = copy.deepcopy(deep.state_dict())
    pairs = models.init_from_a(deep, net_a)
    assert [src for src, _ in pairs] == A_CONVS + ["classifier.0", "classifier.3", "classifier.6"]
    # B to E all open with conv conv pool conv conv pool (features 0-9): stage 1's first
    # conv is features.0, stage 2's features.5, stage 3's first two features.10 and .12.
    expected = ["features.0", "features.5", "features.10", "features.12"]
    assert [dst for _, dst in pairs[:4]] == expected
    a_state, copied = net_a.state_dict(), set()
    for src, dst in pairs:
        for suffix in ("weight", "bias"):
            assert torch.equal(deep.state_dict()[f"{dst}.{suffix}"], a_state[f"{src}.{suffix}"])
            copied.add(f"{dst}.{suffix}")
    for key, value in deep.state_dict().items():
        if key not in copied:
            assert torch.equal(value, before[key]), f"{key} should keep its random init"


def test_init_from_a_shape_mismatch_names_both_layers():
    net_a = models.build("A", width=0.25, num_classes=10)
    deep = models.build("D", width=0.125, num_classes=10)
    with pytest.raises(
        ConfigError, match=r"net A's layer features\.0\.weight .* D's layer features\.0"
    ):
        models.init_from_a(deep, net_a)
    with pytest.raises(ConfigError, match="needs a net A"):
        models.init_from_a(deep, models.build("B", width=0.125, num_classes=10))


def test_wrong_state_dict_is_refused_with_what_differs():
    net = models.build("A", width=0.125, num_classes=10)
    state = models.build("A", width=0.125, num_classes=5).state_dict()
    with pytest.raises(ConfigError, match=r"classifier\.6\.weight: \(5, 512\) in weights"):
        models.load_state_dict_checked(net, state, "weights")


def test_mac_count_refuses_images_smaller_than_five_pools():
    with pytest.raises(ConfigError, match="image_size must be at least 32"):
        models.count_macs(models.build_meta("A"), 16)
