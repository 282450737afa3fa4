"""One figure per row: what was measured, the target, and the value reached."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Figure:
    """A measured figure: `value` out of `total` (a ratio) or a bare number when total is None."""

    name: str
    target: str
    value: float
    total: int | None = None
    met: bool | None = None  # None: informational, no target

    @property
    def measured(self) -> str:
        """The value as shown in the table: "25/26 (96.2%)" or "0.93"."""
        if self.total is None:
            return f"{self.value:.2f}"
        share = 100 * self.value / self.total if self.total else 0.0
        return f"{self.value:g}/{self.total} ({share:.1f}%)"


def ratio(name: str, target: str, hits: int, total: int, floor: float | None) -> Figure:
    """A ratio figure, met when hits/total reaches `floor` (None: no target)."""
    met = None if floor is None else (total > 0 and hits / total >= floor)
    return Figure(name, target, hits, total, met)


def render_table(figures: list[Figure]) -> str:
    """The figures as a Markdown table (figure, target, measured, met)."""
    lines = ["| figure | target | measured | met |", "|---|---|---|---|"]
    for fig in figures:
        met = "-" if fig.met is None else ("yes" if fig.met else "NO")
        lines.append(f"| {fig.name} | {fig.target} | {fig.measured} | {met} |")
    return "\n".join(lines) + "\n"
