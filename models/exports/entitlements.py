"""``exports.yaml``: what each bureau (委办局) is entitled to receive in its nightly export.

Sharing data back to the departments is governed by the government data-sharing rules: every table is
shared 无条件 (unconditionally), 有条件 (on conditions: a stated purpose under a sharing agreement), or
不予共享 (not shared).  This file is the single place where those decisions are written down, so an export
can only ever contain what a line of this file grants: a table not listed is not exported, a column not
named is not exported, and rows are restricted by structured filters (never free SQL).  The engine that
applies it is :mod:`models.exports.package`.

Every problem is reported at once with the file, line and key (the same reporting as ``sources.yaml``,
through :func:`connectors.config.load_yaml_model`), for example::

    exports.yaml:31:11: bureaus.tax.tables[1].purpose: required when sharing is 有条件 (conditional)

Example
=======

.. code-block:: yaml

    version: 1
    hmac_key_env: QST_EXPORT_HMAC_KEY     # NAME of the environment variable holding the HMAC secret
    crosswalk_table: entity_crosswalk     # default; the relationship filter's table
    defaults:
      formats: [parquet, csv]             # default [parquet, csv]
      csv_encoding: utf-8-sig             # utf-8-sig (UTF-8 with BOM, for Excel) | gb18030
      retention: 7                        # dated packages kept per bureau
    bureaus:
      tax:
        title: 税务局 tax bureau
        department: tax                   # its source_department in the crosswalk (default: the key)
        csv_encoding: gb18030
        tables:
          - table: dim_enterprise
            as: enterprises               # the files' name (default: the table name)
            sharing: 有条件
            purpose: 纳税信用评价 taxpayer credit rating
            agreement: 深数共享〔2026〕17号
            valid_until: 2027-12-31
            rows: {related: entity_id}    # only enterprises tax has a record of
            columns:
              entity_id: keep
              uscc: keep
              name: keep
              legal_rep_name: mask_name
              legal_rep_id_number: mask_id
              legal_rep_id_hmac: {from: legal_rep_id_number, protect: hmac}
              phone: mask_mobile
              address: drop
          - table: mart_credit_risk
            sharing: 不予共享
            reason: 含其他部门的处罚信息 holds other departments' penalties

Top level
=========
``version`` (required): always ``1``.
``hmac_key_env``: the NAME of the environment variable that holds the HMAC secret; required as soon as a
column uses ``hmac``.  The secret itself never goes in this file (nor in a manifest or a log).
``signing_key_env`` (default ``QST_EXPORT_SIGNING_KEY``): the NAME of the environment variable holding the
city's Ed25519 private key, which signs every package's manifest (:mod:`models.exports.signing`).
``crosswalk_table`` (default ``entity_crosswalk``): the table the ``related`` filter reads (columns
``entity_id`` and ``source_department``).
``defaults``: ``formats``, ``csv_encoding``, ``retention`` for bureaus that set none.
``bureaus`` (required): bureau key (snake_case; it names the bureau's export folder) -> bureau.

Bureau
======
``title`` (required), ``department`` (default: the key), ``formats`` (``parquet`` and/or ``csv``),
``csv_encoding`` (``utf-8-sig`` or ``gb18030``), ``retention`` (1..3660 dated packages kept), ``tables``
(required, a list of table entitlements).

Table entitlement
=================
``table`` (required)
    A table or view of the marts file (marts, golden records ``dim_enterprise``/``dim_person``, the
    crosswalk ``entity_crosswalk``).
``as`` (optional)
    The name of its files in the package (default: ``table``); unique within a bureau, so one table can be
    shared twice with different rows or columns.
``sharing`` (required)
    ``无条件`` (also ``unconditional``), ``有条件`` (``conditional``) or ``不予共享`` (``not_shared``).
``purpose``, ``agreement`` (required when 有条件, optional otherwise), ``valid_until`` (有条件 only)
    Recorded in the manifest and the README.  After ``valid_until`` the table is withheld (listed in the
    manifest as withheld, with the reason) until the agreement is renewed in this file.
``reason`` (optional): why a table is not shared (不予共享), shown in the README.
``description`` (optional): a sentence for the bureau's README, beside the table's own comment.
``rows`` (required for a shared table)
    ``all`` -- every row, said explicitly (forgetting a filter must not leak a whole table) -- or one
    condition or a list of conditions that must all hold:

    ``{column: C, in: ["440305", ...]}``   C's value (compared as text) is one of these
    ``{column: C, prefix: "440305"}``      C's value (as text) starts with this prefix (or any of a list):
                                          a district's 6-digit code for its 9- or 12-digit street and
                                          community codes, or a city's 4 digits for its districts
    ``{related: C}``                       C is an entity id of which the bureau's ``department`` has at
                                          least one record in the crosswalk (a semi-join on
                                          ``crosswalk_table.entity_id`` where ``source_department`` is the
                                          department): "only enterprises this bureau deals with"

    Values are text: quote codes (``"440305"``), YAML would read them as numbers.
``columns`` (required for a shared table)
    Output column -> protection.  Only the columns named here are exported, in this order.  The protection
    is a word, or a mapping ``{from: SOURCE_COLUMN, protect: WORD, keep_first: N, keep_last: M}`` (``from``
    defaults to the output name; so one source column can be exported twice, e.g. masked for reading and
    hashed for joining):

    ``keep``            as it is
    ``mask_id``         resident ID: first 6 and last 4 kept (``110105********002X``, hides the birth date)
    ``mask_mobile``     phone: first 3 and last 4 kept (``138****8000``; a +86 prefix is dropped first)
    ``mask_bank_card``  bank card: first 6 and last 4 kept
    ``mask_name``       a person's name: the first character kept (``张*``, ``欧阳**``)
    ``mask``            generic: ``keep_first`` and ``keep_last`` characters kept (both required)
    ``hmac``            HMAC-SHA256 (hex) of the normalized value (NFKC, trimmed, upper case) keyed with
                        the secret of ``hmac_key_env``: equal values give equal hashes in every bureau's
                        package and every night, so bureaus can join without seeing the value, while
                        nobody without the key can enumerate ID numbers back from it
    ``drop``            not exported (documents a deliberate refusal; same effect as not naming it)

    Details of the masks (blank values, short values) are in :mod:`models.exports.protect`.

不予共享 (not shared)
====================
A table whose sharing is 不予共享 is never exported.  Its entry may only carry ``reason`` and
``description``: ``rows`` or ``columns`` on it are a validation error (a contradiction that must not be
resolved silently).  The entry is still useful: the package's manifest and README list the table as not
shared, so the bureau sees that the question was decided rather than forgotten.

Entitlement version
===================
:func:`entitlement_version` is the sha256 of the bureau's section in a normalized form (defaults applied,
JSON with sorted keys) together with the file's global settings; editing one bureau changes only that
bureau's version.  Each manifest records it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from connectors.identifiers_sql import MAX_IDENTIFIER_LENGTH, validate_identifier
from lake.yamlfile import load_yaml_model

__all__ = [
    "CSV_ENCODINGS",
    "PROTECTIONS",
    "SHARING_EN",
    "SIGNING_KEY_ENV",
    "Bureau",
    "ColumnRule",
    "ExportDefaults",
    "ExportError",
    "ExportsConfig",
    "RowCondition",
    "TableEntitlement",
    "entitlement_version",
    "load_entitlements",
]


class ExportError(Exception):
    """An export could not be built (missing table or column, missing secret, ...).  The message names the
    bureau and what is wrong, never a secret's value."""


