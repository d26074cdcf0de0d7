"""GBK/GB18030 bytes stored in latin1 columns: the scalar and the vectorized repair."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.encoding import (
    decode_gb18030,
    repair_gbk_in_latin1,
    repair_gbk_in_latin1_arrow,
    repair_gbk_in_latin1_series,
    try_repair_gbk_in_latin1,
)
from simulator.writers import LEGACY_TEXT_ENCODING, mojibake

NAMES = [
    "深圳市南山区科技有限公司",
    "𠮷野家（深圳）餐饮店",
    "王䶮",
    "腾讯科技（深圳）有限公司",
    "發展貿易",
    "ABC 123",
]


def _moji(text: str) -> str:
    """What the simulator stores on SQLite/PostgreSQL (simulator.writers.mojibake, one value)."""
    return mojibake(pl.Series("x", [text]))[0]


def test_scalar_repair_undoes_the_simulator_mojibake():
    for name in NAMES:
        stored = _moji(name)
        if not name.isascii():
            assert stored != name and all(ord(c) < 256 for c in stored)
        assert repair_gbk_in_latin1(stored) == name
        assert try_repair_gbk_in_latin1(stored) == name


def test_rare_characters_outside_gbk_survive():
    # 𠮷 (U+20BB7) and 䶮 (U+4DAE) are not in GBK, only in GB18030 (4 and 2 bytes)
    for ch in "𠮷䶮":
        with pytest.raises(UnicodeEncodeError):
            ch.encode("gbk")
    raw = "𠮷䶮".encode(LEGACY_TEXT_ENCODING)
    assert len(raw) == 6
    assert decode_gb18030(raw) == "𠮷䶮"
    assert repair_gbk_in_latin1(raw.decode("latin1")) == "𠮷䶮"


def test_cp1252_decoding_is_repaired_too():
    # a client that read the latin1 column as Windows-1252 (MySQL's "latin1") shows € for byte 0x80
    def cp1252_ok(raw: bytes) -> bool:
        try:
            raw.decode("cp1252")
        except UnicodeDecodeError:
            return False
        return True

    text = next(
        c
        for c in (chr(i) for i in range(0x4E00, 0x9FA5))
        if b"\x80" in c.encode("gbk") and cp1252_ok(c.encode("gbk"))
    )
    raw = text.encode("gbk")
    as_cp1252 = raw.decode("cp1252")
    assert "€" in as_cp1252
    assert repair_gbk_in_latin1(as_cp1252) == text


@pytest.mark.parametrize("value", ["café", "naïve ÿ", "深圳市"])
def test_values_that_are_not_mojibake_are_kept(value):
    # 'café' is latin1 text whose bytes are not GB18030; '深圳市' is already proper Unicode
    assert try_repair_gbk_in_latin1(value) is None
    assert repair_gbk_in_latin1(value) == value


def test_ascii_is_unchanged():
    assert repair_gbk_in_latin1("ZT000123 Ltd.") == "ZT000123 Ltd."


def test_arrow_repair_of_mojibake_strings():
    values = [_moji("深圳市𠮷䶮"), None, "plain ascii", "café", _moji("人社局"), ""]
    repaired, bad = repair_gbk_in_latin1_arrow(pa.array(values, pa.string()))
    assert repaired.type == pa.large_string()
    assert repaired.to_pylist() == ["深圳市𠮷䶮", None, "plain ascii", "café", "人社局", ""]
    assert bad.to_pylist() == [False, False, False, True, False, False]


def test_arrow_repair_of_raw_bytes():
    values = ["深圳市𠮷䶮".encode(LEGACY_TEXT_ENCODING), None, b"ascii", b"\xff\xfe", "王".encode("gbk")]
    repaired, bad = repair_gbk_in_latin1_arrow(pa.array(values, pa.binary()))
    # invalid bytes are kept as their latin1 reading (what a latin1 client shows) and reported
    assert repaired.to_pylist() == ["深圳市𠮷䶮", None, "ascii", "\xff\xfe", "王"]
    assert bad.to_pylist() == [False, False, False, True, False]


def test_arrow_repair_with_nul_characters_takes_the_slow_path():
    values = [_moji("深圳") + "\x00" + _moji("市"), _moji("南山")]
    repaired, bad = repair_gbk_in_latin1_arrow(pa.array(values))
    assert repaired.to_pylist() == ["深圳\x00市", "南山"]
    assert not any(bad.to_pylist())


def test_arrow_repair_of_a_null_array_and_chunks():
    repaired, bad = repair_gbk_in_latin1_arrow(pa.nulls(3))
    assert repaired.to_pylist() == [None, None, None] and bad.to_pylist() == [False] * 3
    chunked = pa.chunked_array([[_moji("深")], [_moji("圳")]])
    repaired, _ = repair_gbk_in_latin1_arrow(chunked)
    assert repaired.to_pylist() == ["深", "圳"]
    with pytest.raises(TypeError):
        repair_gbk_in_latin1_arrow(pa.array([1, 2]))


def test_polars_series():
    s = mojibake(pl.Series("XM", [*NAMES, None]))
    out = repair_gbk_in_latin1_series(s)
    assert out.name == "XM" and out.dtype == pl.Utf8
    assert out.to_list() == [*NAMES, None]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)), max_size=20
    )
)
def test_round_trip_property(values):
    """Any text the legacy application wrote (GB18030 covers all of Unicode) is restored exactly."""
    stored = [None if v is None else v.encode(LEGACY_TEXT_ENCODING).decode("latin1") for v in values]
    repaired, bad = repair_gbk_in_latin1_arrow(pa.array(stored, pa.string()))
    assert repaired.to_pylist() == values
    assert not any(bad.to_pylist())
    raw = [None if v is None else v.encode(LEGACY_TEXT_ENCODING) for v in values]
    repaired, bad = repair_gbk_in_latin1_arrow(pa.array(raw, pa.binary()))
    assert repaired.to_pylist() == values
    assert not any(bad.to_pylist())
