"""Nightly bureau exports: each bureau (委办局) receives what ``exports.yaml`` entitles it to, masked,
verifiable and published whole.

* :mod:`models.exports.entitlements` -- the ``exports.yaml`` format (sharing types 无条件 / 有条件 / 不予共享,
  tables, columns, structured row filters, protections) and its loader;
* :mod:`models.exports.protect` -- masks and keyed hashes (vectorized Polars; the HMAC is
  :mod:`models.keyed_hash`, shared with the marts);
* :mod:`models.exports.package` -- build one bureau's dated package from the marts file (the entry points),
  with :mod:`~models.exports.plan` (what to export, checked first), :mod:`~models.exports.write` (Parquet and
  CSV files; formula cells quoted, control characters removed), :mod:`~models.exports.readme` (the bilingual
  README), :mod:`~models.exports.publish` (atomic publication, retention, audit), :mod:`~models.exports.signing`
  (the manifest's Ed25519 signature) and :mod:`~models.exports.results`;
* :mod:`models.exports.verify` -- check a package against its signed manifest.

Plain code: Dagster assets and the ``qst`` commands (``pipelines/export_cli.py``) only call these.
"""

from models.exports.entitlements import ExportError, ExportsConfig, entitlement_version, load_entitlements
from models.exports.package import (
    BureauOutcome,
    PackageResult,
    export_all,
    export_bureau,
    list_packages,
    package_path,
    prune_packages,
    read_audit,
)
from models.exports.verify import VerifyReport, verify_package

__all__ = [
    "BureauOutcome",
    "ExportError",
    "ExportsConfig",
    "PackageResult",
    "VerifyReport",
    "entitlement_version",
    "export_all",
    "export_bureau",
    "list_packages",
    "load_entitlements",
    "package_path",
    "prune_packages",
    "read_audit",
    "verify_package",
]
