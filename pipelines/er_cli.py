"""``qst er-train``: retrain the probabilistic entity-resolution models on a home's silver and write them as JSON
(Splink's settings with the trained m and u) into the repository, where every nightly run loads them.

Why a command and not part of the night: a nightly run that retrains is neither reproducible nor fast; the model is
data reviewed like code (the printed match weights say what changed), retrained when the sources change.
The logic lives in :mod:`models.resolution.probabilistic`; this module only wires it to the command line
(registered on the ``qst`` group by ``pipelines.cli``).
"""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("er-train")
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="QST_HOME",
    default="data",
    show_default=True,
    help="The home whose silver canonical tables to train on.",
)
@click.option("--kind", type=click.Choice(["enterprise", "person", "all"]), default="all", show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of the trained models (default: the deployment's trained/).",
)
def er_train(home: Path, kind: str, out: Path | None) -> None:
    """Retrain the entity-resolution models (u by random sampling, m by EM) and write <out>/<kind>.json."""
    from models.resolution import probabilistic, splink_model
    from models.resolution.deterministic import ENTERPRISE_KEYS, PERSON_KEYS, link

    out = out or splink_model.trained_dir()
    related = None
    kinds = ["enterprise", "person"] if kind == "all" else [kind]
    if kinds == ["person"]:
        kinds = [
            "enterprise",
            "person",
        ]  # persons compare by the enterprise they represent: resolve those first
        train_kinds = {"person"}
    else:
        train_kinds = set(kinds)
    for k in kinds:
        started = time.perf_counter()
        records = probabilistic.read_records(home, k)  # type: ignore[arg-type]
        det = link(records, ENTERPRISE_KEYS if k == "enterprise" else PERSON_KEYS)
        if k in train_kinds:
            model = probabilistic.train(records, det, k, related=related)  # type: ignore[arg-type]
            path = splink_model.save_model(k, model, out)  # type: ignore[arg-type]
            meta = model["quanshitong"]
            click.echo(
                f"{k}: trained on {records.height:,} records ({meta['profiles']:,} profiles, "
                f"{meta['keyless']:,} without a validated key) in {time.perf_counter() - started:.0f}s "
                f"-> {path}"
            )
            for line in splink_model.describe(model):
                click.echo(f"  {line}")
        if k == "enterprise" and "person" in kinds:
            model = splink_model.load_model("enterprise", out)  # the one just trained, if it was
            related = probabilistic.resolve(records, det, "enterprise", model=model).records.select(
                "record_id", "cluster"
            )
