import pytest

from pyspb.backends import memory


@pytest.mark.parametrize("sizes", [("48K", "32768K", "1024K", "garbage"), ("garbage", "1M", "48K", "32M")])
def test_last_level_cache_is_the_largest_cache_listed(tmp_path, sizes):
    """The sizes as Linux lists them (``48K``, ``1024K``, ``32768K`` or with ``M``), the largest
    anywhere in the listing; an entry whose size does not parse and one without a size file are
    skipped."""
    for index, size in enumerate(sizes):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size + "\n")
    (tmp_path / "index9").mkdir()
    assert memory.last_level_cache(str(tmp_path)) == 32 * 2**20


def test_last_level_cache_has_a_default_where_the_system_does_not_tell(tmp_path):
    assert memory.last_level_cache(str(tmp_path / "absent")) == memory.DEFAULT_LAST_LEVEL_CACHE
    assert memory.last_level_cache(str(tmp_path)) == memory.DEFAULT_LAST_LEVEL_CACHE
