"""Per-sample copy detection that light transformations do not dodge.

``data_copying_test`` (memorisation.py) asks a set-level question: are the samples, as a whole,
closer to the training set than fresh data is? A set that copies half of its images and
draws the other half honestly dodges it, and so does a copy that was mirrored, shifted by a
pixel or had a few pixels recoloured (those land *further* from their source in pixel space than
many real images are from their nearest neighbour). This module asks, for every sample, whether
it reproduces some reference image (training *or* held-out: the grader has both) up to

- a mirror image (left-right, upside down) and a translation by up to ``shifts`` pixels in x and
  y: the sample is compared with every transformed reference on the region where the two overlap
  only, and the squared distance is rescaled to the whole image (``HW / overlap`` pixels). The
  uncovered border is never filled in, so whatever a sample puts there can neither hide nor fake a
  match;
- scattered changed pixels: among the sample's nearest transformed references (``shortlist``
  per sample, by whole-image distance, which a few changed pixels do not reorder), the *changed
  area* is the share of overlap pixels that differ from the reference (RGB distance above
  ``tolerance``) together with the majority of their 3x3 neighbourhood. Isolated recoloured
  pixels do not count; a different drawing (another emoji, a changed patch) does;
- half an image: the distance of each half of the sample (top, bottom, left, right) to the same
  half of any transformed reference, rescaled to the whole image.

Distances are Euclidean in RGB pixel space (images as 3*H*W vectors in [0, 1], as in
``data_copying_test``). Thresholds are measured, not typed (``calibrate_copy_thresholds``): the
distance (changed area, half distance) below which fresh real images almost never lie, measured by
comparing real images with the other real images, with the same transformations. Real data has
near-duplicates (flags of similar countries, clock faces, skin-tone variants), so a fresh real
image is flagged now and then: the calibration reports that *base rate*, and a sample set counts
as copying only when its flagged share is above ``min_share`` and ``margin`` times the base
rate's upper 95% bound, and improbable for fresh real data (one-sided binomial p below ``alpha``
at that bound). Measured numbers: ``coursekit/metrics/README.md``.

Exact repeats *among the samples* (a collapsed generator) are reported apart, as
``duplicate_rate``: repeating oneself is not copying the data.
"""

from __future__ import annotations

import math
from pathlib import Path
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

QUANTILE = 0.01  # per criterion: the share of fresh real images allowed below its threshold
TOLERANCE = 0.1  # RGB distance (of 0..sqrt(3)) under which two pixel colours count as the same
MIN_SHARE = 0.05  # a set is copying only above this flagged share ...
MARGIN = 2.0  # ... and above MARGIN times the base rate of fresh real images (its upper bound) ...
ALPHA = 1e-3  # ... and when so many flags are improbable for fresh real data (binomial p < ALPHA)
SHIFTS = 2
MIRRORS = ("horizontal", "vertical", "both")
SHORTLIST = 16
CRITERIA = ("whole", "changed_area", "half")
HALVES = ("top", "bottom", "left", "right")
_REGION_QUADS = {"whole": (0, 1, 2, 3), "top": (0, 1), "bottom": (2, 3), "left": (0, 2), "right": (1, 3)}


# --- transformations -----------------------------------------------------------------------
@dataclass(frozen=True)
class Transform:
    """A reference image mirrored (``mirror``), then moved ``dy`` pixels down and ``dx`` right."""

    mirror: str  # "none", "horizontal", "vertical" or "both" (a half turn)
    dy: int
    dx: int

    def describe(self) -> str:
        parts = [] if self.mirror == "none" else [{"horizontal": "mirrored left-right", "vertical": "mirrored upside down",
                                                   "both": "turned upside down"}[self.mirror]]
        if self.dy or self.dx:
            parts.append(f"shifted by ({self.dy:+d}, {self.dx:+d}) pixels (down, right)")
        return ", ".join(parts) or "as is"


def copy_transforms(shifts: int = SHIFTS, mirrors=MIRRORS) -> list[Transform]:
    """Identity first, then every mirror in ``mirrors`` combined with every shift up to ``shifts`` pixels."""
    for m in mirrors:
        if m not in ("horizontal", "vertical", "both"):
            raise ValueError(f"mirrors may hold 'horizontal', 'vertical' and 'both', got {m!r}")
    if shifts < 0:
        raise ValueError(f"shifts must be >= 0, got {shifts}")
    offsets = sorted(((dy, dx) for dy in range(-shifts, shifts + 1) for dx in range(-shifts, shifts + 1)),
                     key=lambda o: (abs(o[0]) + abs(o[1]), o))
    return [Transform(m, dy, dx) for m in ("none", *dict.fromkeys(mirrors)) for dy, dx in offsets]


