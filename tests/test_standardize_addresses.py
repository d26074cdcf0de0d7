"""Administrative divisions from division codes and address text: the vendored table, the rules, and a
simulated estate whose addresses must resolve to the enterprises' true districts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import estate_frame

from connectors.encoding import repair_gbk_in_latin1_series
from models.standardize import addresses as ad
from models.standardize.addresses import (
    division,
    division_changes,
    division_names,
    division_table,
    short_name,
)
from simulator import vocab
from simulator.estate import load_truth


def resolve(addresses: list[str | None], codes: list[str | None] | None = None, **kw) -> list[dict]:
    df = pl.DataFrame(
        {"a": addresses, "c": codes if codes is not None else [None] * len(addresses)},
        schema={"a": pl.Utf8, "c": pl.Utf8},
    )
    return df.select(d=division("a", None if codes is None else "c", **kw))["d"].to_list()


def code_of(address: str, **kw) -> str | None:
    return resolve([address], **kw)[0]["code"]


# ------------------------------------------------------------------------------------------------------------
# the vendored table
# ------------------------------------------------------------------------------------------------------------
def test_division_table_covers_the_country_and_guangdong():
    t = division_table()
    assert t["code"].is_unique().all() and t["code"].str.contains(r"^\d{6}$").all()
    levels = t["level"].value_counts().sort("level")["count"].to_list()
    assert levels == [33, 333, 2845]
    assert set(t.filter(pl.col("level") == 1)["name"]) >= {
        "广东省",
        "北京市",
        "新疆维吾尔自治区",
        "香港特别行政区",
    }
    gd = t.filter(pl.col("code").str.starts_with("44"))
    assert gd.filter(pl.col("level") == 2).height == 21
    assert gd.filter(pl.col("level") == 3).height == 122
    assert set(gd.filter(pl.col("level") == 3)["parent_code"]) <= set(gd.filter(pl.col("level") == 2)["code"])
    sz = dict(t.filter(pl.col("parent_code") == "440300").select("code", "name").iter_rows())
    assert sz == dict(vocab.DISTRICTS)
    # every county's parent is a prefecture or (municipalities, province-administered counties) a province
    assert t.filter(pl.col("level") > 1)["parent_code"].is_in(t["code"].implode()).all()
    assert (
        t.filter((pl.col("level") == 3) & pl.col("city_code").is_null())["parent_code"]
        .str.ends_with("0000")
        .all()
    )


def test_division_changes_are_consistent_with_the_table():
    ch = division_changes()
    current = set(division_table()["code"])
    assert not set(ch["retired_code"]) & current
    assert set(ch["successor_code"]) <= current
    assert (ch["retired_code"].str.slice(0, 4) == ch["successor_code"].str.slice(0, 4)).all()
    pairs = dict(ch.select("retired_code", "successor_code").iter_rows())
    assert {code: pairs[code] for code, _ in vocab.RETIRED_DISTRICTS} == {
        "440320": "440311",
        "440321": "440310",
    }


@pytest.mark.parametrize(
    ("name", "level", "short"),
    [
        ("广东省", 1, "广东"),
        ("新疆维吾尔自治区", 1, "新疆"),
        ("广西壮族自治区", 1, "广西"),
        ("北京市", 1, "北京"),
        ("香港特别行政区", 1, "香港"),
        ("深圳市", 2, "深圳"),
        ("延边朝鲜族自治州", 2, "延边"),
        ("黔东南苗族侗族自治州", 2, "黔东南"),
        ("伊犁哈萨克自治州", 2, "伊犁"),
        ("阿里地区", 2, "阿里"),
        ("锡林郭勒盟", 2, "锡林郭勒"),
        ("南山区", 3, "南山"),
        ("乳源瑶族自治县", 3, "乳源"),
        ("连山壮族瑶族自治县", 3, "连山"),
        ("鄂伦春自治旗", 3, "鄂伦春"),
        ("台山市", 3, "台山"),
        ("城区", 3, None),
        ("赵县", 3, None),
        ("光明新区", 3, "光明"),
    ],
)
def test_short_names(name, level, short):
    assert short_name(name, level) == short


def test_division_names_map_short_names_to_full_names():
    names = division_names()
    assert names["深圳"] == "深圳市" and names["南山"] == "南山区" and names["广东"] == "广东省"
    assert names["吉林"] == "吉林省"  # a province before a prefecture


# ------------------------------------------------------------------------------------------------------------
# from a code column
# ------------------------------------------------------------------------------------------------------------
def test_code_column_wins_when_valid():
    rows = resolve(
        ["深圳市福田区x", None, "", "深圳市福田区", "x"],
        ["440305", "440305", "４４０３０５", " 440305 ", "440305000000"],
    )
    assert {r["code"] for r in rows} == {"440305"}
    assert {r["source"] for r in rows} == {"code"}
    assert not any(r["retired"] for r in rows)


def test_retired_codes_map_to_their_successor():
    rows = resolve([None, None, "深圳市光明区x", None], ["440320", "440321", "440320", "440116"])
    assert [(r["code"], r["source"], r["retired"]) for r in rows] == [
        ("440311", "code", True),
        ("440310", "code", True),
        ("440311", "code", True),
        ("440112", "code", True),
    ]


def test_invalid_code_falls_back_to_text():
    rows = resolve(
        ["深圳市南山区x", "深圳市南山区x", "深圳市南山区x", "深圳市南山区x", "无"],
        ["999999", "4403", "abc", None, "440399"],
    )
    assert [(r["code"], r["source"]) for r in rows[:4]] == [("440305", "text")] * 4
    assert rows[4] == {"code": None, "source": None, "retired": False}


def test_a_prefecture_code_is_refined_by_the_text_inside_it():
    rows = resolve(["深圳市南山区x", "广州市天河区x", "深圳市x"], ["440300", "440300", "440300"])
    assert [(r["code"], r["source"]) for r in rows] == [
        ("440305", "text"),
        ("440300", "code"),
        ("440300", "code"),
    ]
    assert resolve(["深圳市南山区x"], ["440000"])[0]["code"] == "440305"


# ------------------------------------------------------------------------------------------------------------
# from the address text
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("深圳市南山区深南大道1号", "440305"),
        ("广东省深圳市南山区深南大道1号", "440305"),
        ("广东深圳南山科技园", "440305"),
        ("深圳南山区科技园", "440305"),
        ("深圳市南山科技园", "440305"),
        ("中国广东省深圳市福田区", "440304"),
        ("  深圳市　南山区 深南大道 ", "440305"),
        ("深圳市", "440300"),
        ("广东省", "440000"),
        ("广东", "440000"),
        ("北京市朝阳区建国路", "110105"),
        ("北京朝阳区", "110105"),
        ("辽宁省朝阳市双塔区", "211302"),
        ("吉林省吉林市船营区", "220204"),
        ("吉林市船营区", "220204"),
        ("福州市鼓楼区", "350102"),
        ("南京市鼓楼区", "320106"),
        ("东莞市长安镇", "441900"),
        ("广东省韶关市乳源瑶族自治县", "440232"),
        ("乳源瑶族自治县", "440232"),
        ("深圳市宝安大道100号", "440300"),
        ("深圳南山大道1号", "440300"),
        ("广州市天河区", "440106"),
        ("新疆乌鲁木齐市天山区", "650102"),
        ("延边朝鲜族自治州延吉市", "222401"),
    ],
)
def test_text(address, code):
    r = resolve([address])[0]
    assert (r["code"], r["source"], r["retired"]) == (code, "text", False)


@pytest.mark.parametrize(
    "address", ["南山区x", "鼓楼区x", "南山大道1号", "科技园", "无", "-", "", None, "NULL"]
)
def test_text_without_a_division(address):
    assert resolve([address])[0] == {"code": None, "source": None, "retired": False}


def test_ambiguous_county_resolved_by_the_default_city():
    assert code_of("南山区科技园", default_city="440300") == "440305"
    assert code_of("鼓楼区x", default_city="350100") == "350102"
    assert (
        code_of("天河区x", default_city="440300") == "440106"
    )  # unique nationwide: the default does not bind
    with pytest.raises(ValueError):
        division("a", default_city="123456")


def test_retired_names_in_text():
    rows = resolve(["深圳市光明新区光明大道1号", "深圳市坪山新区x", "广州市萝岗区x", "茂名市电白县x"])
    assert [(r["code"], r["retired"]) for r in rows] == [
        ("440311", True),
        ("440310", True),
        ("440112", True),
        ("440904", True),
    ]
    assert resolve(["深圳市光明区x"])[0]["retired"] is False


def test_every_guangdong_county_and_every_prefecture_resolves_from_text():
    t = division_table()
    counties = t.filter((pl.col("level") == 3) & pl.col("code").str.starts_with("44")).join(
        t.select(city_code="code", city="name"), on="city_code"
    )
    frame = counties.select(
        "code", a="广东省" + pl.col("city") + pl.col("name") + "人民路1号", b=pl.col("city") + pl.col("name")
    )
    got = frame.select("code", a=division("a").struct.field("code"), b=division("b").struct.field("code"))
    assert (got["a"] == got["code"]).all() and (got["b"] == got["code"]).all()
    prov = t.filter(pl.col("level") == 1).select(province_code="code", province="name")
    cities = (
        t.filter(pl.col("level") == 2)
        .join(prov, on="province_code")
        .select("code", a=pl.col("name") + "x", b=pl.col("province") + pl.col("name") + "x")
    )
    got = cities.select("code", a=division("a").struct.field("code"), b=division("b").struct.field("code"))
    assert (got["b"] == got["code"]).all()
    assert (got["a"] == got["code"]).mean() >= 0.99  # 吉林市 ... names shared with a province's short name


def test_composable_lazy_and_repeated_values():
    df = pl.DataFrame(
        {"ZS": ["深圳市南山区x", "深圳市福田区y"] * 1000, "XZQHDM": ["440305", "440320"] * 1000}
    )
    out = (
        df.lazy()
        .select(division("ZS", "XZQHDM").alias("d"), division(pl.col("ZS")).alias("t"), pl.len())
        .collect()
    )
    assert out.schema["d"] == ad.OUTPUT
    assert out["d"].struct.field("code").head(2).to_list() == ["440305", "440311"]
    unique_path = ad._division_unique([df["ZS"], df["XZQHDM"]], None)
    assert out["d"].struct.unnest().equals(unique_path.struct.unnest())


# ------------------------------------------------------------------------------------------------------------
# a simulated estate: addresses resolve to the enterprises' true districts
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def estate(simulated_estate) -> Path:
    return simulated_estate(enterprises=6000, seed=11)


def _with_truth(out: Path, frame: pl.DataFrame, table: str) -> pl.DataFrame:
    truth = (
        load_truth(out)
        .filter(
            (pl.col("table") == table)
            & (pl.col("role") == "subject")
            & (pl.col("entity_type") == "enterprise")
        )
        .select("pk", "entity_id")
        .collect()
    )
    ents = pl.read_parquet(out / "truth" / "enterprises" / "*.parquet").select(
        "entity_id", "division", "authority"
    )
    return frame.join(truth, on="pk").join(ents, on="entity_id")


def test_estate_registrations_resolve_to_the_true_district(estate):
    reg = _with_truth(
        estate,
        estate_frame(estate, "samr", "SELECT ZTID, ZS, XZQHDM FROM T_SCZT_DJXX", ["pk", "ZS", "XZQHDM"]),
        "T_SCZT_DJXX",
    )
    got = reg.with_columns(both=division("ZS", "XZQHDM"), text=division("ZS"))
    both_ok = (got["both"].struct.field("code") == got["division"]).mean()
    text_ok = (got["text"].struct.field("code") == got["division"]).mean()
    print(f"\nT_SCZT_DJXX -> true district: code+text {both_ok:.4%}, text only {text_ok:.4%} of {reg.height}")
    assert both_ok >= 0.99 and text_ok >= 0.99
    retired = got.filter(pl.col("XZQHDM").is_in(["440320", "440321"]))
    assert retired.height > 0
    assert retired["both"].struct.field("retired").all()
    assert (retired["both"].struct.field("source") == "code").all()


def test_estate_tax_and_social_addresses_resolve_to_the_true_district(estate):
    tax = _with_truth(
        estate, estate_frame(estate, "tax", "SELECT DJXH, SCJYDZ FROM DJ_NSRXX", ["pk", "a"]), "DJ_NSRXX"
    )
    social = estate_frame(estate, "social", "SELECT DWBH || '|' || JFYF, DZ FROM SB_DWCBXX", ["pk", "a"])
    social = _with_truth(estate, social.with_columns(a=repair_gbk_in_latin1_series(social["a"])), "SB_DWCBXX")
    for name, frame in [("DJ_NSRXX", tax), ("SB_DWCBXX", social)]:
        got = frame.with_columns(d=division("a"))
        markers = got.filter(pl.col("a").is_null() | pl.col("a").is_in(vocab.NULL_MARKERS))
        assert markers["d"].struct.field("code").is_null().all()
        real = got.filter(~(pl.col("a").is_null() | pl.col("a").is_in(vocab.NULL_MARKERS)))
        share = (real["d"].struct.field("code") == real["division"]).mean()
        print(f"\n{name} -> true district: {share:.4%} of {real.height}")
        assert real.height > 1000 and share >= 0.99


def test_single_pass_chain_agrees_with_the_level_by_level_parse():
    """division() finds the chain with one pattern and parses each distinct chain once; the result must be
    the level-by-level parse of the whole address, in every spelling."""
    t = division_table()
    counties = (
        t.filter(pl.col("level") == 3)
        .join(t.select(city_code="code", city="name", city_short="short_name"), on="city_code", how="left")
        .join(t.select(province_code="code", prov="name", prov_short="short_name"), on="province_code")
    )
    counties = pl.concat(
        [
            counties.filter(pl.col("code").str.starts_with("44")),
            counties.filter(~pl.col("code").str.starts_with("44")).sample(400, seed=1),
        ]
    )
    parts = {
        "prov": ["prov", "prov_short", None],
        "city": ["city", "city_short", None],
        "county": ["name", "short_name", None],
    }
    roads = ["深南大道1号", "人民路2号", "科技园3栋", "南路5号", "大道6号", "中心区", ""]
    frames = []
    for pc in parts["prov"]:
        for cc in parts["city"]:
            for dc in parts["county"]:
                cols = [pl.col(x).fill_null("") for x in (pc, cc, dc) if x is not None]
                frames.append(
                    counties.select(a=pl.concat_str([*cols, pl.lit(roads[len(frames) % len(roads)])]))
                )
    addresses = pl.concat(frames)["a"].unique()
    for default_city in (None, "440300"):
        direct = ad._parse_chain(addresses, default_city).rename({"key": "a"})
        via = pl.DataFrame({"a": addresses}).with_columns(d=division("a", default_city=default_city))
        both = via.join(direct, on="a").with_columns(
            code=pl.col("d").struct.field("code"), retired=pl.col("d").struct.field("retired")
        )
        bad = both.filter(
            (pl.col("code") != pl.col("t_code")).fill_null(
                pl.col("code").is_null() != pl.col("t_code").is_null()
            )
            | (pl.col("retired") != pl.col("t_retired"))
        )
        assert both.height == addresses.len() and bad.height == 0, bad.head(5).to_dicts()
