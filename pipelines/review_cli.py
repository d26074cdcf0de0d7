"""``qst review``: the review queue of borderline entity pairs, and the decisions the next night honours.

The rules (which pairs are open, which records exist, how a decision is stored) live in :mod:`models.gold`;
this module only wires them to the command line (registered on the ``qst`` group by ``pipelines.cli``).
"""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.cli_options import HOME_OPTION


@click.group()
def review() -> None:
    """The review queue of borderline entity pairs, and must-link / cannot-link decisions the next run honours."""


@review.command("list")
@HOME_OPTION
@click.option("--kind", type=click.Choice(["enterprise", "person"]), default=None, help="Only this kind.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also pairs already decided and pairs whose records ended up in one entity anyway.",
)
def review_list(home: Path, kind: str | None, limit: int, show_all: bool) -> None:
    """The most uncertain open pairs of the last run (undecided, still two entities), both records side by side."""
    from models.gold.build import read_gold
    from models.gold.review import open_pairs

    try:
        queue = read_gold(home, "review_queue")
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    if kind:
        queue = queue.filter(entity_type=kind)
    total = queue.height
    if not show_all:
        queue = open_pairs(queue)
    click.echo(
        f"{queue.height:,} open pair(s) to review"
        + (f" ({kind})" if kind else "")
        + ("" if show_all else f" of {total:,} in the queue (--all shows every one)")
    )
    for r in queue.head(limit).to_dicts():
        decided = f"  decided: {r['decision']} by {r['reviewer']}" if r.get("decision") else ""
        click.echo(
            f"\n  [{r['entity_type']}] p={r['match_probability']:.3f} w={r['match_weight'] or 0:.2f} "
            f"status={r['status']}{decided}"
        )
        for side in ("l", "r"):
            click.echo(
                f"    {r[f'record_id_{side}']}  ({r.get(f'{side}_entity_id')})  {r.get(f'{side}_name')}  "
                f"{r.get(f'{side}_address') or ''}"
            )
        click.echo(f"    levels: {r['levels']}")
    click.echo("\ndecide with: qst review decide --kind KIND LEFT RIGHT must-link|cannot-link --by NAME")


@review.command("decide")
@HOME_OPTION
@click.option("--kind", type=click.Choice(["enterprise", "person"]), required=True)
@click.argument("left")
@click.argument("right")
@click.argument("decision", type=click.Choice(["must-link", "cannot-link"]))
@click.option("--by", "reviewer", required=True, help="Who decided (kept with the decision).")
@click.option("--note", default="", help="Why.")
def review_decide(
    home: Path, kind: str, left: str, right: str, decision: str, reviewer: str, note: str
) -> None:
    """Record that two records are (must-link) or are not (cannot-link) the same entity; the next run honours it."""
    from models.gold.build import known_records
    from models.gold.review import record_decision

    try:
        known = known_records(home, kind, [left, right])
        record_decision(home, kind, left, right, decision, reviewer, note, known_records=known)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"recorded: {left} {decision} {right} by {reviewer}; the next run (qst run) honours it")
