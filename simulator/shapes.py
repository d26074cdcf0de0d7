"""The shape of a simulated city: which departments it has and how their legacy systems are written.

Two simulated cities differ in *shape*, not only in names: the department kinds that exist (a registry with its
change log, a tax bureau, an urban-management bureau, a housing provident fund ...), how each department's
vendor named its tables and columns (pinyin initials in upper case, lower snake English, camelCase ...), how each
date column is encoded (``'YYYY-MM-DD'``, an integer ``YYYYMMDD``, ``'YYYY年M月D日'``, epoch seconds, a bare
year ...), which column an incremental read follows and of what type (a ``DATETIME``, a text timestamp that
sources.yaml must declare, epoch seconds, an increasing integer id), the formats of the departments' own
numbers (a registry's corp id, a fund's employer account), and whether street offices drop roster files.

A :class:`CityShape` is those parameters. The first simulated city (``simcity``, :mod:`simulator.tables`, the
default of ``qst simulate``) is the hand-written original; every other shape is assembled from the generic
department kinds of :mod:`simulator.kinds` by :func:`city_tables`, so a new shape is a new set of parameters,
not new code: ``qst simulate --city rivercity``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from simulator.tables import BUILDERS as SIMCITY_BUILDERS
from simulator.tables import DEPARTMENTS as SIMCITY_DEPARTMENTS
from simulator.tables import BuildContext, TableSpec

Builder = Callable[[BuildContext, TableSpec], tuple[pl.DataFrame, pl.DataFrame]]

#: How a vendor names tables and columns: from a field's English snake name and its pinyin initials.
NAMING_STYLES = ("pinyin_upper", "pinyin_lower", "snake", "camel", "pascal")
#: How a date column is stored: text ``YYYY-MM-DD``, text ``YYYY/M/D``, integer ``YYYYMMDD``, text
#: ``YYYY年M月D日``, epoch seconds (integer), a native ``DATE`` column.
DATE_ENCODINGS = ("iso", "slash", "int_ymd", "cn", "epoch", "native")
#: What an incremental table's cursor is: a ``DATETIME`` column, text ``YYYY-MM-DD HH:MM:SS`` (declared with a
#: type in sources.yaml), epoch seconds (an integer: ``cursor_kind: id``), or the integer primary key.
CURSOR_TYPES = ("timestamp", "text_timestamp", "epoch", "id", "snapshot")


@dataclass(frozen=True)
class KeyFormat:
    """A department's own number: ``prefix`` + the number zero-filled to ``width`` (text), or a bare integer
    when ``width`` is 0. ``stride``/``offset`` spread the numbers (``n * stride + offset``)."""

    prefix: str = ""
    width: int = 0
    stride: int = 1
    offset: int = 0

    @property
    def integer(self) -> bool:
        return self.width == 0

    def render(self, n: pl.Series) -> pl.Series:
        value = n.cast(pl.Int64) * self.stride + self.offset
        if self.integer:
            return value
        return self.prefix + value.cast(pl.Utf8).str.zfill(self.width)

    def column_type(self) -> str:
        return "bigint" if self.integer else f"str:{len(self.prefix) + self.width + 2}"


@dataclass(frozen=True)
class Department:
    """One department of the city: its key in sources.yaml, its title, which kind of department it is (a key of
    :data:`simulator.kinds.KINDS`), how its vendor named things, and each of its tables' cursor type (by the
    kind's logical table name; tables not named use ``cursor``)."""

    key: str
    title: str
    kind: str
    table_style: str = "snake"
    column_style: str = "snake"
    table_prefix: str = ""
    cursor: str = "timestamp"
    cursors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CityShape:
    """The parameters of a simulated city (module docstring). ``dates`` maps a logical date field (see
    :mod:`simulator.kinds`) to its encoding; fields not named use ``default_date``."""

    name: str
    departments: tuple[Department, ...] = ()
    dates: dict[str, str] = field(default_factory=dict)
    default_date: str = "iso"
    corp_id: KeyFormat = KeyFormat()
    employer_account: KeyFormat = KeyFormat()
    member_account: KeyFormat = KeyFormat()
    #: status codes the registry uses for the true statuses (active, revoked, deregistered, moved_out)
    registry_status: dict[str, str] = field(default_factory=dict)
    #: the share of a mixed party column's parties that are enterprises (the rest are persons)
    party_enterprise_share: float = 0.55
    #: the share of a mixed 证件号 column left empty
    party_key_missing: float = 0.4
    rosters: bool = False
    legacy: bool = False  # the hand-written first city of simulator.tables

    def __post_init__(self) -> None:
        for d in self.departments:
            for style in (d.table_style, d.column_style):
                if style not in NAMING_STYLES:
                    raise ValueError(f"{self.name}/{d.key}: naming style {style!r} not in {NAMING_STYLES}")
            for c in (d.cursor, *d.cursors.values()):
                if c not in CURSOR_TYPES:
                    raise ValueError(f"{self.name}/{d.key}: cursor type {c!r} not in {CURSOR_TYPES}")
        for enc in (self.default_date, *self.dates.values()):
            if enc not in DATE_ENCODINGS:
                raise ValueError(f"{self.name}: date encoding {enc!r} not in {DATE_ENCODINGS}")

    def date_encoding(self, logical: str) -> str:
        return self.dates.get(logical, self.default_date)