def _mirror(x: torch.Tensor, mirror: str) -> torch.Tensor:
    """Mirror images (..., H, W)."""
    if mirror == "none":
        return x
    return x.flip({"horizontal": (-1,), "vertical": (-2,), "both": (-2, -1)}[mirror])


def _overlap(t: Transform, h: int, w: int, y0: int = 0, y1: int | None = None, x0: int = 0, x1: int | None = None):
    """Rows/cols [ya, yb) x [xa, xb) of the sample's window [y0, y1) x [x0, x1) that the moved reference covers."""
    y1, x1 = h if y1 is None else y1, w if x1 is None else x1
    return max(y0, t.dy), min(y1, h + t.dy), max(x0, t.dx), min(x1, w + t.dx)


def _aligned(refs: torch.Tensor, ids: torch.Tensor, tids: torch.Tensor, tlist: list[Transform]):
    """References ``ids`` under transforms ``tids``, zero outside the overlap: ((K, C, H, W), valid (K, H, W))."""
    k, (h, w) = len(ids), refs.shape[-2:]
    out = refs.new_zeros((k, *refs.shape[1:]))
    valid = torch.zeros(k, h, w, dtype=torch.bool)
    for t_id in torch.unique(tids).tolist():
        sel = (tids == t_id).nonzero().flatten()
        t = tlist[t_id]
        ya, yb, xa, xb = _overlap(t, h, w)
        out[sel, ..., ya:yb, xa:xb] = _mirror(refs[ids[sel]], t.mirror)[..., ya - t.dy : yb - t.dy, xa - t.dx : xb - t.dx]
        valid[sel, ya:yb, xa:xb] = True
    return out, valid


