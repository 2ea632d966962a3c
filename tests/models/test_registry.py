"""The architecture registry: every upstream name, with the facts its release weights need."""
import contextlib
import io
import warnings

import pytest
import torch

from models.passt import get_model
from models.registry import ALIASES, ARCHITECTURES, get_arch
from models.weights import hub_cache_path

UPSTREAM_NAMES = [
    "passt_deit_bd_p16_384", "passt_s_swa_p16_128_ap476", "passt_s_swa_p16_128_ap4761", "passt_s_p16_128_ap472",
    "passt_s_kd_p16_128_ap486", "passt_l_kd_p16_128_ap47", "passt_s_swa_p16_s12_128_ap473",
    "passt_s_p16_s12_128_ap470", "passt_s_swa_p16_s14_128_ap471", "passt_s_p16_s14_128_ap469",
    "passt_s_swa_p16_s16_128_ap473", "passt_s_p16_s16_128_ap468", "passt_s_f128_20sec_p16_s10_ap474",
    "passt_s_f128_30sec_p16_s10_ap473", "passt_s_swa_f128_stfthop100_p16_s10_ap473",
    "passt_s_swa_f128_stfthop160_p16_s10_ap473", "openmic2008_passt_u_f128_p16_s10_ap85_swa",
    "openmic2008_passt_u_f128_p16_s10_ap85",
]


@pytest.mark.parametrize("name", UPSTREAM_NAMES)
def test_every_upstream_release_is_registered_with_a_url(name):
    arch = get_arch(name)
    assert arch.url and arch.url.startswith("https://") and arch.url.endswith((".pt", ".pth"))
    assert arch.weights in ("audioset", "imagenet")


def test_strides_input_sizes_and_depths_follow_the_names():
    assert get_arch("passt_s_swa_p16_s12_128_ap473").stride == (12, 12)
    assert get_arch("passt_s_p16_s14_128_ap469").stride == (14, 14)
    assert get_arch("passt_s_swa_p16_s16_128_ap473").stride == (16, 16)
    assert get_arch("passt_l_kd_p16_128_ap47").depth == 7
    assert get_arch("passt_s_f128_20sec_p16_s10_ap474").input_size == (128, 2000)
    assert get_arch("passt_s_f128_30sec_p16_s10_ap473").input_size == (128, 3000)
    assert get_arch("passt_s_swa_f128_stfthop100_p16_s10_ap473").mel_hopsize == 100
    assert get_arch("openmic2008_passt_u_f128_p16_s10_ap85_swa").n_classes == 20


def test_small_cpu_archs_have_no_weights():
    tiny, mini = get_arch("passt_tiny"), get_arch("passt_mini")
    assert (tiny.embed_dim, tiny.depth, tiny.num_heads, tiny.url) == (96, 4, 3, None)
    assert (mini.embed_dim, mini.depth, mini.num_heads, mini.url) == (192, 6, 3, None)


def test_aliases_point_at_registered_archs():
    for alias, target in ALIASES.items():
        assert get_arch(alias) is ARCHITECTURES[target]


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown PaSST architecture 'passt_xl'.*passt_s_swa_p16_128_ap476"):
        get_arch("passt_xl")


def test_release_file_names_are_unique():
    """One file per clip model; a frame-level model starts from the release file of a clip model."""
    urls = [arch.url for arch in ARCHITECTURES.values() if arch.url and not arch.frame_head]
    assert len({url.rsplit("/", 1)[1] for url in urls}) == len(urls)
    assert all(arch.url in urls for arch in ARCHITECTURES.values() if arch.frame_head and arch.url)


@contextlib.contextmanager
def quiet():
    """hear21passt prints its network and warns while it builds one."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


with quiet():
    from hear21passt.models import passt as hear21passt  # PyPI 0.0.26, installed from requirements-nodeps.txt

HEAR21PASST_RELEASES = {name: cfg["url"] for name, cfg in hear21passt.default_cfgs.items()
                        if "kkoutini/PaSST/releases" in cfg["url"]}
# hear21passt's get_model(arch=…) names and the weights (default_cfgs entry) each one loads.
HEAR21PASST_GET_MODEL = {
    "passt_s_swa_p16_128_ap476": "passt_s_swa_p16_128_ap476", "passt_s_kd_p16_128_ap486": "passt_s_kd_p16_128_ap486",
    "passt_l_kd_p16_128_ap47": "passt_l_kd_p16_128_ap47", "passt_s_p16_s16_128_ap468": "passt_s_p16_s16_128_ap468",
    "openmic": "openmic_passt_s_f128_10sec_p16_s10_ap85", "fsd50k": "fsd50k_passt_s_f128_p16_s10_ap655",
    "fsd50k-n": "fsd50k_passt_s_n_f128_p16_s16_ap642", "stfthop100": "passt_s_swa_f128_stfthop100_p16_s10_ap473",
    "stfthop160": "passt_s_swa_f128_stfthop160_p16_s10_ap473", "passt_20sec": "passt-s-f128-20sec-p16-s10-ap474-swa",
    "passt_30sec": "passt-s-f128-30sec-p16-s10-ap473-swa",
    "passt_b_f128_p16_s16_ap_459": "passt_b_f128_p16_s16_ap_459",
    "passt_u600_f128_p16_s16_ap_460": "passt_u600_f128_p16_s16_ap_460",
}


def test_every_hear21passt_release_is_registered_under_its_name_with_the_same_file():
    assert len(HEAR21PASST_RELEASES) == 13
    for name, url in HEAR21PASST_RELEASES.items():
        assert get_arch(name).url == url, name


@pytest.mark.parametrize("name", sorted(HEAR21PASST_GET_MODEL))
def test_every_hear21passt_get_model_name_loads_the_same_file_as_there(name):
    assert get_arch(name).url == HEAR21PASST_RELEASES[HEAR21PASST_GET_MODEL[name]]


def test_new_release_models_have_the_shapes_their_names_give():
    assert get_arch("passt_b_f128_p16_s16_ap_459").stride == (16, 16)
    assert get_arch("passt_u600_f128_p16_s16_ap_460").stride == (16, 16)
    openmic = get_arch("openmic")
    assert (openmic.name, openmic.n_classes, openmic.stride, openmic.input_size) == (
        "openmic_passt_s_f128_10sec_p16_s10_ap85", 20, (10, 10), (128, 998))
    assert get_arch("openmic2008").url.endswith("/openmic2008.passt-u-f128-p16-s10-ap.85-swa.pt")


@pytest.mark.parametrize("name, their_options", [
    ("passt_b_f128_p16_s16_ap_459", dict(fstride=16, tstride=16)),
    ("openmic", dict(n_classes=20)),
])
def test_hear21passt_and_get_model_load_the_same_planted_file_into_the_same_network(hub_dir, name, their_options):
    spec = get_arch(name)
    planted = get_model(name, pretrained=False, n_classes=spec.n_classes).state_dict()
    torch.save(planted, hub_cache_path(spec.url))
    ours = get_model(name, n_classes=spec.n_classes).state_dict()
    with quiet():
        theirs = hear21passt.get_model(arch=name, **their_options).state_dict()
    assert ours.keys() == theirs.keys() == planted.keys()
    for key, value in planted.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0)
        torch.testing.assert_close(theirs[key], value, rtol=0, atol=0)
