from pyspb.backends import memory


def test_last_level_cache_is_the_largest_cache_listed(tmp_path):
    """The sizes as Linux lists them (``32K``, ``1024K``, ``32768K``; an entry without a size
    and one unreadable are skipped)."""
    for index, size in enumerate(("48K", "32K", "1024K", "32768K", "garbage")):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size + "\n")
    (tmp_path / "index9").mkdir()
    assert memory.last_level_cache(str(tmp_path)) == 32 * 2**20


def test_last_level_cache_has_a_default_where_the_system_does_not_tell(tmp_path):
    assert memory.last_level_cache(str(tmp_path / "absent")) == memory.DEFAULT_LAST_LEVEL_CACHE
    assert memory.last_level_cache(str(tmp_path)) == memory.DEFAULT_LAST_LEVEL_CACHE
