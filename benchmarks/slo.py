"""Service-level targets (benchmarks/slo.yaml) checked against measured rows (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

SLO_FILE = Path(__file__).with_name("slo.yaml")


@dataclass
class Verdict:
    slo: str
    description: str
    measured: float | None
    threshold: str
    passed: bool | None  # None: not measured in this run

    @property
    def label(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


def _select(rows: list[dict], where: dict) -> list[dict]:
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def _value(rows: list[dict], where: dict, metric: str, how: str = "max") -> float | None:
    picked = [r[metric] for r in _select(rows, where) if r.get(metric) is not None]
    if not picked:
        return None
    return max(picked) if how == "max" else min(picked)


def _growth(rows: list[dict], where: dict, metric: str, over: str) -> float | None:
    """Worst, over targets, of metric at the largest ``over`` / metric at the smallest.

    Needs two distinct ``over`` values for a target (e.g. two bucket sizes); None otherwise.
    """
    worst = None
    for target in sorted({r.get("target") for r in _select(rows, where)}):
        points = sorted((r[over], r[metric]) for r in _select(rows, {**where, "target": target})
                        if r.get(over) is not None and r.get(metric) is not None)
        if len(points) < 2 or points[0][0] == points[-1][0] or not points[0][1]:
            continue
        growth = points[-1][1] / points[0][1]
        worst = growth if worst is None else max(worst, growth)
    return worst


# Bounds a target may set, how each is written and checked. A lower bound is judged on
# the worst (smallest) matching value, an upper bound on the largest.
BOUNDS = {
    "min": (">=", lambda v, t: v >= t),
    "max": ("<", lambda v, t: v < t),
    "at_most": ("<=", lambda v, t: v <= t),
}


def evaluate(rows: list[dict], slo_file: Path = SLO_FILE) -> list[Verdict]:
    spec = yaml.safe_load(slo_file.read_text())
    verdicts = []
    for slo in spec["slos"]:
        metric = slo["metric"]
        bound = next(b for b in BOUNDS if b in slo)
        sign, check = BOUNDS[bound]
        limit = slo[bound]
        if "ratio_to" in slo:
            mine = _value(rows, slo["where"], metric)
            peer = _value(rows, {**slo["where"], **slo["ratio_to"]}, metric)
            measured = mine / peer if mine is not None and peer else None
            threshold = f"{sign} {limit}x {slo['ratio_to']['target']}"
        elif "growth_over" in slo:
            measured = _growth(rows, slo["where"], metric, slo["growth_over"])
            threshold = f"{sign} {limit}x (largest / smallest {slo['growth_over']})"
        else:
            measured = _value(rows, slo["where"], metric, how="min" if bound == "min" else "max")
            threshold = f"{sign} {limit}"
        passed = None if measured is None else check(measured, limit)
        verdicts.append(Verdict(slo["id"], slo["description"], measured, threshold, passed))
    return verdicts
