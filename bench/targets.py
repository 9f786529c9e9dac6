"""The performance targets and their verdicts, from the figures of one ``python -m bench`` run.

Each target compares two figures measured in the same run (a ratio), or a
figure with a bound (peak RSS). A target whose figures are missing, because
its step failed, was not selected or is not built, says why instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Target:
    """One line of the targets table."""

    what: str
    #: ``"min"``: the measured value must be at least ``bound``; ``"max"``: below it.
    kind: str
    bound: float
    #: ``"%"`` (a ratio, printed as a percentage), ``"MB"``, or ``"x"`` (a ratio, times).
    unit: str
    measured: float | None = None
    #: Why there is no figure, when there is none ("not built", "redis not reachable").
    absent: str = ""

    @property
    def target(self) -> str:
        return ("≥ " if self.kind == "min" else "< ") + self._show(self.bound)

    def _show(self, value: float) -> str:
        if self.unit == "%":
            return f"{value:.0%}"
        if self.unit == "x":
            return f"{value:.0f}x"
        return f"{value:.0f} {self.unit}"

    @property
    def shown(self) -> str:
        if self.measured is None:
            return self.absent or "not measured"
        if self.unit == "%":
            return f"{self.measured:.0%}"
        # One decimal: a bound of 100 MB is not met by 99.96 MB shown as "100 MB".
        return f"{self.measured:.1f}{'' if self.unit == 'x' else ' '}{self.unit}"

    @property
    def verdict(self) -> str:
        """``met``, or ``missed by`` how much (points for a percentage), or why there is none."""
        if self.measured is None:
            return "—"
        if self.kind == "min":
            gap = self.bound - self.measured
            met = self.measured >= self.bound
        else:
            gap = self.measured - self.bound
            met = self.measured < self.bound
        if self.unit == "%":
            amount = f"{abs(gap) * 100:.0f} points"
        elif self.unit == "x":
            amount = f"{abs(gap):.0f}x"
        else:
            amount = f"{abs(gap):.1f} {self.unit}"
        return f"met ({amount} to spare)" if met else f"MISSED by {amount}"


def print_targets(targets: list[Target]) -> None:
    lines = [("target", "measured", "bound", "verdict")]
    lines += [(t.what, t.shown, t.target, t.verdict) for t in targets]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    for n, line in enumerate(lines):
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