# --- the search --------------------------------------------------------------------------------
def _search(samples: torch.Tensor, refs: torch.Tensor, tlist: list[Transform], exclude: torch.Tensor | None,
            shortlist: int, chunk: int = 512) -> dict:
    """Nearest transformed reference of every sample, for the whole image and each half.

    samples (M, 3, H, W), refs (N, 3, H, W) float32 RGB. Each image is cut into quadrants; per
    transform, one matrix product per quadrant gives every region's inner products (whole = all
    four, a half = two), and ||s||^2 + ||r||^2 - 2 s.r the squared distances over the overlap.
    exclude (M,): a reference index each sample must not be matched with (itself), or -1.
    Returns {region: (squared distance rescaled to H*W pixels (M,) float64, ref (M,), transform (M,))}
    and "shortlist": the ``shortlist`` nearest (ref, transform) pairs by whole-image distance.
    """
    m, _, h, w = samples.shape
    n = len(refs)
    h2, w2 = h // 2, w // 2
    quads = [(0, h2, 0, w2), (0, h2, w2, w), (h2, h, 0, w2), (h2, h, w2, w)]
    inf = float("inf")
    best = {g: [torch.full((m,), inf, dtype=torch.float64), torch.zeros(m, dtype=torch.long), torch.zeros(m, dtype=torch.long)]
            for g in _REGION_QUADS}
    c = min(shortlist, n * len(tlist))
    sl_val = torch.full((m, c), inf, dtype=torch.float32)
    sl_ref = torch.zeros(m, c, dtype=torch.long)
    sl_t = torch.zeros(m, c, dtype=torch.long)
    mirrored = {}
    rows = torch.arange(m)
    for t_id, t in enumerate(tlist):
        if t.mirror not in mirrored:
            mirrored[t.mirror] = _mirror(refs, t.mirror)
        rt = mirrored[t.mirror]
        windows = [_overlap(t, h, w, *q) for q in quads]
        area = [max(0, yb - ya) * max(0, xb - xa) for ya, yb, xa, xb in windows]
        r_q = [(-2.0 * rt[:, :, ya - t.dy : yb - t.dy, xa - t.dx : xb - t.dx].reshape(n, -1)).T.contiguous()
               if a else None for (ya, yb, xa, xb), a in zip(windows, area)]  # (3 hw, N), times -2
        rn_q = [(r * r).sum(0) / 4.0 if r is not None else torch.zeros(n) for r in r_q]  # ||r||^2 per quadrant
        for lo in range(0, m, chunk):
            s = samples[lo : lo + chunk]
            mc = len(s)
            s_q = [s[:, :, ya:yb, xa:xb].reshape(mc, -1) if a else None for (ya, yb, xa, xb), a in zip(windows, area)]
            p = [sq @ rq if a else torch.zeros(mc, n) for sq, rq, a in zip(s_q, r_q, area)]  # -2 s.r
            sn_q = [(sq * sq).sum(1) if a else torch.zeros(mc) for sq, a in zip(s_q, area)]
            ex = None
            if exclude is not None:
                e = exclude[lo : lo + mc]
                keep = e >= 0
                ex = (rows[:mc][keep], e[keep])
            top, bottom = p[0] + p[1], p[2] + p[3]
            region_p = {"whole": top + bottom, "top": top, "bottom": bottom, "left": p[0] + p[2], "right": p[1] + p[3]}
            for g, qs in _REGION_QUADS.items():
                a_g = sum(area[q] for q in qs)
                if a_g == 0:
                    continue
                d = region_p[g]
                d += sum(rn_q[q] for q in qs)  # ||r||^2 - 2 s.r, (mc, N)
                if ex is not None:
                    d[ex] = inf
                v, i = d.min(1)
                sn = sum(sn_q[q] for q in qs)
                d2 = ((v.double() + sn.double()).clamp_min(0.0)) * (h * w / a_g)
                cur = best[g]
                better = d2 < cur[0][lo : lo + mc]
                cur[0][lo : lo + mc] = torch.where(better, d2, cur[0][lo : lo + mc])
                cur[1][lo : lo + mc] = torch.where(better, i, cur[1][lo : lo + mc])
                cur[2][lo : lo + mc] = torch.where(better, torch.full_like(i, t_id), cur[2][lo : lo + mc])
                if g == "whole" and c:
                    k = min(c, n)
                    tv, ti = d.topk(k, dim=1, largest=False)
                    tv = (tv + sn[:, None]) * (h * w / a_g)
                    allv = torch.cat([sl_val[lo : lo + mc], tv], 1)
                    allr = torch.cat([sl_ref[lo : lo + mc], ti], 1)
                    allt = torch.cat([sl_t[lo : lo + mc], torch.full_like(ti, t_id)], 1)
                    keepv, keepi = allv.topk(c, dim=1, largest=False)
                    sl_val[lo : lo + mc] = keepv
                    sl_ref[lo : lo + mc] = allr.gather(1, keepi)
                    sl_t[lo : lo + mc] = allt.gather(1, keepi)
    out = {g: tuple(v) for g, v in best.items()}
    out["shortlist"] = (sl_ref, sl_t, torch.isfinite(sl_val))
    return out


def _region_mask(region: str, h: int, w: int) -> torch.Tensor:
    mask = torch.zeros(h, w, dtype=torch.bool)
    h2, w2 = h // 2, w // 2
    sl = {"whole": (slice(None), slice(None)), "top": (slice(0, h2), slice(None)), "bottom": (slice(h2, None), slice(None)),
          "left": (slice(None), slice(0, w2)), "right": (slice(None), slice(w2, None))}[region]
    mask[sl] = True
    return mask


def _exact_distance(samples: torch.Tensor, refs: torch.Tensor, ids, tids, tlist, regions) -> torch.Tensor:
    """Distance (float64, rescaled to H*W pixels) of each sample to reference ids[i] under tids[i], over regions[i]."""
    h, w = samples.shape[-2:]
    al, valid = _aligned(refs, ids, tids, tlist)
    region = torch.stack([_region_mask(g, h, w) for g in regions]) & valid  # (M, H, W)
    sq = ((samples.double() - al.double()) ** 2).sum(1)  # (M, H, W)
    area = region.sum((1, 2)).double()
    d2 = (sq * region).sum((1, 2)) * (h * w) / area.clamp_min(1)
    return torch.where(area > 0, d2.sqrt(), torch.full_like(d2, float("inf")))


