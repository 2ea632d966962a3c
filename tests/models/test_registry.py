"""The architecture registry: every upstream name, with the facts its release weights need."""
import pytest

from models.registry import ALIASES, ARCHITECTURES, get_arch

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
    urls = [arch.url for arch in ARCHITECTURES.values() if arch.url]
    assert len({url.rsplit("/", 1)[1] for url in urls}) == len(urls)
