"""The name pass (issue 16, item 1): a keyless enterprise whose full name identifies one enterprise of the city
joins it; a name two enterprises could bear, another region or legal form, a branch, or a bare short 字号 joins
nothing. Tiny frames: one row per record of a deterministic cluster."""

from __future__ import annotations

import polars as pl

from models.resolution.names import name_edges


def frame(*rows: tuple) -> pl.DataFrame:
    """rows: (cluster, anchored, comparison, is_branch, region, legal_form)."""
    return pl.DataFrame(
        rows,
        schema={
            "cluster": pl.Int64,
            "anchored": pl.Boolean,
            "name_comparison": pl.Utf8,
            "name_is_branch": pl.Boolean,
            "name_region": pl.Utf8,
            "name_legal_form": pl.Utf8,
        },
        orient="row",
    )


def edges(names: pl.DataFrame) -> set[tuple[int, int]]:
    return set(name_edges(names).iter_rows())


def test_a_keyless_name_borne_by_one_enterprise_joins_it():
    names = frame(
        (1, True, "大码网络科技", False, "深圳市", "有限责任公司"),
        (2, False, "大码网络科技", False, "深圳市", "有限责任公司"),  # the same name, written in full
        (3, False, "大码网络科技", False, None, "有限责任公司"),  # without its region: still only cluster 1
        (4, False, "大码网络科技", False, None, None),
    )
    assert edges(names) == {(2, 1), (3, 1), (4, 1)}


def test_another_region_or_legal_form_is_another_enterprise():
    names = frame(
        (1, True, "大码网络科技", False, "深圳市", "有限责任公司"),
        (2, False, "大码网络科技", False, "广东省", "有限责任公司"),  # a province-prefixed namesake
        (3, False, "大码网络科技", False, "深圳市", "股份有限公司"),  # another legal form
    )
    assert edges(names) == set()


def test_a_name_two_enterprises_could_bear_links_nothing():
    names = frame(
        (1, True, "大码网络科技", False, "深圳市", "有限责任公司"),
        (2, True, "大码网络科技", False, "广州市", "有限责任公司"),
        (3, False, "大码网络科技", False, None, "有限责任公司"),  # compatible with both: ambiguous
        (4, False, "大码网络科技", False, "广州市", None),  # compatible with cluster 2 only
    )
    assert edges(names) == {(4, 2)}


def test_every_name_of_an_enterprise_counts_and_must_agree():
    """A renamed enterprise's cluster bears its former name too; a keyless cluster with two names joins only when
    both point at the same enterprise."""
    names = frame(
        (1, True, "新名科技", False, "深圳市", "有限责任公司"),
        (1, True, "旧名科技", False, "深圳市", "有限责任公司"),
        (2, True, "另一家科技", False, "深圳市", "有限责任公司"),
        (3, False, "旧名科技", False, "深圳市", "有限责任公司"),
        (4, False, "旧名科技", False, "深圳市", "有限责任公司"),
        (4, False, "另一家科技", False, "深圳市", "有限责任公司"),
    )
    assert edges(names) == {(3, 1)}


def test_branches_short_names_and_keyless_namesakes():
    names = frame(
        (1, True, "大码网络科技", False, "深圳市", "有限责任公司"),
        (2, False, "大码网络科技龙岗区分公司", True, "深圳市", "有限责任公司"),  # a branch: not its parent
        (3, True, "万达", False, "深圳市", "有限责任公司"),
        (4, False, "万达", False, "深圳市", "有限责任公司"),  # two characters: no evidence alone
        # an enterprise the registry does not hold, in two departments: one enterprise
        (5, False, "外地精密机械制造", False, "东莞市", "有限责任公司"),
        (6, False, "外地精密机械制造", False, "东莞市", "有限责任公司"),
        (7, False, "外地精密机械制造", False, "惠州市", "有限责任公司"),
        # with neither region nor legal form stated, a bare name joins no other bare name
        (8, False, "某某贸易商行", False, None, None),
        (9, False, "某某贸易商行", False, None, None),
    )
    assert edges(names) == {(6, 5)}
