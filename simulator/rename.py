"""A renamed copy of an estate and its deployment: the proof that no code path past the connectors knows a name.

The platform's promise is that a city is configuration: every department key, table, column and asset name is
the deployment's, never the code's. :func:`rename_estate` takes an estate (the departments' SQLite files, their
file drops, the simulator's truth) and the deployment folder that describes it (``sources.yaml``, the staging
specs, crosswalks, ``exports.yaml``, trained models) and writes a copy in which every one of those names is
replaced by another -- deterministic from ``seed``, valid where the original was valid, distinct from each other,
some of them Chinese -- with the data left exactly as it was. A night run on the copy must give what a night on
the original gives, modulo names (tests/test_renamed_estate.py); where it does not, a layer depends on a name.

What is renamed, found from ``sources.yaml`` and the specs alone (no name of the simulated city is known here,
so this works for any deployment whose sources are SQLite files and file drops):

* department keys (and their titles; the department column of every crosswalk that has one, the
  ``department_name_zh`` of ``service_item_departments.csv``; bureaus of ``exports.yaml`` that are departments,
  and its ``source_department`` row filters);
* source table names, asset names, every column of every table (primary keys, cursors, column settings and
  ``rename`` targets included); the event types and mention roles the specs declare;
* file-drop folders, file names (kept matching their pattern) and header cells;
* the truth's ``department``/``table``/``pk`` (a file-drop record is filed under its renamed asset).

The data movers (SQLite, drop files, truth) are in :mod:`simulator.rename_data`; the names and the documents
(YAML and CSV) are here. ``estate.json`` is not copied: the simulator cannot advance an estate whose names it
does not know.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connectors.config import load_sources
from simulator import rename_data

__all__ = ["NameMapping", "Namer", "rename_estate"]

#: Letters of generated ASCII names: no 0/o, 1/l/i, so a name read aloud or in a log is unambiguous.
_ASCII = "abcdefghjkmnpqrstuvwxyz23456789"
#: Characters of generated Chinese names (column names, table names, department titles).
_CJK = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥金木水火土天地玄黄宇宙洪荒日月盈昃辰宿张寒来暑往秋收冬藏"


@dataclass
class NameMapping:
    """Every name the renaming replaced, old -> new. Keys of the per-table maps are ``<department>/<name>``
    with the *old* department key (what the original deployment calls the table or asset)."""

    seed: int
    departments: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)  # old title (and its short name) -> new
    tables: dict[str, str] = field(default_factory=dict)  # "dept/TABLE" -> new source table name
    assets: dict[str, str] = field(default_factory=dict)  # "dept/asset" -> new asset name
    source_columns: dict[str, dict[str, str]] = field(default_factory=dict)  # "dept/TABLE" -> {old: new}
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # "dept/asset" -> bronze {old: new}
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # "dept/asset" -> {old file: new file}
    event_types: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # a mention's role in its record (subject, ...)

    def source(self, old: str) -> str:
        """``dept/asset`` (a spec's ``source``) in the new names."""
        dept = old.split("/", 1)[0]
        return f"{self.departments[dept]}/{self.assets[old]}"

    def new_to_old(self) -> dict[str, str]:
        """Every new name -> the old one: for reading a renamed night's output back in the original names
        (each new name is unique, so the inverse is a function)."""
        inverse: dict[str, str] = {}
        pairs: list[tuple[str, str]] = [
            *self.departments.items(),
            *self.titles.items(),
            *self.event_types.items(),
            *self.roles.items(),
        ]
        pairs += [(k.split("/", 1)[1], v) for k, v in (*self.tables.items(), *self.assets.items())]
        for maps in (self.source_columns, self.columns, self.files):
            pairs += [p for m in maps.values() for p in m.items()]
        for old, new in pairs:
            if inverse.get(new, old) != old:
                raise ValueError(f"new name {new!r} stands for both {inverse[new]!r} and {old!r}")
            inverse[new] = old
        return inverse

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True)


