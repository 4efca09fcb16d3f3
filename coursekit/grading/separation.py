"""Thresholds that mean something: a threshold must pass the reference and fail the degraded baselines.

A threshold derived from reference runs alone (mean + a margin) says nothing when the margin is wider than the
distance to a set of images nobody would call good: after a switch of data set the VAE's FID threshold reached 377,
far above colour noise. ``separating_threshold`` takes the rule's threshold, the reference's values over its seeds
and the same metric of degraded baselines (``coursekit.metrics.degraded``: same evaluator, same number of samples)
and

- keeps the rule's threshold when it lies between the reference's worst seed and the midpoint from there to the
  nearest baseline (geometric mean for FID-like metrics, which grow by factors; arithmetic mean for shares such as
  coverage): a threshold a hair from colour noise (the sprites' VAE rule gave 59.4 against noise's 60.5) fails
  noise only by chance;
- otherwise puts it at that midpoint, and says so (``placed_between``);
- keeps the rule's threshold with a ``warning`` (naming the data set, the figures and what the TA can do) when the
  reference's worst seed is not better than a baseline: no threshold can separate them, and refusing would stop the
  TA's whole `coursekit reference` (on the sprites the GAN's smoke reference has seeds at colour noise's FID);
- keeps the rule's threshold, with a ``warning`` that the TA's log and expected.json show, when the midpoint would sit
  within ``min_margin`` (10%) of the reference's worst seed: an honest model on another machine or seed would fail
  such a threshold by chance (the same grade everywhere comes first), so the reference needs a larger training budget
  before the metric can separate it from the baseline with room to spare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_ADVICE = ("give the reference a larger training budget in the assignment's profiles.json, retrain the evaluator "
                  "(`coursekit reference --dataset ...` does both), or look at the reference's samples "
                  "(autograder/<assignment>/samples_of_the_reference.png): if they look no better than the baseline, the "
                  "assignment's model does not suit this data set")


@dataclass
class Separated:
    threshold: float  # the threshold to grade with
    rule_threshold: float  # what the rule gave
    worst_reference: float  # the reference's worst seed
    best_baseline: str  # the baseline nearest to the reference
    best_baseline_value: float
    placed: bool  # True when the rule's threshold did not separate and was moved between the two
    warning: str = ""  # why the rule's threshold was kept although it does not fail the nearest baseline

    def to_dict(self) -> dict:
        out = {"rule": self.rule_threshold, "worst_reference": self.worst_reference, "nearest_baseline": self.best_baseline,
               "nearest_baseline_value": self.best_baseline_value, "placed_between": self.placed}
        if self.warning:
            out["warning"] = self.warning
        return out


def separating_threshold(metric: str, threshold: float, reference: list[float], baselines: dict[str, float], *,
                         lower_is_better: bool, dataset: str, where: str, geometric: bool = False,
                         advice: str = DEFAULT_ADVICE, digits: int = 3, min_margin: float = 0.10) -> Separated:
    """The threshold for ``metric`` that passes every value in ``reference`` and fails every baseline.

    ``baselines``: {name: value} of the baselines this metric must reject. ``where``: what is being built (e.g.
    "vae, profile smoke"), for the message. ``geometric``: place between on a log scale (FID). The result is rounded
    to ``digits`` decimals towards the baseline side only if it stays strictly between.
    """
    if not reference:
        raise ValueError(f"{where}: no reference values for {metric}")
    if not baselines:
        return Separated(threshold, threshold, max(reference) if lower_is_better else min(reference), "", float("nan"), False)
    worst = max(reference) if lower_is_better else min(reference)
    name, best = (min if lower_is_better else max)(baselines.items(), key=lambda kv: kv[1])
    better = worst < best if lower_is_better else worst > best
    shown = ", ".join(f"{k} {v:.4g}" for k, v in baselines.items())
    if not better:
        warning = (
            f"{where} on the data set {dataset!r}: the reference's worst {metric} over its seeds is {worst:.4g} "
            f"(all seeds: {', '.join(f'{v:.4g}' for v in reference)}), but the degraded baseline '{name}' scores {best:.4g} "
            f"with the same evaluator and number of samples ({shown}); {'lower' if lower_is_better else 'higher'} is better, "
            f"so no {metric} threshold can pass the reference and fail '{name}'. What you can do: {advice}. The rule's threshold is kept: with "
            f"it this metric does not tell the reference from '{name}', and no threshold could.")
        return Separated(threshold, threshold, worst, name, best, False, warning)
    if geometric and worst > 0 and best > 0:
        mid = math.sqrt(worst * best)
    else:
        mid = 0.5 * (worst + best)
    if (worst <= threshold <= mid) if lower_is_better else (mid <= threshold <= worst):
        return Separated(threshold, threshold, worst, name, best, False)
    scale = 10 ** digits
    rounded = math.floor(mid * scale) / scale if lower_is_better else math.ceil(mid * scale) / scale
    placed = rounded if (worst <= rounded < best if lower_is_better else best < rounded <= worst) else mid
    room = (placed - worst) / abs(worst) if lower_is_better else (worst - placed) / abs(worst) if worst else 0.0
    if room < min_margin:
        warning = (f"{where} on the data set {dataset!r}: the {metric} threshold {threshold:.4g} does not fail the degraded "
                   f"baseline '{name}' ({best:.4g}), and a threshold between it and the reference's worst seed ({worst:.4g}) "
                   f"would leave {100 * room:.1f}% of room (less than {100 * min_margin:.0f}%): honest work would fail it by "
                   f"chance, so the rule's threshold is kept and this metric does not tell the reference from '{name}'. "
                   f"What you can do: {advice}")
        return Separated(threshold, threshold, worst, name, best, False, warning)
    return Separated(placed, threshold, worst, name, best, True)