Sharing = Literal["无条件", "有条件", "不予共享"]
SHARING_EN: dict[str, str] = {"无条件": "unconditional", "有条件": "conditional", "不予共享": "not shared"}
_SHARING_ALIASES = {
    "unconditional": "无条件",
    "conditional": "有条件",
    "not_shared": "不予共享",
    "not shared": "不予共享",
}

Protection = Literal["keep", "mask_id", "mask_mobile", "mask_bank_card", "mask_name", "mask", "hmac", "drop"]
PROTECTIONS: tuple[str, ...] = Protection.__args__  # type: ignore[attr-defined]
#: keep_first, keep_last of the fixed masks (docs/domain/identifiers.md: ID and bank card 6 + 4, mobile 3 + 4).
MASK_PRESETS: dict[str, tuple[int, int]] = {
    "mask_id": (6, 4),
    "mask_mobile": (3, 4),
    "mask_bank_card": (6, 4),
    "mask_name": (1, 0),
}

CsvEncoding = Literal["utf-8-sig", "gb18030"]
CSV_ENCODINGS: tuple[str, ...] = CsvEncoding.__args__  # type: ignore[attr-defined]
Format = Literal["parquet", "csv"]

_SLUG_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: The default ``signing_key_env``: the variable holding the key that signs the manifests.
SIGNING_KEY_ENV = "QST_EXPORT_SIGNING_KEY"


