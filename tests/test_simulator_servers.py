"""The simulator on the real PostgreSQL and MariaDB servers of this machine, and a mixed estate."""

from __future__ import annotations

import sqlalchemy as sa

from connectors.config import load_sources
from simulator import estate as est
from simulator.writers import LEGACY_TEXT_ENCODING


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            q = "`" if engine.dialect.name in ("mysql", "mariadb") else '"'
            return conn.execute(sa.text(f"SELECT COUNT(*) FROM {q}{table}{q}")).scalar_one()
    finally:
        engine.dispose()


def test_postgres_target(tmp_path, pg_url, monkeypatch):
    monkeypatch.delenv("QST_TAX_URL", raising=False)
    state = est.simulate(tmp_path, enterprises=600, seed=2, targets={"tax": pg_url})
    for key in ("tax.DJ_NSRXX", "tax.SB_ZSXX", "tax.XY_NSPJ", "tax.QS_XX"):
        assert _count(pg_url, key.split(".")[1]) == state.rows[key] > 0
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        types = dict(
            conn.execute(
                sa.text(
                    "SELECT column_name, data_type || coalesce('(' || numeric_precision || ',' || numeric_scale || ')', '') "
                    "FROM information_schema.columns WHERE table_name = 'SB_ZSXX'"
                )
            ).all()
        )
        names = [r[0] for r in conn.execute(sa.text('SELECT "NSRMC" FROM "DJ_NSRXX" LIMIT 50'))]
    engine.dispose()
    assert types["YNSE"] == "numeric(18,2)"
    assert any("有限" in n for n in names)
    # the secret-free sources.yaml points at an environment variable
    config = load_sources(tmp_path / "sources.yaml")
    assert config.department("tax").connection.url_env == "QST_TAX_URL"
    assert "postgresql" not in (tmp_path / "sources.yaml").read_text()


def test_mariadb_target_keeps_legacy_quirks(tmp_path, mariadb_url):
    est.simulate(tmp_path, enterprises=600, seed=2, targets={"social": mariadb_url, "samr": mariadb_url})
    engine = sa.create_engine(mariadb_url)
    with engine.connect() as conn:
        ddl = conn.execute(sa.text("SHOW CREATE TABLE SB_DWCBXX")).one()[1]
        raw = [r[0] for r in conn.execute(sa.text("SELECT CAST(DWMC AS BINARY) FROM SB_DWCBXX LIMIT 20"))]
        zero = conn.execute(
            sa.text("SELECT COUNT(*) FROM T_SCZT_DJXX WHERE CAST(HZRQ AS CHAR) = '0000-00-00'")
        )
        zero = zero.scalar_one()
    engine.dispose()
    assert "latin1" in ddl and "unsigned" in ddl.lower()
    assert all(
        "有限" in b.decode(LEGACY_TEXT_ENCODING)
        or "公司" in b.decode(LEGACY_TEXT_ENCODING)
        or "店" in b.decode(LEGACY_TEXT_ENCODING)
        for b in raw
    ), "GBK bytes in the latin1 column"
    assert zero > 0, "MySQL zero dates"


def test_mixed_estate_and_advance(tmp_path, pg_url, mariadb_url):
    state = est.simulate(
        tmp_path, enterprises=500, seed=9, targets={"tax": pg_url, "courts": pg_url, "social": mariadb_url}
    )
    assert (tmp_path / "samr.sqlite").exists() and not (tmp_path / "tax.sqlite").exists()
    before = _count(pg_url, "AJ_DSR")
    assert before == state.rows["courts.AJ_DSR"]
    state = est.advance(tmp_path, 1)
    assert _count(pg_url, "AJ_DSR") == state.rows["courts.AJ_DSR"] - _deleted(tmp_path, "AJ_DSR")
    assert _count(pg_url, "SB_ZSXX") == state.rows["tax.SB_ZSXX"]
    assert _count(mariadb_url, "SB_GRCBXX") == state.rows["social.SB_GRCBXX"]


def _deleted(out, table: str) -> int:
    import polars as pl

    files = list((out / "truth" / "deleted").glob("*.parquet"))
    if not files:
        return 0
    return pl.read_parquet(files).filter(pl.col("table") == table).height
