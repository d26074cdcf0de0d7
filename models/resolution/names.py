"""The name pass of entity resolution: a keyless enterprise mention whose full name identifies one enterprise of
the city joins that enterprise.

Why a rule and not only Splink: an enterprise name (企业名称) is unique within a registration authority's
jurisdiction (企业名称登记管理规定), so a name written out in full — trade name and industry (the comparison form),
region and legal form — that exactly one enterprise with a validated key bears is as good as a key. Splink, which
compares *profiles* one pair at a time, cannot see that the name is unique in the city, and its guard against
bridging (:func:`models.resolution.graph.unambiguous`) rightly refuses a weak pair between two groups that each
have records of their own — which is exactly what a keyless department's enterprise is once its own account
number has grouped its rows (a housing-fund employer and its members' employer mentions). On a city onboarded by
configuration, keyless mentions were 66 % of the missed enterprise pairs, and most carried a name identical to
their enterprise's.

The rule, over deterministic clusters (the output of :mod:`models.resolution.deterministic`):

- **anchored** clusters have a validated key (a USCC, an organization code); every name any of their records bears
  (the registry's current name, a department's stale copy, a declared former name 曾用名) is one of theirs, and so
  is every name one of their records bore on an earlier night (:mod:`models.gold.names_seen`, :func:`former_rows`);
- a cluster without a validated key joins an anchored cluster when the anchored clusters **compatible** with its
  names are exactly that one: same comparison form and branch flag, and region and legal form equal where both
  sides state them (深圳市X有限公司 is not 广东X有限责任公司 — another region and legal form, another enterprise;
  X有限公司 written without its region is compatible with 深圳市X有限公司). Two anchored enterprises compatible
  with a name make it ambiguous: nothing joins, Splink and the review queue decide;
- clusters without a validated key whose name matches no anchored cluster at all join one another when they bear
  the same full name (comparison, branch flag, region and legal form all equal, the region or the legal form
  stated): an enterprise the registry does not hold (registered elsewhere) is still one enterprise.

The edges go through the same constraint pass as Splink's (:func:`models.resolution.graph.constrained`): a
reviewer's cannot-link and two different validated keys still keep clusters apart. Names shorter than
:data:`MIN_COMPARISON_CHARS` characters in comparison form never link here (a bare 字号 of two characters is not
evidence of identity). No department, table or city is known here: only the canonical columns.
"""

from __future__ import annotations

import polars as pl

#: The canonical columns the pass reads (besides the deterministic cluster and the validated key).
NAME_COLUMNS = ("name_comparison", "name_is_branch", "name_region", "name_legal_form")
#: Shorter comparison forms (trade name and industry, region and legal form removed) never link on a name alone.
MIN_COMPARISON_CHARS = 4
RULE = "unique_name"
WHY = (
    "the same full enterprise name (trade name, region, legal form), borne by no other enterprise of the city"
)


def _compatible(a: str, b: str) -> pl.Expr:
    return pl.col(a).is_null() | pl.col(b).is_null() | (pl.col(a) == pl.col(b))


def name_edges(names: pl.DataFrame) -> pl.DataFrame:
    """``cluster_a, cluster_b`` pairs of deterministic clusters the rule joins. ``names``: ``cluster``, ``anchored``
    (the cluster has a validated key) and :data:`NAME_COLUMNS`, one row per record or per distinct value (only the
    distinct rows matter). Every edge has an unanchored cluster on the ``cluster_a`` side."""
    distinct = (
        names.select("cluster", "anchored", *NAME_COLUMNS)
        .filter(pl.col("name_comparison").str.len_chars() >= MIN_COMPARISON_CHARS)
        .with_columns(pl.col("name_is_branch").fill_null(False))
        .unique()
    )
    anchored = distinct.filter(pl.col("anchored")).drop("anchored")
    free = distinct.filter(~pl.col("anchored")).drop("anchored")
    on = ["name_comparison", "name_is_branch"]
    pairs = free.join(anchored, on=on, suffix="_x")
    seen = pairs.select("cluster").unique()
    compatible = pairs.filter(
        _compatible("name_region", "name_region_x") & _compatible("name_legal_form", "name_legal_form_x")
    )
    # a free cluster joins its anchored cluster when every compatible name of it points at that one only
    to_anchor = (
        compatible.group_by("cluster")
        .agg(target=pl.col("cluster_x").unique(), n=pl.col("cluster_x").n_unique())
        .filter(pl.col("n") == 1)
        .select(cluster_a="cluster", cluster_b=pl.col("target").list.first())
    )
    # free clusters no anchored cluster shares a comparison form with: the same full name is one enterprise
    alone = free.join(seen, on="cluster", how="anti").filter(
        pl.col("name_region").is_not_null() | pl.col("name_legal_form").is_not_null()
    )
    full = [*on, "name_region", "name_legal_form"]
    first = alone.group_by(full).agg(anchor=pl.col("cluster").min())
    among = (
        alone.join(first, on=full, nulls_equal=True)
        .filter(pl.col("cluster") != pl.col("anchor"))
        .select(cluster_a="cluster", cluster_b="anchor")
    )
    return pl.concat([to_anchor, among]).unique().sort("cluster_a", "cluster_b")


def profile_edges(
    values: pl.DataFrame, extra: pl.DataFrame | None, cluster: pl.Series, formers: pl.DataFrame | None = None
) -> pl.DataFrame | None:
    """The name pass's edges (enterprises whose canonical table has the name columns): ``values`` the profile
    values (:func:`models.resolution.profiles.profile_values`, with the validated ``key``), ``extra`` the other name columns
    (:data:`NAME_COLUMNS` not among the profile values), both in the clusters' order; ``formers`` more names of clusters (``cluster``,
    ``anchored`` and the name columns: :func:`former_rows`); None without the name columns."""
    if extra is None:
        return None
    names = (
        values.select("name_comparison", "name_is_branch", anchored=pl.col("key").is_not_null())
        .hstack(extra)
        .with_columns(cluster=cluster)
    )
    if formers is not None:
        names = pl.concat([names, formers.select(names.columns).cast(names.schema)])
    return name_edges(names)


def former_rows(
    record_ids: pl.Series, cluster: pl.Series, values: pl.DataFrame, former_names: pl.DataFrame
) -> pl.DataFrame:
    """The former names of records as names of their deterministic clusters, anchored when any record of the
    cluster has a validated key (all three series in the clusters' order)."""
    frame = pl.DataFrame({"record_id": record_ids, "cluster": cluster, "key": values["key"]})
    anchored = frame.group_by("cluster").agg(anchored=pl.col("key").is_not_null().any())
    return (
        former_names.join(frame.select("record_id", "cluster"), on="record_id")
        .join(anchored, on="cluster")
        .select("cluster", "anchored", *NAME_COLUMNS)
    )
