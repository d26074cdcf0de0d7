"""Nightly bureau exports: each bureau (委办局) receives what ``exports.yaml`` entitles it to, masked,
verifiable and published whole.

* :mod:`models.exports.entitlements` -- the ``exports.yaml`` format (sharing types 无条件 / 有条件 / 不予共享,
  tables, columns, structured row filters, protections) and its loader;
* :mod:`models.exports.protect` -- masks and keyed hashes (vectorized Polars);
* :mod:`models.exports.package` -- build one bureau's dated package from the marts file, publish it
  atomically, prune by retention, audit;
* :mod:`models.exports.verify` -- check a package against its manifest.

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
