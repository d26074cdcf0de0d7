"""Enterprise and person names: each rule on the examples of docs/domain/legacy-estate.md, every variant the simulator
produces, and a simulated estate against its truth. The speed on 1M realistic names is a benchmark:
``bench/bench_standardize.py`` prints it.

Run as a script for how far the comparison forms collapse on a 30,000-enterprise estate::

    .venv/bin/python tests/test_standardize_names.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import estate_frame

from connectors.encoding import repair_gbk_in_latin1_series
from models.standardize import names as nm
from models.standardize.names import ENTERPRISE_NAME, PERSON_NAME, enterprise_name, person_name
from simulator import mess, vocab
from simulator.estate import load_truth, simulate


def en(*values: str | None) -> list[dict]:
    return (
        pl.DataFrame({"n": list(values)}, schema={"n": pl.Utf8}).select(enterprise_name("n"))["n"].to_list()
    )


def one(value: str | None) -> dict:
    return en(value)[0]


def cmp(*values: str) -> set[str]:
    return {r["comparison"] for r in en(*values)}


# ------------------------------------------------------------------------------------------------------------
# the rules, one by one
# ------------------------------------------------------------------------------------------------------------
def test_result_shape_and_composition_in_one_select():
    df = pl.DataFrame({"QYMC": ["深圳市华腾科技有限公司"], "FDDBR": ["张 三"], "n": [1]})
    out = (
        df.lazy()
        .select(enterprise_name("QYMC"), person_name(pl.col("FDDBR")).alias("rep"), pl.col("n") + 1)
        .collect()
    )
    assert out.schema == {"QYMC": ENTERPRISE_NAME, "rep": PERSON_NAME, "n": pl.Int64}
    assert out["QYMC"].struct.field("comparison").to_list() == ["华腾科技"]
    assert out["rep"].struct.field("normalized").to_list() == ["张三"]


def test_original_kept_and_nulls():
    rows = en("  深圳市华腾科技有限公司 ", None, "", "   ")
    assert rows[0]["original"] == "  深圳市华腾科技有限公司 "
    assert rows[0]["normalized"] == "深圳市华腾科技有限公司"
    for r in rows[1:]:
        assert r["normalized"] is None and r["comparison"] is None and r["is_branch"] is False


def test_fullwidth_ascii_to_halfwidth_but_chinese_brackets():
    r = one("ＡＢＣ科技(深圳)有限公司")
    assert r["normalized"] == "ABC科技（深圳）有限公司"
    assert r["comparison"] == "ABC科技"
    assert one("abc科技（深圳）有限公司")["comparison"] == "ABC科技"
    assert one("深圳市华腾科技有限公司（已注销)")["status_suffix"] == "已注销"


def test_spaces_trimmed_and_collapsed():
    r = one("  深圳市华腾   科技有限公司\t ")
    assert r["normalized"] == "深圳市华腾 科技有限公司"
    assert r["comparison"] == "华腾科技"
    assert cmp("深圳市华腾科技有限公司  ", "深圳市华腾科技有限公司", "深圳市华腾科技有限公司\u3000") == {
        "华腾科技"
    }


def test_traditional_to_simplified():
    r = one("深圳市華騰發展貿易有限責任公司")
    assert r["normalized"] == "深圳市华腾发展贸易有限责任公司"
    assert cmp("深圳市華騰發展貿易有限公司", "深圳市华腾发展贸易有限公司") == {"华腾发展贸易"}
    # characters that are their own simplified form, or kept for names by 通用规范汉字表, are left alone
    assert one("深圳市乾坤科技有限公司")["normalized"] == "深圳市乾坤科技有限公司"
    assert one("深圳市昇平科技有限公司")["normalized"] == "深圳市昇平科技有限公司"


def test_traditional_map_is_one_to_one_and_covers_the_simulator():
    t2s = nm.traditional_to_simplified_map()
    assert len(t2s) > 3900 and all(len(k) == 1 and len(v) == 1 for k, v in t2s.items())
    for simp, trad in vocab.TRADITIONAL.items():
        assert t2s[trad] == simp
    simplified_pool = set(
        "".join(vocab.BRAND_CHARS)
        + "".join(vocab.SURNAMES)
        + "".join(vocab.GIVEN_NAMES)
        + "".join(w for w, _, _ in vocab.INDUSTRIES)
        + "有限责任股份公司分深圳市"
    )
    assert not simplified_pool & set(t2s), "a simplified character of the pools would be changed"


@pytest.mark.parametrize(
    ("suffix", "status"),
    [
        ("（已注销）", "已注销"),
        ("（注销）", "注销"),
        ("（吊销）", "吊销"),
        ("（已吊销）", "已吊销"),
        ("（停业）", "停业"),
        ("(已注销)", "已注销"),
        ("（吊销，未注销）", "吊销未注销"),
        ("【已注销】", "已注销"),
        (" （歇业） ", "歇业"),
        ("（迁出）", "迁出"),
        ("（撤销）", "撤销"),
    ],
)
def test_status_suffix_removed_and_reported(suffix, status):
    r = one("深圳市华腾科技有限公司" + suffix)
    assert r["status_suffix"] == status
    assert r["normalized"] == "深圳市华腾科技有限公司"
    assert r["comparison"] == "华腾科技"


def test_brackets_that_are_not_a_status_stay():
    r = one("中国平安保险（集团）股份有限公司")
    assert r["status_suffix"] is None
    assert r["normalized"] == "中国平安保险（集团）股份有限公司"
    assert r["comparison"] == "中国平安保险集团"


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("深圳市华腾科技有限公司", "有限责任公司"),
        ("深圳市华腾科技有限责任公司", "有限责任公司"),
        ("深圳市华腾科技股份有限公司", "股份有限公司"),
        ("深圳市华腾科技股份公司", "股份有限公司"),
        ("深圳市华腾投资合伙企业（有限合伙）", "有限合伙企业"),
        ("深圳市华腾会计师事务所（特殊普通合伙）", "特殊普通合伙企业"),
        ("深圳市华腾贸易个人独资企业", "个人独资企业"),
        ("深圳市南山区华腾便利店（个体工商户）", "个体工商户"),
        ("深圳市华腾蔬菜农民专业合作社", "农民专业合作社"),
        ("深圳市南山区华腾便利店", None),
    ],
)
def test_legal_form_canonical(name, form):
    assert one(name)["legal_form"] == form


def test_legal_form_spellings_compare_equal():
    """有限公司 vs 有限责任公司 (legally the same), 股份公司 vs 股份有限公司 -- docs/domain/legacy-estate.md."""
    assert cmp("深圳市华腾科技有限公司", "深圳市华腾科技有限责任公司") == {"华腾科技"}
    assert cmp("深圳市华腾科技股份公司", "深圳市华腾科技股份有限公司") == {"华腾科技"}
    # the spelling itself is kept in the normalized name: it is the registered name
    assert one("深圳市华腾科技有限责任公司")["normalized"] == "深圳市华腾科技有限责任公司"


@pytest.mark.parametrize(
    ("name", "region"),
    [
        ("腾讯科技（深圳）有限公司", "深圳市"),
        ("腾讯科技(深圳市)有限公司", "深圳市"),
        ("深圳市腾讯科技有限公司", "深圳市"),
        ("深圳腾讯科技有限公司", "深圳市"),
        ("广东省深圳市腾讯科技有限公司", "深圳市"),
        ("广东腾讯科技有限公司", "广东省"),
        ("华腾科技（中国）有限公司", "中国"),
        ("深圳市南山区华腾便利店", "南山区"),
        ("华腾科技有限公司", None),
        ("北京市朝阳区华腾便利店", "朝阳区"),
    ],
)
def test_region_in_brackets_or_in_front(name, region):
    r = one(name)
    assert r["region"] == region
    assert region is None or region not in r["comparison"]


def test_region_bracket_and_front_compare_equal():
    assert cmp(
        "腾讯科技（深圳）有限公司",
        "腾讯科技(深圳)有限公司",
        "深圳市腾讯科技有限公司",
        "深圳腾讯科技有限公司",
        "广东省深圳市腾讯科技有限公司",
        "深圳市騰訊科技有限責任公司  ",
    ) == {"腾讯科技"}


def test_a_brand_that_starts_like_a_place_survives_the_region_swap():
    # 中山 is a prefecture, 广东 a province: once a region is found, nothing more is taken from the 字号
    assert cmp("深圳市中山华科技有限公司", "中山华科技（深圳）有限公司") == {"中山华科技"}
    assert cmp("深圳市广东华科技有限公司", "广东华科技（深圳）有限公司") == {"广东华科技"}
    assert cmp("深圳市南山华科技有限公司", "南山华科技（深圳）有限公司") == {"南山华科技"}


def test_a_name_that_is_only_a_place_keeps_it():
    assert one("深圳市有限公司")["comparison"] == "深圳市"


@pytest.mark.parametrize(
    ("name", "parent"),
    [
        ("深圳市大码网络科技有限公司龙岗区分公司", "大码网络科技"),
        ("大码网络科技（深圳）有限责任公司龙岗区分公司", "大码网络科技"),
        ("深圳市华腾餐饮管理有限公司福田分店", "华腾餐饮管理"),
        ("华腾证券股份有限公司深圳深南大道营业部", "华腾证券"),
        ("深圳市华腾电子有限公司宝安分厂", "华腾电子"),
        ("华为技术有限公司深圳办事处", "华为技术"),
        ("深圳市华腾超市南山分店", "华腾超市"),
    ],
)
def test_branch_recognized_with_parent(name, parent):
    r = one(name)
    assert r["is_branch"] is True
    assert r["parent_comparison"] == parent
    assert r["comparison"] != parent


def test_branch_is_distinct_from_parent_in_every_spelling():
    branch = [
        "深圳市大码网络科技有限公司龙岗区分公司",
        "大码网络科技（深圳）有限公司龙岗区分公司",
        "深圳市大码网络科技有限责任公司龙岗区分公司",
        "深圳市大碼網絡科技有限公司龍崗區分公司",
        "深圳市大码网络科技有限公司龙岗区分公司（已注销）",
    ]
    assert cmp(*branch) == {"大码网络科技龙岗区分公司"}
    assert {r["parent_comparison"] for r in en(*branch)} == {"大码网络科技"}
    assert one("深圳市大码网络科技有限公司")["comparison"] == "大码网络科技"
    assert one("深圳市大码网络科技有限公司宝安区分公司")["comparison"] != "大码网络科技龙岗区分公司"


def test_not_branches():
    for name in [
        "深圳市罗湖区蓬宏万手机维修部",
        "深圳市华腾科技有限公司",
        "深圳市龙岗区华腾便利店",
        "分公司",
    ]:
        r = one(name)
        assert r["is_branch"] is False and r["parent_comparison"] is None, name


# ------------------------------------------------------------------------------------------------------------
# person names
# ------------------------------------------------------------------------------------------------------------
def pn(*values: str | None) -> list[dict]:
    return pl.DataFrame({"p": list(values)}, schema={"p": pl.Utf8}).select(person_name("p"))["p"].to_list()


def test_person_name_spaces_and_width():
    rows = pn("张 三", " 王小明 ", "张\u3000三", "Ｚｈａｎｇ　三", None, " ")
    assert [r["normalized"] for r in rows] == ["张三", "王小明", "张三", "Zhang三", None, None]
    assert rows[3]["comparison"] == "ZHANG三"


def test_person_name_middle_dots():
    variants = [
        "阿卜杜拉·艾买提",
        "阿卜杜拉.艾买提",
        "阿卜杜拉・艾买提",
        "阿卜杜拉•艾买提",
        "阿卜杜拉 · 艾买提",
        "阿卜杜拉･艾买提",
        "阿卜杜拉‧艾买提",
        "阿卜杜拉。艾买提",
    ]
    rows = pn(*variants)
    assert {r["normalized"] for r in rows} == {"阿卜杜拉·艾买提"}
    assert {r["comparison"] for r in rows} == {"阿卜杜拉艾买提"}


def test_person_name_traditional_and_rare_characters_survive():
    rows = pn("陳偉", "李𠮷", "王䶮", "張堃𠮷", "昇 平")
    assert [r["normalized"] for r in rows] == ["陈伟", "李𠮷", "王䶮", "张堃𠮷", "昇平"]
    assert [r["comparison"] for r in rows] == ["陈伟", "李𠮷", "王䶮", "张堃𠮷", "昇平"]


def test_person_name_latin_keeps_one_space():
    assert pn("John   Smith")[0] == {"normalized": "John Smith", "comparison": "JOHNSMITH"}


# ------------------------------------------------------------------------------------------------------------
# every variant the simulator produces (simulator/mess.py) gives the comparison form of the true name
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def estate(simulated_estate) -> Path:
    return simulated_estate(enterprises=6000, seed=7)


@pytest.fixture(scope="module")
def true_enterprises(estate) -> pl.DataFrame:
    return pl.read_parquet(estate / "truth" / "enterprises" / "*.parquet")


def _variants(names: pl.Series) -> dict[str, pl.Series]:
    rng = np.random.default_rng(3)
    return {
        "legal_form": mess.legal_form_variant(names, rng, 1.0),
        "region_bracket": mess.region_bracket(names, rng, 1.0),
        "halfwidth": mess.halfwidth_brackets(names, rng, 1.0),
        "traditional": mess.traditional(names, rng, 1.0),
        "trailing_space": mess.trailing_space(names, rng, 1.0),
        "deregistered": names + "（已注销）",
        "all_at_once": mess.trailing_space(
            mess.traditional(
                mess.halfwidth_brackets(
                    mess.region_bracket(mess.legal_form_variant(names, rng, 1.0), rng, 1.0), rng, 1.0
                ),
                rng,
                1.0,
            ),
            rng,
            1.0,
        )
        + "（已注销）",
    }


def test_every_simulated_variant_gives_the_same_comparison(true_enterprises):
    names = pl.concat([true_enterprises["name"], true_enterprises["former_name"].drop_nulls()])
    truth = pl.select(enterprise_name(names).struct.field("comparison")).to_series()
    for kind, variant in _variants(names).items():
        assert not variant.equals(names), kind
        got = pl.select(enterprise_name(variant).struct.field("comparison")).to_series()
        bad = pl.DataFrame({"variant": variant, "got": got, "want": truth}).filter(
            pl.col("got") != pl.col("want")
        )
        assert bad.height == 0, f"{kind}: {bad.head(5).to_dicts()}"


# ------------------------------------------------------------------------------------------------------------
# a simulated estate against its truth
# ------------------------------------------------------------------------------------------------------------
NAME_SOURCES = [  # department, table, SQL giving (truth pk, name), truth role
    ("samr", "T_SCZT_DJXX", "SELECT ZTID, QYMC FROM T_SCZT_DJXX", "subject"),
    ("samr", "T_JYYC_ML", "SELECT ID, QYMC FROM T_JYYC_ML", "subject"),
    ("samr", "T_XZCF", "SELECT CFID, XDRMC FROM T_XZCF", "subject"),
    ("tax", "DJ_NSRXX", "SELECT DJXH, NSRMC FROM DJ_NSRXX", "subject"),
    ("courts", "AJ_DSR", "SELECT ID, DSRMC FROM AJ_DSR", "party"),
    ("courts", "SXBZXR", "SELECT ID, XMMC FROM SXBZXR", "subject"),
    ("social", "SB_DWCBXX", "SELECT DWBH || '|' || JFYF, DWMC FROM SB_DWCBXX", "subject"),
    ("env", "HB_XZCF", "SELECT 记录编号, 企业名称 FROM HB_XZCF", "subject"),
    ("service", "BJ_BJXX", "SELECT BJBH, SQRMC FROM BJ_BJXX", "applicant"),
]


def enterprise_records(out: Path) -> pl.DataFrame:
    """Every enterprise-name record of the estate with the true entity it refers to (mojibake repaired)."""
    frames = []
    for dept, table, sql, role in NAME_SOURCES:
        f = estate_frame(out, dept, sql, ["pk", "name"]).with_columns(table=pl.lit(table), role=pl.lit(role))
        if table == "SB_DWCBXX":
            f = f.with_columns(name=repair_gbk_in_latin1_series(f["name"]))
        frames.append(f)
    truth = (
        load_truth(out)
        .filter(pl.col("entity_type") == "enterprise")
        .select("table", "pk", "role", "entity_id")
        .collect()
    )
    return pl.concat(frames).join(truth, on=["table", "pk", "role"])


def collapse_figures(out: Path) -> dict[str, float]:
    """How far the comparison forms of all records of one enterprise, from every department, collapse."""
    records = enterprise_records(out).with_columns(cmp=enterprise_name("name").struct.field("comparison"))
    ents = pl.read_parquet(out / "truth" / "enterprises" / "*.parquet").with_columns(
        cn=enterprise_name("name").struct.field("comparison"),
        cf=enterprise_name("former_name").struct.field("comparison"),
    )
    ents = ents.with_columns(
        renamed=pl.col("cf").is_not_null(),
        true_names=1 + (pl.col("cf").is_not_null() & (pl.col("cf") != pl.col("cn"))).cast(pl.Int64),
    )
    rec = records.join(ents.select("entity_id", "cn", "cf"), on="entity_id")
    per = (
        rec.group_by("entity_id")
        .agg(forms=pl.col("cmp").n_unique())
        .join(ents.select("entity_id", "renamed", "true_names"), on="entity_id")
    )
    branches = ents.filter(pl.col("kind") == "branch").join(
        ents.select(parent_id="entity_id", parent_cmp="cn"), on="parent_id"
    )
    branch_rec = rec.join(branches.select("entity_id", "parent_cmp"), on="entity_id").with_columns(
        r=enterprise_name("name")
    )
    return {
        "records": rec.height,
        "enterprises": per.height,
        # share of enterprises whose records collapse to exactly one comparison form (renamed enterprises
        # that other departments still know under their former name legitimately keep two)
        "one_form": (per["forms"] == 1).mean(),
        "one_form_never_renamed": per.filter(~pl.col("renamed")).select((pl.col("forms") == 1).mean()).item(),
        # no more forms than the enterprise has true names (current, former)
        "forms_within_true_names": (per["forms"] <= per["true_names"]).mean(),
        # every record's form is the form of the enterprise's current or former true name
        "records_on_a_true_name": (
            (rec["cmp"] == rec["cn"]) | (rec["cmp"] == rec["cf"]).fill_null(False)
        ).mean(),
        "branches": branches.height,
        "branch_equals_parent": (branches["cn"] == branches["parent_cmp"]).sum(),
        "branch_records_flagged": branch_rec["r"].struct.field("is_branch").mean(),
        "branch_parent_found": (
            branch_rec["r"].struct.field("parent_comparison") == branch_rec["parent_cmp"]
        ).mean(),
    }


def test_estate_comparison_forms_collapse_per_enterprise(estate):
    f = collapse_figures(estate)
    print(f"\nname collapse on a simulated estate: {f}")
    assert f["enterprises"] > 5000 and f["records"] > 30_000
    assert f["forms_within_true_names"] >= 0.97
    assert f["one_form_never_renamed"] >= 0.97
    assert f["records_on_a_true_name"] >= 0.999
    assert f["one_form"] >= 0.9


def test_estate_branches_never_share_their_parents_form(estate):
    f = collapse_figures(estate)
    assert f["branches"] > 50
    assert f["branch_equals_parent"] == 0
    assert f["branch_records_flagged"] == 1.0
    assert f["branch_parent_found"] >= 0.99


def test_repeated_values_take_the_unique_path_with_the_same_result(estate):
    names = enterprise_records(estate)["name"]
    repeated = pl.concat([names] * 3)
    via_expr = pl.select(enterprise_name(repeated)).to_series()
    direct = nm._enterprise_unique(repeated)
    assert via_expr.struct.unnest().equals(direct.struct.unnest())


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        estate_dir = Path(tmp)
        simulate(estate_dir, enterprises=30_000, seed=1)
        c = collapse_figures(estate_dir)
        print(
            f"comparison forms on the 30,000-enterprise estate ({c['records']:,} records): "
            f"one form per enterprise {c['one_form']:.2%} (never-renamed enterprises {c['one_form_never_renamed']:.2%}); "
            f"no more forms than true names {c['forms_within_true_names']:.2%}; "
            f"records on a true name's form {c['records_on_a_true_name']:.2%}; "
            f"branches sharing their parent's form {c['branch_equals_parent']} of {c['branches']}"
        )