class Namer:
    """Fresh names from a seed: the same seed gives the same names in the same order. Every name is distinct
    from every other (compared case-insensitively, as Delta Lake compares columns), and none is a part of
    another (each carries a kind prefix and a fixed-length token), so a name found in a text stands for one
    thing only."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"qst-rename-{seed}")
        self._used: set[str] = set()

    def _unique(self, make: Callable[[], str]) -> str:
        while True:
            name = make()
            if name.lower() not in self._used:
                self._used.add(name.lower())
                return name

    def _token(self, n: int, alphabet: str = _ASCII) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    def slug(self, prefix: str) -> str:
        """A snake_case key (``[a-z][a-z0-9_]*``): departments, assets, event types."""
        return self._unique(lambda: f"{prefix}_{self._token(5)}")

    def table(self) -> str:
        """A source table name: upper case ASCII, or now and then Chinese (SQL identifiers of any script)."""
        if self._rng.random() < 0.25:
            return self._unique(lambda: f"表{self._token(4, _CJK)}")
        return self._unique(lambda: f"TB_{self._token(5).upper()}")

    def column(self) -> str:
        """A column name: ASCII in either case, about a third of them Chinese."""
        roll = self._rng.random()
        if roll < 0.35:
            return self._unique(lambda: f"列{self._token(4, _CJK)}")
        if roll < 0.7:
            return self._unique(lambda: f"C_{self._token(5).upper()}")
        return self._unique(lambda: f"c_{self._token(5)}")

    def short_title(self) -> str:
        """A department's short name (the part of a title before its first space)."""
        return self._unique(lambda: f"部门{self._token(3, _CJK)}")

    def file(self, suffix: str) -> str:
        return self._unique(lambda: f"f_{self._token(8)}") + suffix


# ------------------------------------------------------------------------------------------------ entry point
def rename_estate(
    estate_dir: Path, deployment_dir: Path, out_estate: Path, out_deployment: Path, *, seed: int
) -> NameMapping:
    """Write the renamed copy of ``estate_dir`` to ``out_estate`` and of ``deployment_dir`` to ``out_deployment``
    and return what was renamed (also written to ``out_deployment/rename_mapping.json`` for a person reading a
    failure). ``deployment_dir/sources.yaml`` must describe ``estate_dir``: its SQLite files and drop folders lie
    inside it (a URL connection cannot be copied)."""
    estate_dir, deployment_dir = Path(estate_dir).resolve(), Path(deployment_dir).resolve()
    out_estate, out_deployment = Path(out_estate).resolve(), Path(out_deployment).resolve()
    for out in (out_estate, out_deployment):
        if out.exists() and any(out.iterdir()):
            raise FileExistsError(f"{out}: not empty (the renamed copy is written to a fresh folder)")
        out.mkdir(parents=True, exist_ok=True)
    namer, mapping = Namer(seed), NameMapping(seed=seed)
    config = load_sources(deployment_dir / "sources.yaml")
    raw = _load_yaml(deployment_dir / "sources.yaml")
    for key in raw["departments"]:
        mapping.departments[key] = namer.slug("dp")

    copier = rename_data.EstateCopier(estate_dir, out_estate, namer, mapping)
    for dept, table in config.iter_tables():
        copier.table(dept, table)
    for dept, drop in config.iter_files():
        copier.drop(dept, drop)
    _collect_roles(deployment_dir / "specs", mapping, namer)  # before the truth, whose records carry roles
    copier.truth()

    new_sources = _sources(raw, mapping, namer, copier, out_deployment)
    _write_yaml(out_deployment / "sources.yaml", new_sources)
    _copy_rest(deployment_dir, out_deployment)
    _specs(deployment_dir / "specs", out_deployment / "specs", mapping, namer)
    _crosswalks(deployment_dir / "crosswalks", out_deployment / "crosswalks", mapping, namer)
    if (deployment_dir / "exports.yaml").is_file():
        exports = _exports(_load_yaml(deployment_dir / "exports.yaml"), mapping)
        _write_yaml(out_deployment / "exports.yaml", exports)
    (out_deployment / "rename_mapping.json").write_text(mapping.to_json(), encoding="utf-8")
    return mapping


# ------------------------------------------------------------------------------------------------ documents
def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _write_yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # the anchors of the original are expanded: plainer
            return True

    text = yaml.dump(data, Dumper=_NoAliases, allow_unicode=True, sort_keys=False, width=120)
    path.write_text(
        f"# Renamed by simulator/rename.py (what from: rename_mapping.json)\n{text}", encoding="utf-8"
    )