def _changed_area(samples: torch.Tensor, refs: torch.Tensor, sl_ref, sl_t, sl_ok, tlist, tolerance: float, chunk: int = 4096):
    """Smallest changed area of each sample over its shortlisted (reference, transform) pairs: ((M,), index into the shortlist (M,))."""
    m, c = sl_ref.shape
    out = torch.full((m, c), float("inf"), dtype=torch.float64)
    flat_ref, flat_t = sl_ref.reshape(-1), sl_t.reshape(-1)
    kernel = torch.ones(1, 1, 3, 3)
    for lo in range(0, m * c, chunk):
        hi = min(m * c, lo + chunk)
        al, valid = _aligned(refs, flat_ref[lo:hi], flat_t[lo:hi], tlist)
        s = samples[torch.arange(lo, hi) // c]
        changed = (((s - al) ** 2).sum(1) > tolerance**2) & valid  # (K, H, W)
        n_changed = F.conv2d(changed[:, None].float(), kernel, padding=1)[:, 0]
        n_valid = F.conv2d(valid[:, None].float(), kernel, padding=1)[:, 0]
        patch = changed & (2 * n_changed > n_valid)  # it and most of its 3x3 neighbourhood changed
        out.view(-1)[lo:hi] = patch.sum((1, 2)).double() / valid.sum((1, 2)).clamp_min(1).double()
    out[~sl_ok] = float("inf")
    return out.min(1)


def _rgb(images, palette) -> torch.Tensor:
    from ..data.convert import indices_to_rgb

    idx = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images.cpu())
    if idx.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {tuple(idx.shape)}")
    return indices_to_rgb(idx.long(), palette).float()  # (N, 3, H, W)


def _measure(samples_rgb, refs_rgb, tlist, exclude, shortlist, tolerance) -> dict:
    """Per sample: the nearest transformed reference by whole-image distance, changed area and half distance."""
    res = _search(samples_rgb, refs_rgb, tlist, exclude, shortlist)
    m = len(samples_rgb)
    whole_ref, whole_t = res["whole"][1], res["whole"][2]
    whole_d = _exact_distance(samples_rgb, refs_rgb, whole_ref, whole_t, tlist, ["whole"] * m)
    half_d2 = torch.stack([res[g][0] for g in HALVES], 1)  # (M, 4)
    which = half_d2.argmin(1)
    half_ref = torch.stack([res[g][1] for g in HALVES], 1).gather(1, which[:, None])[:, 0]
    half_t = torch.stack([res[g][2] for g in HALVES], 1).gather(1, which[:, None])[:, 0]
    half_names = [HALVES[i] for i in which.tolist()]
    half_d = _exact_distance(samples_rgb, refs_rgb, half_ref, half_t, tlist, half_names)
    sl_ref, sl_t, sl_ok = res["shortlist"]
    area, pick = _changed_area(samples_rgb, refs_rgb, sl_ref, sl_t, sl_ok, tlist, tolerance)
    rows = torch.arange(m)
    return {
        "whole": (whole_d, whole_ref, whole_t, ["whole"] * m),
        "changed_area": (area, sl_ref[rows, pick], sl_t[rows, pick], ["whole"] * m),
        "half": (half_d, half_ref, half_t, half_names),
    }


# --- calibration ---------------------------------------------------------------------------
def _threshold(values: np.ndarray, quantile: float) -> float:
    """A value with (about) ``quantile`` of ``values`` below it, halfway between two measured values.

    At most floor(quantile * n) values lie below it; if more than that tie at the smallest value,
    all of those lie below it (the base rate then exceeds the quantile, and says so).
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return 0.0
    k = int(math.floor(quantile * len(v)))  # values allowed below the threshold
    j = k
    while 0 < j < len(v) and not v[j] > v[j - 1]:
        j -= 1
    if j == 0:  # ties at the minimum beyond the allowed share: take all of them
        j = int(np.searchsorted(v, v[0], side="right"))
    if j >= len(v):
        return float(v[-1]) * 1.000001 + 1e-12
    return float((v[j - 1] + v[j]) / 2) if j > 0 else float(v[0]) * 0.5


def _upper_bound(flagged: int, n: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen ``flagged`` times in ``n``."""
    from scipy.stats import beta

    return 1.0 if flagged >= n else float(beta.ppf(level, flagged + 1, n - flagged))


