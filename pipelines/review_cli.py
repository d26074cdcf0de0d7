"""``qst review``: the review queue of borderline entity pairs, and the decisions every later night honours.

The rules (which items are open, which records exist, how a decision is stored) live in :mod:`models.gold`;
this module only wires them to the command line (registered on the ``qst`` group by ``pipelines.cli``).
"""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.cli_options import HOME_OPTION


@click.group()
def review() -> None:
    """The review queue (one item per pair of entities), and must-link / cannot-link decisions every later run honours."""


@review.command("list")
@HOME_OPTION
@click.option("--kind", type=click.Choice(["enterprise", "person"]), default=None, help="Only this kind.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also the items already decided (and what the decision did tonight).",
)
def review_list(home: Path, kind: str | None, limit: int, show_all: bool) -> None:
    """The open items of the last run (two entities, undecided), the most consequential first, each with both
    records side by side and why it is in the queue, in Chinese."""
    from models.gold.build import read_gold
    from models.gold.queue import open_groups, open_items

    try:
        queue = read_gold(home, "review_queue")
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    if kind:
        queue = queue.filter(entity_type=kind)
    total = queue.height
    if not show_all:
        queue = open_items(queue)
    groups = open_groups(queue)
    click.echo(
        f"{queue.height:,} open item(s) to review"
        + (f" ({kind})" if kind else "")
        + ("" if show_all else f" of {total:,} in the queue (--all shows the decided ones)")
    )
    if groups:
        click.echo(f"{groups:,} question(s): items that share an entity are one, shown together")
    if queue.height > limit:
        click.echo(f"the first {limit:,} shown, most consequential first (--limit)")
    for r in queue.head(limit).to_dicts():
        decided = f"  decided: {r['decision']} by {r['reviewer']}" if r.get("decision") else ""
        rank = f"#{r['rank']} " if r.get("rank") is not None else ""
        p = r.get("match_probability")
        group = f" group {r['group']} ({r['group_items']} items)" if (r.get("group_items") or 0) > 1 else ""
        click.echo(
            f"\n  {rank}[{r['entity_type']}] {r.get('l_entity_id')} ~ {r.get('r_entity_id')}  "
            f"p={'-' if p is None else f'{p:.3f}'} status={r['status']} pairs={r.get('pairs')}{group}{decided}"
        )
        for side in ("l", "r"):
            click.echo(
                f"    {r[f'record_id_{side}']}  {r.get(f'{side}_name')}  {r.get(f'{side}_address') or ''}"
            )
        click.echo(f"    {r.get('explanation_zh') or ''}")
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
    """Record that two records are (must-link) or are not (cannot-link) the same entity; every later run honours it."""
    from models.gold.build import known_records
    from models.gold.review import record_decision

    try:
        known = known_records(home, kind, [left, right])
        record_decision(home, kind, left, right, decision, reviewer, note, known_records=known)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"recorded: {left} {decision} {right} by {reviewer}; every later run (qst run) honours it")
