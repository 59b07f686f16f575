"""The sale's state as buyers see it: it follows `sale_opens_at` by itself.

`events.status` is what an admin set; the effective state is derived in SQL wherever an event
is read, so the sale opens at `sale_opens_at` on every server at once with no switch to flip:
closed stays closed; with an opening time the sale is on before it and scheduled after;
without one, the stored status stands.
"""

from __future__ import annotations


def sale_status_sql(table: str = "") -> str:
    """A SQL expression for the effective status of `table` (an alias, or none)."""
    p = f"{table}." if table else ""
    return (
        f"(CASE WHEN {p}status = 'closed' THEN 'closed'"
        f" WHEN {p}sale_opens_at IS NULL THEN {p}status"
        f" WHEN {p}sale_opens_at <= now() THEN 'on_sale'"
        " ELSE 'scheduled' END)"
    )
