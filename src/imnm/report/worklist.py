"""The screen's result as a person reads it at the terminal: the worklist (tiers in words),
the counts per tier, what could not be assessed, and what the screen read and could not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imnm.knowledge import load_knowledge

if TYPE_CHECKING:
    from rich.console import Console

    from imnm.screen.run import ScreenResult


def print_screen(result: ScreenResult, console: Console, show: int) -> None:
    """Print the first ``show`` rows of the worklist, the counts, the notes and the coverage."""
    from rich.table import Table

    kb = load_knowledge()
    table = Table(title=f"imnm worklist: {result.population:,} children screened "
                        f"({result.source}, {result.engine}, as of {result.as_of})")
    for column in ("person", "what to do", "codes", "peak CK", "x ULN", "anti-HMGCR",
                   "anti-SRP", "months CS alone"):
        table.add_column(column)
    for row in result.rows[:show]:
        table.add_row(row.person_id, kb.label("tier", row.tier), row.diagnosis_codes or "",
                      f"{row.peak_ck_u_per_l:,.0f}" if row.peak_ck_u_per_l else "",
                      f"{row.peak_ck_multiple_of_uln:.1f}" if row.peak_ck_multiple_of_uln
                      else "", row.anti_hmgcr, row.anti_srp,
                      f"{row.months_on_corticosteroid_alone:g}"
                      if row.months_on_corticosteroid_alone is not None else "")
    console.print(table)
    counts = result.counts()
    console.print("per tier: " + ("; ".join(f"{kb.label('tier', k)}: {v}"
                                            for k, v in counts.items()) or "no child listed"))
    if len(result.rows) > show:
        console.print(f"(first {show} of {len(result.rows)} rows; --out writes them all)")
    for missing in result.missing:
        console.print(f"[yellow]not assessable: missing {missing}[/]")
    for note in result.notes:
        console.print(f"note: {note}")
    read = Table(title="what the screen read (records)", title_justify="left")
    for column in ("input", "count", "what"):
        read.add_column(column)
    for line in sorted(result.coverage, key=lambda c: (not c.unread, c.input, c.item)):
        if line.count or line.item in ("rows", "in_code_set"):
            read.add_row(line.input, f"{line.count:,}",
                         f"[yellow]{line.meaning}[/]" if line.unread else line.meaning)
    console.print(read)
    if not result.rows:
        unread = sum(c.count for c in result.unread())
        console.print("no child listed: nobody matched among what was read"
                      + (f"; {unread:,} records could not be read or used (above)"
                         if unread else ""))
