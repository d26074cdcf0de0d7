"""Graph decisions over deterministic clusters: which Splink edges survive the ambiguity guard, which may be applied
without putting two validated keys or a cannot-link pair in one entity, and the connected components."""

from __future__ import annotations

import numpy as np
import polars as pl


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def unambiguous(edges: pl.DataFrame, size: np.ndarray, strong: float) -> pl.Series:
    """Which edges (``a, b, match_probability`` between deterministic clusters of ``size`` records) survive the
    guard: a weak edge (probability below ``strong``) is kept when the smaller of the two groups it joins is a lone
    record and reaches at most one other group of several records by weak edges (the groups are the components of
    the strong edges). Two groups that each have their own evidence join only by a strong pair; a court record with
    only a name does not join two same-named enterprises of different districts: it joins one, or stays alone when
    both are as likely."""
    n = len(size)
    if edges.height == 0:
        return pl.Series(dtype=pl.Boolean)
    is_strong = (edges["match_probability"] >= strong).to_numpy()
    ea, eb = edges["a"].to_numpy(), edges["b"].to_numpy()
    group = components(n, ea[is_strong], eb[is_strong])
    gsize = np.bincount(group, weights=size, minlength=n)
    ga, gb = group[ea], group[eb]
    weak = pl.DataFrame({"e": np.arange(edges.height), "ga": ga, "gb": gb}).filter(
        ~pl.Series(is_strong) & (pl.col("ga") != pl.col("gb"))
    )
    sizes = pl.DataFrame({"g": np.arange(n), "len": gsize})
    both = pl.concat([weak.select(g="ga", other="gb"), weak.select(g="gb", other="ga")])
    # partners that are groups of several records (two lone records of one name may join each other)
    partners = (
        both.join(sizes.rename({"g": "other"}), on="other")
        .group_by("g")
        .agg(partners=pl.col("other").filter(pl.col("len") > 1).n_unique())
    )
    weak = (
        weak.join(sizes.rename({"g": "ga", "len": "sa"}), on="ga")
        .join(sizes.rename({"g": "gb", "len": "sb"}), on="gb")
        .with_columns(small=pl.when(pl.col("sa") <= pl.col("sb")).then("ga").otherwise("gb"))
        .join(partners.rename({"g": "small"}), on="small")
        .filter((pl.col("partners") <= 1) & (pl.min_horizontal("sa", "sb") == 1))
    )
    ok = is_strong.copy()
    ok[weak["e"].to_numpy()] = True
    return pl.Series(ok)


def constrained(n: int, keys: np.ndarray, edges: pl.DataFrame, cannot: list[tuple[int, int]]) -> np.ndarray:
    """Which ``edges`` (``a, b, priority``; nodes are deterministic clusters, ``keys[i]`` their validated key or -1)
    may be applied: greedily by priority (highest first), an edge joins two groups unless the union would hold two
    different keys or both ends of a ``cannot`` pair. Only the components where the plain union would break a
    constraint are walked edge by edge; every other edge is applied."""
    ok = np.ones(edges.height, dtype=bool)
    if edges.height == 0:
        return ok
    ea, eb = edges["a"].to_numpy(), edges["b"].to_numpy()
    comp = components(n, ea, eb)
    nodes = pl.DataFrame({"c": comp, "k": keys}).filter(pl.col("k") >= 0)
    bad = set(nodes.group_by("c").agg(pl.col("k").n_unique()).filter(pl.col("k") > 1)["c"].to_list())
    bad |= {int(comp[x]) for x, y in cannot if comp[x] == comp[y]}
    if not bad:
        return ok
    forbid: dict[int, set[int]] = {}
    for x, y in cannot:
        forbid.setdefault(x, set()).add(y)
        forbid.setdefault(y, set()).add(x)
    idx = np.flatnonzero(np.isin(comp[ea], list(bad)))
    order = idx[np.argsort(-edges["priority"].to_numpy()[idx], kind="stable")]
    parent: dict[int, int] = {}
    members: dict[int, set[int]] = {}
    key: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in order:
        ra, rb = find(int(ea[e])), find(int(eb[e]))
        if ra == rb:
            continue
        ma, mb = members.get(ra, {ra}), members.get(rb, {rb})
        ka, kb = key.get(ra, int(keys[ra])), key.get(rb, int(keys[rb]))
        small, other = (ma, mb) if len(ma) <= len(mb) else (mb, ma)
        if (ka >= 0 and kb >= 0 and ka != kb) or any(forbid.get(m, set()) & other for m in small):
            ok[e] = False
            continue
        parent[rb] = ra
        members[ra] = ma | mb
        members.pop(rb, None)
        key[ra] = ka if ka >= 0 else kb
    return ok


def decision_frame(decisions: pl.DataFrame | None) -> pl.DataFrame:
    if decisions is None or decisions.height == 0:
        return pl.DataFrame(schema={"record_id_l": pl.Utf8, "record_id_r": pl.Utf8, "decision": pl.Utf8})
    bad = decisions.filter(~pl.col("decision").is_in(["must_link", "cannot_link"]))
    if bad.height:
        raise ValueError(f"unknown decisions: {bad['decision'].unique().to_list()}")
    return decisions.select("record_id_l", "record_id_r", "decision").unique()