def _title(old: str, mapping: NameMapping, namer: Namer, new_key: str) -> str:
    """A new title of the same form: short name, a space, the rest (here the new key)."""
    if old not in mapping.titles:
        short = namer.short_title()
        mapping.titles[old] = f"{short} {new_key}"
        old_short = old.split(" ", 1)[0]
        if old_short != old:
            mapping.titles.setdefault(old_short, short)
    return mapping.titles[old]


def _sources(
    raw: dict, mapping: NameMapping, namer: Namer, copier: rename_data.EstateCopier, out_deployment: Path
) -> dict:
    """``sources.yaml`` in the new names; connections and folders point at the renamed estate."""
    out = {k: v for k, v in raw.items() if k != "departments"}
    out["departments"] = {}
    for key, dept in raw["departments"].items():
        new_key = mapping.departments[key]
        new = dict(dept)
        if "title" in dept:
            new["title"] = _title(dept["title"], mapping, namer, new_key)
        if "connection" in dept:
            new["connection"] = {"sqlite": _rel(copier.sqlite_files[key], out_deployment)}
        if "tables" in dept:
            new["tables"] = [_table_entry(key, t, mapping) for t in dept["tables"]]
        if "files" in dept:
            new["files"] = [_file_entry(key, f, mapping, copier, out_deployment) for f in dept["files"]]
        out["departments"][new_key] = new
    if (
        "file_roots" in raw
    ):  # the original's roots name the original estate: the renamed drops' folders instead
        out["file_roots"] = sorted({_rel(folder, out_deployment) for folder in copier.drop_folders.values()})
    return out


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _table_entry(dept: str, table: dict, mapping: NameMapping) -> dict:
    name = table["name"]
    asset = table.get("asset") or name.lower()
    cols = mapping.source_columns[f"{dept}/{name}"]
    bronze = mapping.columns[f"{dept}/{asset}"]
    new = dict(table)
    new["name"] = mapping.tables[f"{dept}/{name}"]
    new["asset"] = mapping.assets[f"{dept}/{asset}"]
    new["primary_key"] = [cols[c] for c in table["primary_key"]]
    if "cursor" in table:
        new["cursor"] = cols[table["cursor"]]
    if table.get("columns"):
        settings = {}
        for col, setting in table["columns"].items():
            setting = dict(setting)
            if "rename" in setting:
                setting["rename"] = bronze[setting["rename"]]
            settings[cols[col]] = setting
        new["columns"] = settings
    return new


def _file_entry(
    dept: str, drop: dict, mapping: NameMapping, copier: rename_data.EstateCopier, out_deployment: Path
) -> dict:
    new = dict(drop)
    new["name"] = mapping.assets[f"{dept}/{drop['name']}"]
    new["folder"] = _rel(copier.drop_folders[f"{dept}/{drop['name']}"], out_deployment)
    return new


def _copy_rest(src: Path, dst: Path) -> None:
    """Everything of the deployment that names nothing (trained models, users ...) as it is."""
    renamed = {"sources.yaml", "specs", "crosswalks", "exports.yaml"}
    for item in src.iterdir():
        if item.name in renamed:
            continue
        if item.is_dir():
            shutil.copytree(item, dst / item.name)
        else:
            shutil.copy2(item, dst / item.name)