def _ident(what: str):
    return AfterValidator(lambda v: validate_identifier(v, what))


def _slug(what: str):
    def check(value: str) -> str:
        if not _SLUG_RE.match(value) or len(value) > MAX_IDENTIFIER_LENGTH:
            raise ValueError(
                f"{what} {value!r} must be snake_case: a lowercase ASCII letter, then lowercase "
                f"letters, digits or '_' (at most {MAX_IDENTIFIER_LENGTH} characters)"
            )
        return value

    return AfterValidator(check)


TableName = Annotated[str, _ident("table name")]
ColumnName = Annotated[str, _ident("column name")]
OutputName = Annotated[str, _ident("output name ('as')")]
BureauKey = Annotated[str, _slug("bureau key")]
DepartmentKey = Annotated[str, _slug("department")]
Text = Annotated[str, Field(min_length=1)]


def _rules(issues: Sequence[tuple[tuple, str, tuple | None]]) -> PydanticCustomError:
    """Several problems of one model, each at its own key (``connectors.config``'s ``qst_rules`` errors, which
    its error translator turns into one ``file:line:col: key: message`` issue each)."""
    return PydanticCustomError(
        "qst_rules", "{summary}", {"summary": "; ".join(m for _, m, _ in issues), "issues": issues}
    )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ColumnRule(_Model):
    """How one output column is made from a source column."""

    source: ColumnName | None = Field(None, alias="from")
    protect: Protection
    keep_first: Annotated[StrictInt, Field(ge=0, le=64)] | None = None
    keep_last: Annotated[StrictInt, Field(ge=0, le=64)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _word(cls, data: Any) -> Any:
        return {"protect": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _keeps(self) -> ColumnRule:
        given = [k for k in ("keep_first", "keep_last") if getattr(self, k) is not None]
        if self.protect == "mask":
            missing = [k for k in ("keep_first", "keep_last") if k not in given]
            if missing:
                raise _rules([((k,), "required with 'protect: mask'", ("protect",)) for k in missing])
        elif given:
            raise _rules(
                [((k,), f"goes with 'protect: mask' only, not {self.protect!r}", None) for k in given]
            )
        return self

    def keeps(self) -> tuple[int, int]:
        """(keep_first, keep_last) of a mask."""
        if self.protect == "mask":
            return int(self.keep_first or 0), int(self.keep_last or 0)
        return MASK_PRESETS[self.protect]

    def describe(self) -> str:
        """The protection in a stable short form, for the manifest."""
        if self.protect == "mask":
            return f"mask(keep_first={self.keep_first}, keep_last={self.keep_last})"
        return self.protect


class RowCondition(_Model):
    """One structured row filter (never SQL text): ``all``, ``column`` + ``in``, ``column`` + ``prefix``, or
    ``related``."""

    all: Literal[True] | None = None
    column: ColumnName | None = None
    in_: list[str] | None = Field(None, alias="in", min_length=1)
    prefix: list[Text] | None = Field(None, min_length=1)
    related: ColumnName | None = None

    @field_validator("prefix", mode="before")
    @classmethod
    def _one_prefix(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> RowCondition:
        kinds = [
            k
            for k, v in (
                ("all", self.all),
                ("in", self.in_),
                ("prefix", self.prefix),
                ("related", self.related),
            )
            if v is not None
        ]
        if len(kinds) != 1:
            raise PydanticCustomError(
                "qst_rules",
                "a row condition is exactly one of 'all', {column, in}, {column, prefix}, "
                "{related}; several conditions go in a list (all must hold)",
            )
        if kinds[0] in ("in", "prefix") and self.column is None:
            raise _rules([(("column",), f"required with '{kinds[0]}'", (kinds[0],))])
        if kinds[0] in ("all", "related") and self.column is not None:
            raise _rules([(("column",), f"does not go with '{kinds[0]}'", None)])
        return self

    @property
    def kind(self) -> str:
        return "all" if self.all else "in" if self.in_ is not None else "prefix" if self.prefix else "related"

    def describe(self) -> dict[str, Any]:
        """The condition as plain data (for the manifest)."""
        if self.kind == "all":
            return {"all": True}
        if self.kind == "related":
            return {"related": self.related}
        if self.in_ is not None:  # kind "in"
            return {"column": self.column, "in": list(self.in_)}
        return {"column": self.column, self.kind: list(self.prefix or [])}


def _rows_list(value: Any) -> Any:
    if value == "all":
        return [{"all": True}]
    if isinstance(value, dict):
        return [value]
    return value


class TableEntitlement(_Model):
    """One table a bureau asked for, and the decision."""

    table: TableName
    name: OutputName | None = Field(None, alias="as")
    sharing: Sharing
    purpose: Text | None = None
    agreement: Text | None = None
    valid_until: dt.date | None = None
    reason: Text | None = None
    description: Text | None = None
    rows: list[RowCondition] | None = Field(None, min_length=1)
    columns: dict[ColumnName, ColumnRule] | None = None

    @field_validator("sharing", mode="before")
    @classmethod
    def _sharing_alias(cls, value: Any) -> Any:
        return _SHARING_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("rows", mode="before")
    @classmethod
    def _rows(cls, value: Any) -> Any:
        return _rows_list(value)

    @model_validator(mode="after")
    def _decision(self) -> TableEntitlement:
        issues: list[tuple[tuple, str, tuple | None]] = []
        if self.sharing == "不予共享":
            for key in ("rows", "columns", "purpose", "agreement", "valid_until"):
                if getattr(self, key) is not None:
                    issues.append(
                        (
                            (key,),
                            (
                                f"a table shared 不予共享 (not shared) is never exported: remove "
                                f"{key!r} (or change 'sharing')"
                            ),
                            None,
                        )
                    )
        else:
            if self.rows is None:
                issues.append(
                    (
                        ("rows",),
                        (
                            "required: the rows this bureau may see ('all' for every row, or "
                            'a filter such as {column: division_code, prefix: "440305"})'
                        ),
                        ("table",),
                    )
                )
            if not self.columns:
                issues.append(
                    (
                        ("columns",),
                        ("required: the columns this bureau may see (a column not named is not exported)"),
                        ("table",),
                    )
                )
            elif all(r.protect == "drop" for r in self.columns.values()):
                issues.append(
                    (
                        ("columns",),
                        (
                            "every column is dropped: nothing would be exported (use "
                            "'sharing: 不予共享' to refuse the table)"
                        ),
                        None,
                    )
                )
            if self.rows is not None and len(self.rows) > 1 and any(r.all for r in self.rows):
                issues.append((("rows",), "'all' cannot be combined with other conditions", None))
            if self.sharing == "有条件":
                for key in ("purpose", "agreement"):
                    if getattr(self, key) is None:
                        issues.append(((key,), "required when sharing is 有条件 (conditional)", ("sharing",)))
            elif self.valid_until is not None:
                issues.append((("valid_until",), "goes with sharing 有条件 (conditional) only", None))
        if self.reason is not None and self.sharing != "不予共享":
            issues.append(
                (
                    ("reason",),
                    ("goes with sharing 不予共享 (not shared) only; a shared table states its 'purpose'"),
                    None,
                )
            )
        if issues:
            raise _rules(issues)
        return self

    @property
    def output_name(self) -> str:
        """The stem of this table's files in the package."""
        return self.name or self.table

    @property
    def shared(self) -> bool:
        return self.sharing != "不予共享"

    def exported_columns(self) -> list[tuple[str, ColumnRule]]:
        """(output name, rule) of every column that is exported, in the order of the file."""
        return [(name, rule) for name, rule in (self.columns or {}).items() if rule.protect != "drop"]

    def source_of(self, output: str) -> str:
        rule = (self.columns or {})[output]
        return rule.source or output

    def expired(self, date: dt.date) -> bool:
        """A conditional agreement that no longer covers ``date``."""
        return self.valid_until is not None and date > self.valid_until


class ExportDefaults(_Model):
    formats: list[Format] = Field(default=["parquet", "csv"], min_length=1)
    csv_encoding: CsvEncoding = "utf-8-sig"
    retention: Annotated[StrictInt, Field(ge=1, le=3660)] = 7


class Bureau(_Model):
    """One receiving bureau."""

    title: Text
    department: DepartmentKey | None = None
    formats: list[Format] | None = Field(None, min_length=1)
    csv_encoding: CsvEncoding | None = None
    retention: Annotated[StrictInt, Field(ge=1, le=3660)] | None = None
    tables: list[TableEntitlement] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_outputs(self) -> Bureau:
        issues: list[tuple[tuple, str, tuple | None]] = []
        seen: dict[str, int] = {}
        for i, t in enumerate(self.tables):
            if not t.shared:
                continue
            if t.output_name in seen:
                issues.append(
                    (
                        ("tables", i, "as"),
                        (
                            f"the files {t.output_name!r} are already made by "
                            f"tables[{seen[t.output_name]}]; give one of them "
                            "another 'as'"
                        ),
                        ("tables", i, "table"),
                    )
                )
            seen.setdefault(t.output_name, i)
        if self.formats is not None and len(set(self.formats)) != len(self.formats):
            issues.append((("formats",), "a format is listed twice", None))
        if issues:
            raise _rules(issues)
        return self


class ExportsConfig(_Model):
    """The whole ``exports.yaml``."""

    version: Literal[1]
    hmac_key_env: str | None = None
    signing_key_env: str = SIGNING_KEY_ENV
    crosswalk_table: TableName = "entity_crosswalk"
    defaults: ExportDefaults = ExportDefaults()
    bureaus: dict[BureauKey, Bureau] = Field(min_length=1)

    @field_validator("hmac_key_env", "signing_key_env", mode="before")
    @classmethod
    def _env_name(cls, value: Any) -> Any:
        if value is not None and (not isinstance(value, str) or not _ENV_RE.match(value)):
            # never echo it: people paste the secret itself here
            raise ValueError(
                "must be the NAME of an environment variable (letters, digits, '_'), e.g. "
                "QST_EXPORT_HMAC_KEY, not the secret itself (value not shown)"
            )
        return value

    @model_validator(mode="after")
    def _hmac_needs_key(self) -> ExportsConfig:
        if self.hmac_key_env is not None:
            return self
        issues = [
            (
                ("bureaus", key, "tables", i, "columns", name),
                ("'hmac' needs the secret's environment variable: set 'hmac_key_env' at the top of the file"),
                None,
            )
            for key, b in self.bureaus.items()
            for i, t in enumerate(b.tables)
            for name, rule in (t.columns or {}).items()
            if rule.protect == "hmac"
        ]
        if issues:
            raise _rules(issues)
        return self

    # ---- effective settings ---------------------------------------------------------------------------
    def bureau(self, key: str) -> Bureau:
        try:
            return self.bureaus[key]
        except KeyError:
            raise ExportError(
                f"unknown bureau {key!r}; exports.yaml has: {', '.join(self.bureaus)}"
            ) from None

    def department_of(self, key: str) -> str:
        return self.bureau(key).department or key

    def formats_of(self, key: str) -> list[str]:
        return list(self.bureau(key).formats or self.defaults.formats)

    def csv_encoding_of(self, key: str) -> str:
        return self.bureau(key).csv_encoding or self.defaults.csv_encoding

    def retention_of(self, key: str) -> int:
        return self.bureau(key).retention or self.defaults.retention

    def needs_hmac(self, key: str) -> bool:
        return any(
            rule.protect == "hmac"
            for t in self.bureau(key).tables
            if t.shared
            for _, rule in t.exported_columns()
        )


def entitlement_version(config: ExportsConfig, bureau: str) -> str:
    """``sha256:<hex>`` of the bureau's section, normalized (defaults applied, sorted JSON), with the file's
    global settings: the same entitlement always gives the same version, however the YAML is formatted."""
    section = config.bureau(bureau).model_dump(mode="json", by_alias=True, exclude_none=True)
    section.update(
        department=config.department_of(bureau),
        formats=config.formats_of(bureau),
        csv_encoding=config.csv_encoding_of(bureau),
        retention=config.retention_of(bureau),
    )
    payload = {
        "version": config.version,
        "hmac_key_env": config.hmac_key_env,
        "crosswalk_table": config.crosswalk_table,
        "bureau": bureau,
        "section": section,
    }
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_entitlements(path: str | Path) -> ExportsConfig:
    """Load and validate ``exports.yaml``; raises :class:`connectors.config.ConfigError` listing every problem
    as ``file:line:col: key: message``."""
    return load_yaml_model(path, ExportsConfig)
