"""Build a simulated city estate, and move it forward in time.

The city's shape (``qst simulate --city``, :mod:`simulator.shapes`) says which departments and tables it has and how
they are written; the first city (``simcity``, :mod:`simulator.tables`) is the default, and ``--advance-days`` moves it
only.

Layout of an estate folder (``qst simulate --out DIR``)::

    DIR/estate.json               what was generated (seed, size, as-of date, row counts) — the
                                  simulator's own state for --advance-days; the pipeline never reads it
    DIR/sources.yaml              the estate described for the pipeline (connectors/config.py format)
    DIR/<department>.sqlite       one SQLite file per department (unless --target DEPT=URL)
    DIR/drops/streets/*.csv|xlsx  street-office rosters (file drops; a shape with rosters only)
    DIR/truth/records/*.parquet   TRUTH: one row per (source record, entity it refers to)
    DIR/truth/enterprises/*.parquet, DIR/truth/persons/*.parquet   the true entities
    DIR/truth/deleted/*.parquet   records deleted by --advance-days (department, table, pk, day)
    DIR/truth/reassigned/*.parquet  records whose referent changed (a new legal representative), with the
                                  day; :func:`load_truth` applies them (latest wins)

Truth record columns: ``department``, ``table`` (source table name, or ``street_rosters``), ``pk`` (the
primary key as text; a composite key joined with ``|`` in key order; a roster row is ``FILE#N``, N the
line number counted from the first line after the header), ``role`` (subject, legal_rep, party,
employer, applicant), ``entity_type`` (enterprise | person) and ``entity_id`` (``E…`` or ``P…``).
Branches (分公司) are entities of their own whose ``parent_id`` in truth/enterprises names the parent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from simulator import vocab
from simulator.entities import UNIT_SIZE, Unit, generate_unit
from simulator.estate_sources import ROSTER_DEPARTMENT, sources_document, sources_yaml_text, write_sources
from simulator.files import FOLDER as ROSTER_FOLDER
from simulator.files import RosterDrops
from simulator.mess import MessProfile
from simulator.shapes import DEFAULT_SHAPE, city_tables, get_shape
from simulator.tables import BUILDERS, TRUTH_SCHEMA, BuildContext
from simulator.writers import Target, open_target, prepare

__all__ = [
    "EstateState",
    "advance",
    "load_truth",
    "simulate",
    "sources_document",
    "sources_yaml_text",
    "write_sources",
]

DEFAULT_AS_OF = dt.date(2026, 10, 31)
ESTATE_FORMAT = 1
Progress = Callable[[str], None]


def url_env_var(department: str) -> str:
    return f"QST_{department.upper()}_URL"


@dataclass
class EstateState:
    seed: int
    enterprises: int
    as_of: str
    start_as_of: str
    units: int
    days_advanced: int
    next_enterprise: int
    targets: dict[str, str]  # department -> "sqlite:<file>" or "url_env:<VAR>"
    rates: dict[str, float]
    rows: dict[str, int]
    format: int = ESTATE_FORMAT
    city: str = DEFAULT_SHAPE  # the city's shape (simulator/shapes.py)

    @classmethod
    def example(cls, city: str = DEFAULT_SHAPE) -> EstateState:
        """The state the example deployments' ``sources.yaml`` is written from (what a sources.yaml depends on is
        the city's shape; seed and sizes do not enter it): scripts/regenerate_sources_example.py and the tests that
        hold the committed files to the simulator."""
        return cls(
            seed=42,
            enterprises=1,
            as_of="2026-10-31",
            start_as_of="2026-10-31",
            units=1,
            days_advanced=0,
            next_enterprise=1,
            targets={},
            rates={},
            rows={},
            city=city,
        )

    @classmethod
    def load(cls, out: Path) -> EstateState:
        path = out / "estate.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run 'qst simulate --out {out}' first")
        return cls(**json.loads(path.read_text()))

    def save(self, out: Path) -> None:
        (out / "estate.json").write_text(
            json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True)
        )


def _open_targets(out: Path, targets: dict[str, str], city: str = DEFAULT_SHAPE) -> dict[str, Target]:
    opened = {}
    for dept in _sql_departments(city):
        spec = targets.get(dept, f"sqlite:{dept}.sqlite")
        if spec.startswith("sqlite:"):
            opened[dept] = open_target(out / spec.removeprefix("sqlite:"))
        else:
            var = spec.removeprefix("url_env:")
            url = os.environ.get(var)
            if not url:
                raise RuntimeError(f"department {dept!r} lives at the URL in ${var}, which is not set")
            opened[dept] = open_target(url)
    return opened


def _sql_departments(city: str) -> list[str]:
    builders, _ = city_tables(get_shape(city))
    return list(dict.fromkeys(spec.department for spec, _ in builders.values()))


class _TruthWriter:
    def __init__(self, out: Path):
        self.root = out / "truth"
        for sub in ("records", "enterprises", "persons", "deleted", "reassigned"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def unit(self, name: str, unit: Unit | None, records: list[pl.DataFrame]) -> None:
        if records:
            pl.concat(records).write_parquet(self.root / "records" / f"{name}.parquet")
        if unit is not None:
            unit.enterprises.write_parquet(self.root / "enterprises" / f"{name}.parquet")
            unit.persons.write_parquet(self.root / "persons" / f"{name}.parquet")


def simulate(
    out: Path,
    *,
    enterprises: int,
    seed: int = 42,
    as_of: dt.date = DEFAULT_AS_OF,
    targets: dict[str, str] | None = None,
    profile: MessProfile | None = None,
    only: list[str] | None = None,
    progress: Progress = lambda _m: None,
    city: str = DEFAULT_SHAPE,
) -> EstateState:
    """Generate the whole estate into ``out`` (replacing what was there).

    ``targets`` maps a department to a SQLAlchemy URL; ``only`` restricts generation to some
    ``department.TABLE`` keys (benchmarks fill one big table without the rest); ``city`` names the city's
    shape (:data:`simulator.shapes.SHAPES`)."""
    out = Path(out)
    shape = get_shape(city)
    all_builders, _ = city_tables(shape)
    sql_departments = _sql_departments(city)
    out.mkdir(parents=True, exist_ok=True)
    profile = profile or MessProfile()
    env_targets = {}
    for dept, url in (targets or {}).items():
        if dept not in sql_departments:
            raise ValueError(f"unknown department {dept!r}; departments: {sorted(sql_departments)}")
        var = url_env_var(dept)
        os.environ[var] = url
        env_targets[dept] = f"url_env:{var}"
    for sub in ("truth", ROSTER_FOLDER):
        shutil.rmtree(out / sub, ignore_errors=True)
    for f in out.glob("*.sqlite*"):
        f.unlink()
    defaults = MessProfile()
    state = EstateState(
        seed=seed,
        enterprises=enterprises,
        as_of=as_of.isoformat(),
        start_as_of=as_of.isoformat(),
        units=-(-enterprises // UNIT_SIZE),
        days_advanced=0,
        next_enterprise=enterprises,
        targets=env_targets,
        rates={k: v for k, v in asdict(profile).items() if getattr(defaults, k) != v},
        rows={},
        city=shape.name,
    )
    builders = {k: v for k, v in all_builders.items() if only is None or k in only}
    dbs = _open_targets(out, env_targets, city)
    truth = _TruthWriter(out)
    drops = RosterDrops(out, as_of) if only is None and shape.rosters else None
    try:
        for spec, _ in builders.values():
            dbs[spec.department].create(spec)
        started = time.perf_counter()
        total = 0
        dialects = {dept: db.dialect for dept, db in dbs.items()}
        jobs = [
            (
                seed,
                u,
                u * UNIT_SIZE,
                min(UNIT_SIZE, enterprises - u * UNIT_SIZE),
                as_of,
                profile,
                list(builders),
                dialects,
                shape.name,
            )
            for u in range(state.units)
        ]
        for unit_no, (unit, tables) in enumerate(_produce_units(jobs)):
            records = []
            for key, rows, t in tables:
                spec = all_builders[key][0]
                dbs[spec.department].write(spec, rows, prepared=True)
                records.append(t)
                state.rows[key] = state.rows.get(key, 0) + rows.height
                total += rows.height
            if drops is not None:
                rng = np.random.default_rng([seed, unit_no, 190])
                records.append(drops.add(unit.persons, unit.enterprises, rng, profile))
            truth.unit(f"u{unit_no:06d}", unit, records)
            elapsed = time.perf_counter() - started
            progress(
                f"unit {unit_no + 1}/{state.units}: {total:,} rows in {elapsed:,.1f}s "
                f"({total / max(elapsed, 1e-9):,.0f} rows/s)"
            )
        if drops is not None:
            drops.close()
            state.rows[f"{ROSTER_DEPARTMENT}.street_rosters"] = sum(drops.rows_written.values())
    finally:
        for db in dbs.values():
            db.close()
    state.save(out)
    write_sources(state, out, out / "sources.yaml")
    return state


def _produce_unit(
    seed: int,
    unit_no: int,
    first: int,
    count: int,
    as_of: dt.date,
    profile: MessProfile,
    keys: list[str],
    dialects: dict[str, str],
    city: str = DEFAULT_SHAPE,
):
    """Generate one unit's rows, ready for each department's dialect."""
    unit = generate_unit(seed, unit_no, first, count, as_of)
    ctx = BuildContext(unit, seed, as_of, profile)
    builders, _ = city_tables(get_shape(city))
    tables = []
    for key in keys:
        spec, build = builders[key]
        rows, t = build(ctx, spec)
        tables.append((key, prepare(rows, spec, dialects[spec.department]), t))
    return unit, tables


def _produce_units(jobs: list[tuple]):
    """Units in order. (Generating in a worker process while this one writes was measured slower:
    moving the frames between processes costs more than it saves on two cores.)"""
    return (_produce_unit(*job) for job in jobs)


# ================================================================================================
# Time moves: --advance-days
# ================================================================================================
EVENT_TABLES = [
    "samr.T_JYYC_ML",
    "samr.T_XZCF",
    "tax.SB_ZSXX",
    "tax.QS_XX",
    "courts.AJ_DSR",
    "courts.SXBZXR",
    "env.HB_XZCF",
    "service.BJ_BJXX",
]
NEW_ENTITY_TABLES = ["samr.T_SCZT_DJXX", "tax.DJ_NSRXX", "service.BJ_BJXX"]
EVENT_ROWS_PER_ENTERPRISE = 4.9


def _sample_truth(
    out: Path, sub: str, rng: np.random.Generator, k: int, where: pl.Expr | None = None
) -> pl.DataFrame:
    lf = pl.scan_parquet(out / "truth" / sub / "*.parquet")
    if where is not None:
        lf = lf.filter(where)
    deleted = list((out / "truth" / "deleted").glob("*.parquet"))
    if sub == "records" and deleted:  # a deleted record is neither updated nor deleted again
        lf = lf.join(pl.scan_parquet(deleted).select("table", "pk"), on=["table", "pk"], how="anti")
    height = lf.select(pl.len()).collect().item()
    if height == 0 or k <= 0:
        return lf.head(0).collect()
    picks = np.unique(rng.integers(0, height, min(k, height)))
    return lf.with_row_index("_i").filter(pl.col("_i").is_in(picks)).drop("_i").collect()


def _day_stamp(rng, day: dt.date, n: int, late_rate: float) -> pl.Series:
    seconds = rng.integers(0, 86_400, n)
    late = rng.random(n) < late_rate
    days_back = np.where(late, rng.integers(1, 4, n), 0)
    base = dt.datetime.combine(day, dt.time())
    us = (seconds - days_back * 86_400) * 1_000_000
    return pl.Series([base] * n, dtype=pl.Datetime("us")) + pl.Series(us).cast(pl.Duration("us"))


def advance(out: Path, days: int, *, progress: Progress = lambda _m: None) -> EstateState:
    """Apply ``days`` realistic days of change to an existing estate (see the module docstring)."""
    out = Path(out)
    state = EstateState.load(out)
    if not get_shape(state.city).legacy:
        raise ValueError(
            f"--advance-days moves the first simulated city only; {out} is a {state.city!r} estate"
        )
    defaults = asdict(MessProfile())
    profile = MessProfile.with_overrides({k: v for k, v in state.rates.items() if k in defaults})
    dbs = _open_targets(out, state.targets)
    truth = _TruthWriter(out)
    try:
        for _ in range(days):
            state.days_advanced += 1
            day = dt.date.fromisoformat(state.as_of) + dt.timedelta(days=1)
            stats = _advance_one_day(out, state, day, profile, dbs, truth)
            state.as_of = day.isoformat()
            state.save(out)
            progress(
                f"day {state.days_advanced} ({day}): " + ", ".join(f"{k} {v:,}" for k, v in stats.items())
            )
    finally:
        for db in dbs.values():
            db.close()
    return state


def _advance_one_day(
    out: Path,
    state: EstateState,
    day: dt.date,
    profile: MessProfile,
    dbs: dict[str, Target],
    truth: _TruthWriter,
) -> dict[str, int]:
    d = state.days_advanced
    rng = np.random.default_rng([state.seed, 900_000 + d])
    volume = max(10, int(sum(state.rows.values()) * profile.daily_rate))
    stats = {"inserted": 0, "updated": 0, "deleted": 0, "new_enterprises": 0}

    def insert(key: str, ctx: BuildContext, records: list[pl.DataFrame]) -> None:
        spec, build = BUILDERS[key]
        rows, t = build(ctx, spec)
        if spec.cursor and spec.cursor_kind == "timestamp":
            rows = rows.with_columns(
                _day_stamp(rng, day, rows.height, profile.late_arrival).alias(spec.cursor)
            )
        dbs[spec.department].write(spec, rows)
        records.append(t)
        state.rows[key] = state.rows.get(key, 0) + rows.height
        stats["inserted"] += rows.height

    # 1. new registrations: a fresh unit of enterprises founded in the last days
    n_new = max(1, int(state.enterprises * 0.0008))
    unit_no = state.units + 2 * (d - 1)
    unit = generate_unit(
        state.seed, unit_no, state.next_enterprise, n_new, day, founded_from=day - dt.timedelta(days=5)
    )
    state.next_enterprise += n_new
    stats["new_enterprises"] = n_new
    ctx = BuildContext(unit, state.seed, day, profile, window_start=day)
    records: list[pl.DataFrame] = []
    for key in NEW_ENTITY_TABLES:
        insert(key, ctx, records)
    truth.unit(f"d{d:05d}a", unit, records)

    # 2. new events (filings, penalties, cases, service cases ...) for existing enterprises
    k = max(1, int(volume * 0.35 / EVENT_ROWS_PER_ENTERPRISE))
    ents = _sample_truth(out, "enterprises", rng, k)
    persons = _sample_truth(out, "persons", rng, 2 * k, pl.col("role") != "employee")
    reps = (
        pl.scan_parquet(out / "truth" / "persons" / "*.parquet")
        .filter(pl.col("person_id").is_in(ents["rep_id"].implode()))
        .collect()
    )
    pseudo = Unit(unit_no + 1, ents, pl.concat([reps, persons]).unique("person_id", maintain_order=True))
    ctx = BuildContext(pseudo, state.seed, day, profile, window_start=day - dt.timedelta(days=3))
    records = []
    for key in EVENT_TABLES:
        insert(key, ctx, records)
    truth.unit(f"d{d:05d}b", None, records)

    # 3. updates of existing rows (stamped today, some late) and 4. deletions
    targets = _sample_truth(
        out,
        "records",
        rng,
        int(volume * 0.62),
        (pl.col("role") == "subject") & pl.col("table").is_in(list(_UPDATES)),
    )
    reassigned: list[pl.DataFrame] = []
    for table, group in targets.group_by("table", maintain_order=True):
        stats["updated"] += _apply_updates(
            dbs, str(table[0]), group["pk"], rng, day, profile, persons, reassigned
        )
    if reassigned:
        pl.concat(reassigned).with_columns(day=pl.lit(d)).write_parquet(
            truth.root / "reassigned" / f"d{d:05d}.parquet"
        )
    victims = _sample_truth(
        out,
        "records",
        rng,
        int(volume * 0.03),
        (pl.col("role").is_in(["subject", "applicant", "party"])) & pl.col("table").is_in(list(_DELETABLE)),
    )
    deleted = []
    for table, group in victims.group_by("table", maintain_order=True):
        spec = _DELETABLE[str(table[0])]
        keys = group["pk"].unique(maintain_order=True)
        db = dbs[spec.department]
        key_type = int if spec.columns[0].type.endswith("bigint") else str
        db.execute(
            f"DELETE FROM {db.q(spec.name)} WHERE {db.q(spec.primary_key[0])} = {db.placeholders(1)}",
            [(key_type(v),) for v in keys],
        )
        deleted.append(
            pl.DataFrame({"department": spec.department, "table": spec.name, "pk": keys, "day": day})
        )
        stats["deleted"] += len(keys)
    if deleted:
        pl.concat(deleted).write_parquet(truth.root / "deleted" / f"d{d:05d}.parquet")
    return stats


_SPECS = {spec.name: spec for spec, _ in BUILDERS.values()}
_UPDATES = {"T_SCZT_DJXX", "DJ_NSRXX", "SB_GRCBXX", "BJ_BJXX", "AJ_DSR", "T_JYYC_ML"}
_DELETABLE = {name: _SPECS[name] for name in ("BJ_BJXX", "AJ_DSR", "T_JYYC_ML")}


def _apply_updates(
    dbs: dict[str, Target],
    table: str,
    pks: pl.Series,
    rng: np.random.Generator,
    day: dt.date,
    profile: MessProfile,
    reps: pl.DataFrame,
    reassigned: list[pl.DataFrame],
) -> int:
    """Realistic changes by primary key: addresses, representatives, names, status, closings."""
    spec = _SPECS[table]
    db = dbs[spec.department]
    keys = pks.unique(maintain_order=True).to_list()
    n = len(keys)
    stamp = _day_stamp(rng, day, n, profile.late_arrival).dt.strftime("%Y-%m-%d %H:%M:%S").to_list()
    today = day.isoformat()
    ph = db.placeholders
    pk = db.q(spec.primary_key[0])
    cur = db.q(spec.cursor or "")

    def addr() -> list[str]:
        return [
            f"{vocab.CITY}{vocab.DISTRICTS[i][1]}{s}{no}号"
            for i, s, no in zip(
                rng.integers(0, len(vocab.DISTRICTS), n),
                rng.choice(vocab.STREETS, n),
                rng.integers(1, 3000, n),
                strict=True,
            )
        ]

    def run(set_sql: str, values: list[list]) -> None:
        q = set_sql.replace("?", ph(1))
        db.execute(
            f"UPDATE {db.q(spec.name)} SET {q}, {cur} = {ph(1)} WHERE {pk} = {ph(1)}",
            [(*v, s, k) for v, s, k in zip(values, stamp, keys, strict=True)],
        )

    if table == "T_SCZT_DJXX":
        kind = rng.choice(["address", "rep", "name", "dereg"], n, p=[0.6, 0.15, 0.1, 0.15])
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(kind):
            groups.setdefault(str(k), []).append(i)
        addresses = addr()
        for k, idx in groups.items():
            sub_keys = [keys[i] for i in idx]
            sub_stamp = [stamp[i] for i in idx]
            if k == "address":
                sql, vals = f"{db.q('ZS')} = ?", [[addresses[i]] for i in idx]
            elif k == "dereg":
                sql, vals = f"{db.q('DJZT')} = ?", [[vocab.SAMR_STATUS["deregistered"]] for _ in idx]
            elif k == "name":
                sql = f"{db.q('QYMC')} = ?"
                chars = vocab.BRAND_CHARS
                vals = [
                    [
                        (
                            f"{vocab.CITY}{chars[rng.integers(len(chars))]}{chars[rng.integers(len(chars))]}"
                            f"{vocab.INDUSTRIES[rng.integers(len(vocab.INDUSTRIES))][0]}有限公司"
                        )
                    ]
                    for _ in idx
                ]
            else:  # a new legal representative: a real person, so the truth follows the change
                new_reps = reps.select(pl.all().gather(rng.integers(0, reps.height, len(idx))))
                sql = f"{db.q('FDDBR')} = ?, {db.q('FDDBRZJHM')} = ?"
                vals = [[nm, idn] for nm, idn in zip(new_reps["name"], new_reps["id_number"], strict=True)]
                reassigned.append(
                    pl.DataFrame(
                        {
                            "department": spec.department,
                            "table": spec.name,
                            "pk": sub_keys,
                            "role": "legal_rep",
                            "entity_type": "person",
                            "entity_id": new_reps["person_id"],
                        },
                        schema=TRUTH_SCHEMA,
                    )
                )
            q = sql.replace("?", ph(1))
            db.execute(
                f"UPDATE {db.q(spec.name)} SET {q}, {cur} = {ph(1)} WHERE {pk} = {ph(1)}",
                [(*v, s, kk) for v, s, kk in zip(vals, sub_stamp, sub_keys, strict=True)],
            )
    elif table == "DJ_NSRXX":
        keys = [int(k) for k in keys]
        run(f"{db.q('SCJYDZ')} = ?", [[a] for a in addr()])
    elif table == "SB_GRCBXX":
        run(f"{db.q('CBZT')} = ?", [[c] for c in rng.choice(["1", "2", "3"], n, p=[0.5, 0.2, 0.3])])
    elif table == "BJ_BJXX":
        run(f"{db.q('BLZT')} = ?, {db.q('BJSJ')} = ?", [["办结", s] for s in stamp])
    elif table == "AJ_DSR":
        keys = [int(k) for k in keys]
        run(f"{db.q('JARQ')} = ?", [[f"{day.year}/{day.month}/{day.day}"] for _ in range(n)])
    elif table == "T_JYYC_ML":
        keys = [int(k) for k in keys]
        run(f"{db.q('YCRQ')} = ?", [[today] for _ in range(n)])
    return n


def load_truth(out: Path) -> pl.LazyFrame:
    """The truth records of an estate as of now: a record whose referent changed (a new legal
    representative) points at the new entity; deleted records stay (see truth/deleted)."""
    root = Path(out) / "truth"
    records = pl.scan_parquet(root / "records" / "*.parquet", schema=TRUTH_SCHEMA)
    changes = sorted((root / "reassigned").glob("*.parquet"))
    if not changes:
        return records
    keys = ["table", "pk", "role"]
    latest = (
        pl.scan_parquet(changes)
        .sort("day")
        .group_by(keys, maintain_order=True)
        .last()
        .select(list(TRUTH_SCHEMA))
    )
    return pl.concat([records.join(latest.select(keys), on=keys, how="anti"), latest])