@dataclass(frozen=True)
class CopyCalibration:
    """Thresholds measured on real images, and how often a fresh real image falls below them.

    thresholds:      {"whole": RGB distance, "changed_area": share of pixels, "half": RGB distance}
    base_rate:       share of the calibration images flagged by at least one criterion (the
                     expected share of flagged fresh real images); base_rates: per criterion
    base_rate_upper: its one-sided 95% upper bound (Clopper-Pearson), used by the set-level rule
    settings:        shifts, mirrors, tolerance, shortlist: ``find_copies`` must use the same
    """

    thresholds: dict
    quantile: float
    base_rate: float
    base_rate_upper: float
    base_rates: dict
    n_images: int
    pool: str
    settings: dict

    def to_dict(self) -> dict:
        return {"thresholds": dict(self.thresholds), "quantile": self.quantile, "base_rate": self.base_rate,
                "base_rate_upper": self.base_rate_upper, "base_rates": dict(self.base_rates), "n_images": self.n_images,
                "pool": self.pool, "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.settings.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "CopyCalibration":
        s = dict(d["settings"])
        s["mirrors"] = tuple(s["mirrors"])
        return cls(thresholds=dict(d["thresholds"]), quantile=float(d["quantile"]), base_rate=float(d["base_rate"]),
                   base_rate_upper=float(d["base_rate_upper"]), base_rates=dict(d["base_rates"]), n_images=int(d["n_images"]),
                   pool=str(d["pool"]), settings=s)


def _settings(shifts, mirrors, tolerance, shortlist) -> dict:
    return {"shifts": int(shifts), "mirrors": tuple(mirrors), "tolerance": float(tolerance), "shortlist": int(shortlist)}


def _flags(measured: dict, thresholds: dict) -> dict:
    return {k: measured[k][0] < thresholds[k] for k in CRITERIA}


def calibrate_copy_thresholds(train, heldout, palette, quantile: float = QUANTILE, pool: str = "all",
                              shifts: int = SHIFTS, mirrors=MIRRORS, tolerance: float = TOLERANCE,
                              shortlist: int = SHORTLIST) -> CopyCalibration:
    """Measure each criterion's threshold on real images: the ``quantile`` of their distances to other real images.

    train (N1, H, W), heldout (N2, H, W) palette indices (heldout may be None with pool="all").
    pool="all" (default): every image of train and heldout against all the others (leave-one-out),
    which is the grader's situation (a fresh image against train + held-out) with ten times the
    images of pool="heldout": held-out images against the training images only.
    """
    pal = palette
    if pool == "all":
        parts = [x for x in (train, heldout) if x is not None and len(x)]
        queries = torch.cat([_rgb(x, pal) for x in parts])
        refs, exclude = queries, torch.arange(len(queries))
    elif pool == "heldout":
        queries, refs, exclude = _rgb(heldout, pal), _rgb(train, pal), None
    else:
        raise ValueError(f"pool must be 'all' or 'heldout', got {pool!r}")
    if len(queries) < 2:
        raise ValueError("calibration needs at least two real images")
    tlist = copy_transforms(shifts, mirrors)
    measured = _measure(queries, refs, tlist, exclude, shortlist, tolerance)
    thresholds = {k: _threshold(measured[k][0].numpy(), quantile) for k in CRITERIA}
    flags = _flags(measured, thresholds)
    n = len(queries)
    anyf = torch.stack([flags[k] for k in CRITERIA]).any(0)
    flagged = int(anyf.sum())
    return CopyCalibration(thresholds=thresholds, quantile=float(quantile), base_rate=flagged / n,
                           base_rate_upper=_upper_bound(flagged, n),
                           base_rates={k: float(flags[k].double().mean()) for k in CRITERIA}, n_images=n, pool=pool,
                           settings=_settings(shifts, mirrors, tolerance, shortlist))


def critical_count(m: int, base_rate: float, min_share: float = MIN_SHARE, alpha: float = ALPHA,
                   margin: float = MARGIN) -> int:
    """Smallest number of flagged samples among ``m`` that counts as copying.

    The flagged share must exceed both ``min_share`` and ``margin`` times ``base_rate`` (a
    generator is not fresh data, and the base rate is an estimate), and fresh real data flagged at
    ``base_rate`` must reach the count with probability below ``alpha`` (one-sided binomial tail,
    which decides for small m, where a few flagged fresh images are a large share).
    """
    from scipy.stats import binom

    k = int(math.floor(max(min_share, margin * base_rate) * m)) + 1
    while k <= m and binom.sf(k - 1, m, base_rate) >= alpha:
        k += 1
    return k


# --- the report ----------------------------------------------------------------------------
@dataclass
class Matches:
    """Per sample, its nearest reference under one criterion."""

    distance: torch.Tensor  # (M,) float64: RGB distance, or share of pixels for changed_area
    split: list  # name of the reference split holding the match
    index: torch.Tensor  # (M,) long, position in that split
    transform: list  # Transform applied to the reference
    region: list  # "whole" or the half compared
    flagged: torch.Tensor  # (M,) bool: below the threshold


@dataclass
class CopyReport:
    """What ``find_copies`` measured. Distances and flags are per sample; shares are of all samples."""

    whole: Matches  # nearest transformed reference, whole image
    changed_area: Matches  # least changed area (scattered changed pixels ignored)
    half: Matches  # nearest half (top, bottom, left, right) of a transformed reference
    copy: torch.Tensor  # (M,) bool: flagged by any criterion
    exact_copy: torch.Tensor  # (M,) bool: pixel-identical to a reference
    copy_split: list  # per sample, the split of the match that flagged it ("" if none)
    shares: dict  # copy, whole, changed_area, half, exact_copy; copy_of: {split: share}
    duplicate_rate: float  # exact repeats among the samples (not copying the data)
    thresholds: dict
    base_rate: float  # expected share of flagged fresh real images
    base_rate_upper: float
    critical_count: int  # flagged samples needed to call the set copying
    copying: bool
    verdict: str  # "copying" or "no sign of copying"
    message: str
    seconds: float
    n_samples: int
    n_references: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Plain numbers for JSON: shares, base rate, thresholds, verdict and message."""
        return {"copy_share": self.shares["copy"], "whole_share": self.shares["whole"],
                "changed_area_share": self.shares["changed_area"], "half_share": self.shares["half"],
                "exact_copy_share": self.shares["exact_copy"], "copy_of": dict(self.shares["copy_of"]),
                "duplicate_rate": self.duplicate_rate, "base_rate": self.base_rate,
                "critical_share": self.critical_count / max(1, self.n_samples), "thresholds": dict(self.thresholds),
                "copying": self.copying, "verdict": self.verdict, "message": self.message}


def _as_references(references) -> dict:
    if isinstance(references, dict):
        refs = {str(k): v for k, v in references.items() if v is not None and len(v)}
    else:
        refs = {"reference": references}
    if not refs:
        raise ValueError("find_copies needs at least one reference image")
    return refs


def _message(r: dict) -> str:
    m, k = r["m"], r["k"]
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    mir = {"horizontal": "left-right", "vertical": "upside-down", "both": "half-turned"}
    ways = [f"its {' or '.join(mir[x] for x in r['mirrors'])} mirror image"] if r["mirrors"] else []
    if r["shifts"]:
        ways.append(f"a shift of it by up to {r['shifts']} pixels")
    of = f"{m} distinct samples" if r.get("distinct") else f"{m} samples"
    text = (f"{k} of {of} ({pct(k / max(1, m))}) are within the distance that separates distinct real images "
            f"from a reference image ({' or '.join(r['splits'])}){', or ' + ' or '.join(ways) if ways else ''}: "
            f"{r['n_whole']} as whole images, {r['n_changed']} apart from scattered changed pixels, {r['n_half']} in one half")
    if k:
        text += " (nearest: " + ", ".join(f"{n} {s}" for s, n in r["by_split"].items() if n) + ")"
    text += f"; {r['n_exact']} are pixel-identical to a reference image."
    text += (f" Fresh real images are flagged this way {pct(r['base'])} of the time; for {m} samples this check calls a set "
             f"copying from {r['crit']} flagged samples ({pct(r['crit'] / max(1, m))}) on")
    text += (": these samples match reference images far more often than fresh data does." if r["copying"]
             else ": no sign of copying.")
    if r.get("distinct") and r["dup"] > 0:
        text += (f" Separately, {pct(r['dup'])} of the {r['m_all']} samples repeat another sample exactly: low diversity "
                 "(greedy sampling, a collapsed generator), which is measured on its own and is not copying the data; "
                 "each distinct image was compared once.")
    else:
        text += (f" Separately, {pct(r['dup'])} of the samples repeat another sample exactly (low diversity, which is not "
                 "copying the data)." if r["dup"] > 0 else " No sample repeats another exactly.")
    return text


def find_copies(samples, references, palette, calibration: CopyCalibration | None = None, shifts: int = SHIFTS,
                mirrors=MIRRORS, tolerance: float = TOLERANCE, shortlist: int = SHORTLIST, quantile: float = QUANTILE,
                min_share: float = MIN_SHARE, alpha: float = ALPHA, margin: float = MARGIN, distinct: bool = False) -> CopyReport:
    """Which samples reproduce a reference image, whole, mirrored, shifted, with scattered pixels changed, or in half?

    samples (M, H, W) palette indices; references {split name: (N, H, W)} (the training AND the
    held-out split: a sample must copy neither) or one (N, H, W) stack; palette (K, 3) uint8.
    calibration: from ``calibrate_copy_thresholds`` (same shifts, mirrors, tolerance and
    shortlist); None measures it here on the references themselves (leave-one-out), which costs
    about as much as comparing len(references) samples.
    Returns a CopyReport; ``copying`` = at least ``critical_count(M, base_rate_upper)`` samples flagged.
    distinct: compare each distinct sample once (the report's per-sample fields are then of the distinct samples,
    in order of first appearance, and M their number): samples that repeat each other (greedy sampling, a
    collapsed generator) are low diversity, reported as ``duplicate_rate`` of all the samples, and one repeated
    image that happens to lie near a real one does not make a set "copying".
    """
    from .diversity import duplicate_rate

    start = time.perf_counter()
    refs = _as_references(references)
    settings = _settings(shifts, mirrors, tolerance, shortlist)
    if calibration is None:
        names = list(refs)
        calibration = calibrate_copy_thresholds(torch.cat([torch.as_tensor(np.asarray(refs[n])).long() if not torch.is_tensor(refs[n])
                                                           else refs[n].cpu().long() for n in names]), None, palette,
                                                quantile=quantile, pool="all", **{k: settings[k] for k in settings})
    elif dict(calibration.settings) != settings:
        raise ValueError(f"the calibration was measured with {calibration.settings}, find_copies was asked for {settings}: "
                         "calibrate with the same settings")
    s_idx = torch.as_tensor(np.asarray(samples) if not torch.is_tensor(samples) else samples.cpu()).long()
    m_all = len(s_idx)
    dup = duplicate_rate(s_idx) if m_all else 0.0
    if distinct and m_all:
        first: dict = {}
        for i, row in enumerate(s_idx.reshape(m_all, -1)):
            first.setdefault(row.numpy().tobytes(), i)
        s_idx = s_idx[sorted(first.values())]
    m = len(s_idx)
    names = list(refs)
    r_idx = [torch.as_tensor(np.asarray(refs[n]) if not torch.is_tensor(refs[n]) else refs[n].cpu()).long() for n in names]
    if m and tuple(s_idx.shape[1:]) != tuple(r_idx[0].shape[1:]):
        raise ValueError(f"samples are {tuple(s_idx.shape[1:])} images, references {tuple(r_idx[0].shape[1:])}")
    offsets = np.cumsum([0] + [len(x) for x in r_idx])
    all_refs = torch.cat(r_idx)
    tlist = copy_transforms(shifts, mirrors)
    split_of = lambda i: int(np.searchsorted(offsets, i, side="right") - 1)  # noqa: E731

    if m:
        measured = _measure(_rgb(s_idx, palette), _rgb(all_refs, palette), tlist, None, shortlist, tolerance)
    else:
        empty = (torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), [])
        measured = {k: empty for k in CRITERIA}
    flags = _flags(measured, calibration.thresholds)
    matches = {}
    for k in CRITERIA:
        d, ref, tid, region = measured[k]
        sp = [split_of(i) for i in ref.tolist()]
        matches[k] = Matches(distance=d, split=[names[j] for j in sp],
                             index=torch.tensor([i - offsets[j] for i, j in zip(ref.tolist(), sp)], dtype=torch.long),
                             transform=[tlist[t] for t in tid.tolist()], region=list(region), flagged=flags[k])
    copy = torch.stack([flags[k] for k in CRITERIA]).any(0) if m else torch.zeros(0, dtype=torch.bool)
    copy_split = []
    for i in range(m):
        hit = next((k for k in CRITERIA if flags[k][i]), None)
        copy_split.append(matches[hit].split[i] if hit else "")
    seen = {row.numpy().tobytes() for row in all_refs.reshape(len(all_refs), -1)}
    exact = torch.tensor([row.numpy().tobytes() in seen for row in s_idx.reshape(m, -1)], dtype=torch.bool)
    share = lambda x: float(x.double().mean()) if m else 0.0  # noqa: E731
    by_split = {n: sum(1 for s in copy_split if s == n) for n in names}
    crit = critical_count(m, calibration.base_rate_upper, min_share, alpha, margin)
    n_copy = int(copy.sum())
    copying = bool(m and n_copy >= crit)
    text = _message({"m": m, "m_all": m_all, "distinct": distinct, "k": n_copy, "quantile": calibration.quantile, "mirrors": tuple(mirrors), "shifts": shifts,
                     "splits": names, "n_whole": int(flags["whole"].sum()), "n_changed": int(flags["changed_area"].sum()),
                     "n_half": int(flags["half"].sum()), "by_split": by_split, "n_exact": int(exact.sum()),
                     "base": calibration.base_rate, "crit": crit, "copying": copying, "dup": dup})
    return CopyReport(
        whole=matches["whole"], changed_area=matches["changed_area"], half=matches["half"], copy=copy, exact_copy=exact,
        copy_split=copy_split,
        shares={"copy": share(copy), "whole": share(flags["whole"]), "changed_area": share(flags["changed_area"]),
                "half": share(flags["half"]), "exact_copy": share(exact),
                "copy_of": {n: (c / m if m else 0.0) for n, c in by_split.items()}},
        duplicate_rate=dup, thresholds=dict(calibration.thresholds), base_rate=calibration.base_rate,
        base_rate_upper=calibration.base_rate_upper, critical_count=crit, copying=copying,
        verdict="copying" if copying else "no sign of copying", message=text, seconds=time.perf_counter() - start,
        n_samples=m, n_references={n: len(x) for n, x in zip(names, r_idx)})


# --- the course data set's calibration, measured by `coursekit reference` -------------------------
def reference_copy_path(name: str) -> Path:
    """``autograder/reference/copies_<name>.json``: the copy thresholds of data set ``name`` (or the staged rebuild's)."""
    import os

    from .. import paths

    staged = os.environ.get("COURSEKIT_EVALUATOR_DIR")  # set by `coursekit reference` while it rebuilds
    if staged and (Path(staged) / f"copies_{name}.json").is_file():
        return Path(staged) / f"copies_{name}.json"
    return paths.autograder_dir() / "reference" / f"copies_{name}.json"


def build_copy_calibration(ds, dest: Path) -> dict:
    """Measure the copy thresholds on every image of ``ds`` (leave-one-out) and write them to ``dest``."""
    import json

    from ..data.course import dataset_fingerprint

    cal = calibrate_copy_thresholds(ds.tensors("train")[0], ds.tensors("test")[0], ds.palette).to_dict()

    def rounded(v):  # six significant digits: the same file from machines whose kernels differ in the last bits
        return float(f"{v:.6g}") if isinstance(v, float) else {k: rounded(x) for k, x in v.items()} if isinstance(v, dict) else v

    data = {"dataset": ds.name, "fingerprint": dataset_fingerprint(ds), **rounded(cal)}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(data, indent=1) + "\n")
    return data


_COURSE_CAL: dict = {}


def course_copy_calibration(ds=None) -> CopyCalibration:
    """The course data set's stored copy thresholds; a clear error when they are missing or were measured on other data."""
    import json

    from ..data.course import course_dataset, course_dataset_spec, dataset_fingerprint

    ds = ds if ds is not None else course_dataset()
    path = reference_copy_path(ds.name)
    key = (str(path), dataset_fingerprint(ds))
    if key not in _COURSE_CAL:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no copy thresholds for the data set {ds.name!r}; measure them with "
                                    f"`coursekit reference --dataset {course_dataset_spec()}`")
        data = json.loads(path.read_text())
        if data.get("fingerprint") != key[1]:
            raise ValueError(f"{path} was measured on other images than today's {ds.name!r}; rerun `coursekit reference`")
        _COURSE_CAL[key] = CopyCalibration.from_dict(data)
    return _COURSE_CAL[key]


def course_copies(samples, ds=None, distinct: bool = False) -> CopyReport:
    """``find_copies`` of samples (M, H, W) against the course data set's training AND held-out images, with the
    stored thresholds: what every grader's copy check uses (in the grader's process). ``distinct``: see find_copies."""
    from ..data.course import course_dataset

    ds = ds if ds is not None else course_dataset()
    return find_copies(torch.as_tensor(samples).long(), {"training": ds.tensors("train")[0], "held-out": ds.tensors("test")[0]},
                       ds.palette, calibration=course_copy_calibration(ds), distinct=distinct)