def style_name(snake: str, pinyin: str, style: str) -> str:
    """A field's or table's name in a vendor's style."""
    if style == "pinyin_upper":
        return pinyin.upper()
    if style == "pinyin_lower":
        return pinyin.lower()
    if style == "snake":
        return snake
    words = snake.split("_")
    camel = words[0] + "".join(w.capitalize() for w in words[1:])
    return camel if style == "camel" else camel[0].upper() + camel[1:]


#: The first simulated city: pinyin-initial upper case, six SQL departments and street-office roster drops
#: (simulator.tables is its hand-written definition).
SIMCITY = CityShape(name="simcity", rosters=True, legacy=True)

#: A second city of another shape: a registry with its change log (曾用名), a tax bureau whose ratings carry a bare
#: year, an urban-management bureau (城管) whose penalties mix enterprises and persons in one party column without
#: a type column, and a housing provident fund (公积金) whose members reference their employer's account; no
#: environment bureau, courts, social security, service centre or street rosters. Its vendors name things in
#: lower snake English, camelCase and lower pinyin; dates come as integers, Chinese text, epoch seconds and
#: bare years; cursors are text timestamps, epoch seconds and integer ids.
RIVERCITY = CityShape(
    name="rivercity",
    departments=(
        Department(
            "market",
            "市场监督管理局 market regulation",
            "registry",
            table_style="snake",
            column_style="snake",
            table_prefix="t_",
            cursor="text_timestamp",
            cursors={"change_log": "id"},
        ),
        Department(
            "taxation",
            "税务局 taxation",
            "tax",
            table_style="pascal",
            column_style="camel",
            cursor="timestamp",
            cursors={"tax_ratings": "snapshot"},
        ),
        Department(
            "chengguan",
            "城市管理和综合执法局 urban management",
            "urban",
            table_style="pinyin_upper",
            column_style="pinyin_upper",
            table_prefix="CG_",
            cursor="epoch",
        ),
        Department(
            "gjj",
            "住房公积金管理中心 housing provident fund",
            "housing_fund",
            table_style="pinyin_lower",
            column_style="pinyin_lower",
            table_prefix="gjj_",
            cursor="text_timestamp",
            cursors={"fund_members": "epoch"},
        ),
    ),
    dates={
        "founded_on": "int_ymd",
        "changed_on": "cn",
        "registered_on": "slash",
        "decided_on": "epoch",
        "opened_on": "cn",
        "member_since": "iso",
    },
    corp_id=KeyFormat(prefix="", width=0, stride=13, offset=90_000_000),
    employer_account=KeyFormat(prefix="DW", width=9, stride=3, offset=100_000_000),
    member_account=KeyFormat(prefix="", width=0, stride=1, offset=6_000_000_000),
    registry_status={"active": "KY", "revoked": "DX", "deregistered": "ZX", "moved_out": "QC"},
)

SHAPES: dict[str, CityShape] = {s.name: s for s in (SIMCITY, RIVERCITY)}
DEFAULT_SHAPE = SIMCITY.name


def get_shape(name: str) -> CityShape:
    try:
        return SHAPES[name]
    except KeyError:
        raise ValueError(f"unknown city shape {name!r}; shapes: {sorted(SHAPES)}") from None


def city_tables(shape: CityShape) -> tuple[dict[str, tuple[TableSpec, Builder]], dict[str, str]]:
    """The shape's tables (``department.TABLE`` -> spec and builder) and departments (key -> title)."""
    if shape.legacy:
        return dict(SIMCITY_BUILDERS), dict(SIMCITY_DEPARTMENTS)
    from simulator.kinds import realize

    builders: dict[str, tuple[TableSpec, Builder]] = {}
    for dept in shape.departments:
        for spec, build in realize(shape, dept):
            builders[f"{spec.department}.{spec.name}"] = (spec, build)
    return builders, {d.key: d.title for d in shape.departments}


def registry_table(shape: CityShape) -> tuple[str, str]:
    """``(department, source table)`` of the shape's registry of commercial entities: the legal record of every
    enterprise's name and status, which the truth's golden records are scored against."""
    if shape.legacy:
        return "samr", "T_SCZT_DJXX"
    for dept in shape.departments:
        if dept.kind == "registry":
            from simulator.kinds import realize

            return dept.key, realize(shape, dept)[0][0].name
    raise ValueError(f"city shape {shape.name!r} has no registry department")