def _specs(src: Path, dst: Path, mapping: NameMapping, namer: Namer) -> None:
    """Every staging spec in the new names: its source, the bronze columns it reads, the tables its keys
    reference, its event types; written as ``stg_<department>__<asset>.yaml`` of the new names."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.yaml")):
        spec = _load_yaml(path)
        old_source = spec["source"]
        if old_source not in mapping.columns:
            raise KeyError(f"{path.name}: source {old_source!r} is not a table or file drop of sources.yaml")
        bronze = mapping.columns[old_source]
        spec["source"] = mapping.source(old_source)
        for canonical, col in (spec.get("columns") or {}).items():
            try:
                col["from"] = bronze[col["from"]]
                if col.get("code_column"):
                    col["code_column"] = bronze[col["code_column"]]
            except KeyError as exc:
                raise KeyError(
                    f"{path.name}: columns.{canonical} reads {exc}, not a column of the source"
                ) from None
        for ref in (spec.get("keys") or {}).get("references") or []:
            ref["table"] = mapping.source(ref["table"])
        for event in spec.get("events") or []:
            if event["type"] not in mapping.event_types:
                mapping.event_types[event["type"]] = namer.slug("ev")
            event["type"] = mapping.event_types[event["type"]]
        _rename_roles(spec, mapping.roles)
        new_dept, new_asset = spec["source"].split("/")
        _write_yaml(dst / f"stg_{new_dept}__{new_asset}.yaml", spec)


def _collect_roles(specs: Path, mapping: NameMapping, namer: Namer) -> None:
    """Every mention role the specs declare gets a new name (a role is the deployment's word, like a table's)."""
    for path in sorted(specs.glob("*.yaml")):
        spec = _load_yaml(path)
        for mention in [*(spec.get("enterprises") or []), *(spec.get("persons") or [])]:
            if mention["role"] not in mapping.roles:
                mapping.roles[mention["role"]] = namer.slug("rl")


def _rename_roles(spec: dict, roles: dict[str, str]) -> None:
    """Every place a spec names a mention role: the mentions, ``related``, relations, event subjects, the
    applicant of service cases."""
    for mention in [*(spec.get("enterprises") or []), *(spec.get("persons") or [])]:
        mention["role"] = roles[mention["role"]]
        if mention.get("related"):
            mention["related"] = roles[mention["related"]]
    for relation in spec.get("relations") or []:
        for side in ("person", "enterprise"):
            if relation.get(side):
                relation[side] = roles[relation[side]]
    for event in spec.get("events") or []:
        event["subject"] = roles[event["subject"]]
    cases = spec.get("service_cases")
    if cases and cases.get("applicant"):
        cases["applicant"] = roles[cases["applicant"]]


def _crosswalks(src: Path, dst: Path, mapping: NameMapping, namer: Namer) -> None:
    """The code lists in the new names, wherever a column says which department, table or column a row is of.
    A department a list names that ``sources.yaml`` lacks (a service item decided by a bureau with no source
    of its own) gets a new key too."""
    if not src.is_dir():
        return
    shutil.copytree(src, dst)
    for path in sorted(dst.glob("*.csv")):
        text = path.read_text(encoding="utf-8-sig")
        rows = list(csv.reader(text.splitlines()))
        if not rows or "department" not in rows[0]:
            continue
        header = rows[0]
        at = {
            c: header.index(c)
            for c in ("department", "source_table", "source_column", "department_name_zh")
            if c in header
        }
        for row in rows[1:]:
            if not row:
                continue
            old_dept = row[at["department"]]
            if old_dept not in mapping.departments:
                mapping.departments[old_dept] = namer.slug("dp")
            if "source_table" in at:
                table_key = f"{old_dept}/{row[at['source_table']]}"
                if "source_column" in at:
                    row[at["source_column"]] = mapping.source_columns[table_key][row[at["source_column"]]]
                row[at["source_table"]] = mapping.tables[table_key]
            if "department_name_zh" in at:
                row[at["department_name_zh"]] = mapping.titles.get(
                    row[at["department_name_zh"]], row[at["department_name_zh"]]
                )
            row[at["department"]] = mapping.departments[old_dept]
        with path.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(rows)


#: The crosswalk columns of ``exports.yaml`` row filters that hold a department key.
_DEPARTMENT_COLUMNS = {"source_department"}


def _exports(doc: dict, mapping: NameMapping) -> dict:
    """``exports.yaml`` in the new names: a bureau that is a department (by its key or its ``department``) takes
    the department's new key, and row filters on the crosswalk's department column name the new keys."""
    bureaus = {}
    for key, bureau in (doc.get("bureaus") or {}).items():
        bureau = dict(bureau)
        if "department" in bureau:
            bureau["department"] = mapping.departments.get(bureau["department"], bureau["department"])
        for table in bureau.get("tables") or []:
            rows = table.get("rows")
            for cond in rows if isinstance(rows, list) else [rows] if isinstance(rows, dict) else []:
                if cond.get("column") in _DEPARTMENT_COLUMNS and "in" in cond:
                    values = cond["in"] if isinstance(cond["in"], list) else [cond["in"]]
                    cond["in"] = [mapping.departments.get(v, v) for v in values]
        bureaus[mapping.departments.get(key, key)] = bureau
    return {**doc, "bureaus": bureaus}
