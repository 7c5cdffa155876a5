"""Which pixels of the image-aware regions to trust (docs/targets.md, "Which pixels to trust"):
prototypes of the rules measured for issue #14, scored with the study's ``QualityReport``.

    OMP_NUM_THREADS=1 python3 benchmarks/region_confidence.py DATASET P[,P] SEEDS VARIANT[,VARIANT] [N_IMAGES]

DATASET: coco, coconut, nuclei, synth (the synthetic validation split). A VARIANT is ``base``
(the former default: margin 0.01) or ``key=value`` pairs joined by ``+``: ``m`` border margin,
``r`` reach, ``s`` smoothing, ``b`` barrier (fractions of the longer side as in RegionOptions);
``ens`` / ``ens2`` a coarse flood with this sigma (px at 640) on the image shrunk by ``ef`` / ``ef2``
(``rel=1``: shrunk by longer side // 160, sigma scaled with the side), pixels it labels otherwise
ignored; ``col`` Gaussian colour limit (squared Mahalanobis, patches of radius ``pr``, floor
``fl``); ``pc`` a pixel must be within this Lab distance of one of its region's points' colours;
``nn`` its region must own the nearest point in (Lab, lam * xy) (``knn``, ``vote``, ``alpha``
variants); ``sp`` superpixels (felzenszwalb scale ``sc``, or ``slic`` segments) kept where this share
has one label and points of at most one segment. ``lib[+RegionOptions field=value...]`` runs the
library's ``grow_regions``; ``lo=K[+ld=drop][+lf=1]`` the library's regions, then K floods from
random subsets of the points (each point dropped with probability ``ld``, 0.3 by default, at
least one kept per segment; coarse floods, full-size with ``lf=1``), pixels any of them labels
otherwise ignored: a leave-points-out ensemble. Prints target PQ (± s.e. over seeds), coverage, label accuracy,
precision (%), ms per region build, per-seed PQ. Simulated points are cached in $POINTLY_CACHE (/tmp).
"""

import os
import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage.segmentation import watershed

from pointly.pointgen.base.coco import PanopticDataset
from pointly.pointgen.base.points_format import annotations_by_image
from pointly.pointgen.points.simulate import SimulationOptions, simulate
from pointly.pointgen.targets.build import build_targets
from pointly.pointgen.targets.options import TargetOptions
from pointly.pointgen.targets.quality import QualityReport
from pointly.pointgen.targets.regions import (
    Regions,
    colour_gradient,
    distance_to_zero,
    inner_boundaries,
    reached_below,
    seed_markers,
)

DEF = dict(m=0.01, r=0.25, s=1.0, c=0.0, b=0.0)


def parse(name):
    p = dict(DEF)
    if name in ("base", ""):
        return p
    for kv in name.split("+"):
        k, v = kv.split("=")
        p[k] = float(v)
    return p


def leave_out(name, rgb, pos):
    """``lo=K+ld=..+lf=..``: the library's regions, minus the pixels on which K floods from random
    subsets of the points disagree with them (seeded, so deterministic)."""
    from pointly.pointgen.targets.regions import RegionOptions, _lab, coarse_labels, grow_regions, lab_gradient

    kv = dict(x.split("=") for x in name.split("+"))
    rounds, drop, full = int(kv["lo"]), float(kv.get("ld", 0.3)), int(kv.get("lf", 0))
    opts = RegionOptions()
    labels, known = grow_regions(rgb, pos, options=opts)
    h, w = rgb.shape[:2]
    lab = _lab(rgb)
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        subsets = []
        for pts in pos:
            pts = np.asarray(pts).reshape(-1, 2)
            keep = rng.random(len(pts)) >= drop
            if len(pts) and not keep.any():
                keep[rng.integers(len(pts))] = True
            subsets.append(pts[keep])
        m = seed_markers(subsets, h, w)
        if full:
            other = watershed(lab_gradient(lab, opts.smoothing), m).astype(np.int32)
        else:
            other = coarse_labels(lab, m, labels, opts.coarse_agreement * max(h, w), opts.coarse_side)
        known &= other == labels
    return labels, known


def run(name, rgb, pos):
    if name.startswith("lo="):
        return leave_out(name, rgb, pos)
    if name.startswith("lib"):
        from pointly.pointgen.targets.regions import RegionOptions, grow_regions

        kw = {}
        for kv in name.split("+")[1:]:
            k, v = kv.split("=")
            kw[k] = float(v)
        return grow_regions(rgb, pos, options=RegionOptions(**kw))
    p = parse(name)
    h, w = rgb.shape[:2]
    side = max(h, w)
    markers = seed_markers(pos, h, w)
    K = len(pos)
    if not markers.any():
        return np.zeros((h, w), np.int32), np.zeros((h, w), bool)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    gradient = colour_gradient(rgb, p["s"])
    labels = watershed(gradient, markers, compactness=p["c"]).astype(np.int32)
    known = np.ones((h, w), bool)
    border = inner_boundaries(labels)
    if p["m"] > 0 and border.any():
        known &= distance_to_zero(~border) >= p["m"] * side
    if p["b"] > 0 and border.any():
        known &= reached_below(gradient, markers, p["b"] * float(np.median(gradient[border])))
    if p["r"] > 0:
        known &= distance_to_zero(markers == 0) <= p["r"] * side
    if p.get("col", 0) > 0:
        known &= colour_ok(lab, labels, pos, K, p)
    for ekey, fkey in (("ens", "ef"), ("ens2", "ef2")):
        if p.get(ekey, 0) > 0:
            f = int(p.get(fkey, 2)) if p.get("rel", 0) == 0 else max(1, side // 160)
            sig = p[ekey] if p.get("rel", 0) == 0 else p[ekey] * side / 640
            small = cv2.resize(rgb, (w // f, h // f), interpolation=cv2.INTER_AREA)
            ms = np.zeros((h // f, w // f), np.int32)
            yy, xx = np.nonzero(markers)
            ms[np.minimum(yy // f, h // f - 1), np.minimum(xx // f, w // f - 1)] = markers[yy, xx]
            g2 = colour_gradient(small, sig / f)
            l2 = watershed(g2, ms, compactness=p.get("ec", 0.0)).astype(np.int32)
            l2 = cv2.resize(l2, (w, h), interpolation=cv2.INTER_NEAREST)
            known &= l2 == labels
    if p.get("sp", 0) > 0:
        known &= superpixel_ok(rgb, labels, markers, K, p)
    if p.get("pc", 0) > 0:
        lab_s = cv2.GaussianBlur(lab, (0, 0), p.get("ns", 2.0))
        known &= pointcol_ok(lab_s, labels, pos, K, p)
    if p.get("nn", 0) > 0:
        lab_s = cv2.GaussianBlur(lab, (0, 0), p.get("ns", 2.0))
        known &= nn_ok(lab_s, labels, pos, K, p, side)
    return labels, known


def colour_ok(lab, labels, pos, K, p):
    """Per-region Gaussian (Lab) fitted on patches around the points; a pixel is kept when its
    squared Mahalanobis distance to its own region is below col (chi2 scale) OR no other region
    explains it better (mode 'rel')."""
    h, w = labels.shape
    rad = int(p.get("pr", 3))
    mus = np.zeros((K + 1, 3), np.float32)
    icov = np.zeros((K + 1, 3, 3), np.float32)
    icov[0] = np.eye(3)
    valid = np.zeros(K + 1, bool)
    floor = p.get("fl", 4.0)
    for k, pts in enumerate(pos, start=1):
        pts = np.asarray(pts).reshape(-1, 2)
        if not len(pts):
            continue
        samples = []
        for x, y in pts:
            patch = lab[max(0, y - rad) : y + rad + 1, max(0, x - rad) : x + rad + 1].reshape(-1, 3)
            samples.append(patch)
        s = np.concatenate(samples)
        mus[k] = s.mean(0)
        cov = np.cov(s.T) + floor * np.eye(3)
        icov[k] = np.linalg.inv(cov)
        valid[k] = True
    d = lab - mus[labels]
    ic = icov[labels]
    m2 = np.einsum("hwi,hwij,hwj->hw", d, ic, d)
    return (m2 <= p["col"]) | ~valid[labels]


def nn_ok(lab_s, labels, pos, K, p, side):
    """Keep pixels whose watershed label is the label of the nearest point(s) in (Lab, lambda*xy)
    space; computed on a grid downsampled by 'nd', upsampled nearest."""
    from scipy.spatial import cKDTree

    h, w = labels.shape
    f = int(p.get("nd", 4))
    lam = p.get("lam", 1.0) * 100.0 / side  # Lab units per pixel: lam=1 -> 100 Lab units across the side
    pts, ids = [], []
    for k, q in enumerate(pos, start=1):
        q = np.asarray(q).reshape(-1, 2)
        if len(q):
            pts.append(q)
            ids.append(np.full(len(q), k))
    pts = np.concatenate(pts)
    ids = np.concatenate(ids)
    fp = np.concatenate([lab_s[pts[:, 1], pts[:, 0]], lam * pts.astype(np.float32)], 1)
    ys, xs = np.mgrid[f // 2 : h : f, f // 2 : w : f]
    fq = np.concatenate([lab_s[ys, xs].reshape(-1, 3), lam * np.stack([xs.ravel(), ys.ravel()], 1)], 1)
    kk = int(p.get("knn", 1))
    tree = cKDTree(fp)
    d, j = tree.query(fq, k=kk)
    if p.get("alpha", 0) > 0:
        own = ids[j] == labels[ys, xs].ravel()[:, None]
        d_own = np.where(own, d, np.inf).min(1)
        d_oth = np.where(~own, d, np.inf).min(1)
        ok_s = d_own <= p["alpha"] * d_oth
    elif kk == 1:
        lab_nn = ids[j]
        ok_s = lab_nn == labels[ys, xs].ravel()
    else:
        votes = ids[j] == labels[ys, xs].ravel()[:, None]
        ok_s = votes.mean(1) >= p.get("vote", 0.5)
    ok_s = ok_s.reshape(ys.shape).astype(np.uint8)
    ok = cv2.resize(ok_s, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    return ok


def pointcol_ok(lab_s, labels, pos, K, p):
    """Keep pixels whose (smoothed) Lab colour is within pc of the colour of one of their own
    region's points; computed on a grid downsampled by 2."""
    h, w = labels.shape
    f = int(p.get("pf", 2))
    ls = lab_s[::f, ::f]
    lb = labels[::f, ::f]
    ok = np.zeros(lb.shape, bool)
    order = np.argsort(lb, axis=None, kind="stable")
    flat = lb.ravel()[order]
    bounds = np.searchsorted(flat, np.arange(K + 2))
    lsf = ls.reshape(-1, 3)
    okf = ok.ravel()
    t2 = p["pc"] ** 2
    for k, q in enumerate(pos, start=1):
        q = np.asarray(q).reshape(-1, 2)
        idx = order[bounds[k] : bounds[k + 1]]
        if not len(q):
            okf[idx] = True
            continue
        if not len(idx):
            continue
        c = lab_s[q[:, 1], q[:, 0]]
        x = lsf[idx]
        d2 = ((x[:, None, :] - c[None, :, :]) ** 2).sum(2).min(1)
        okf[idx] = d2 <= t2
    ok = okf.reshape(lb.shape).astype(np.uint8)
    return cv2.resize(ok, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)[:h, :w]


def superpixel_ok(rgb, labels, markers, K, p):
    from skimage.segmentation import felzenszwalb, slic

    h, w = labels.shape
    f = int(p.get("spf", 2))
    small = cv2.resize(rgb, (w // f, h // f), interpolation=cv2.INTER_AREA)
    if p.get("slic", 0) > 0:
        sp = slic(small, n_segments=int(p["slic"]), compactness=p.get("sc", 10), start_label=0)
    else:
        sp = felzenszwalb(small, scale=p.get("sc", 100), sigma=0.8, min_size=int(p.get("sm", 20)))
    sp = cv2.resize(sp.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
    n = sp.max() + 1
    # majority label per superpixel
    key = sp.astype(np.int64) * (K + 1) + labels
    cnt = np.bincount(key.ravel(), minlength=n * (K + 1)).reshape(n, K + 1)
    tot = cnt.sum(1)
    maj = cnt.argmax(1)
    frac = cnt.max(1) / np.maximum(tot, 1)
    ok_sp = frac >= p["sp"]
    # superpixels holding points of several segments
    yy, xx = np.nonzero(markers)
    pk = sp[yy, xx].astype(np.int64) * (K + 1) + markers[yy, xx]
    pc = np.bincount(pk, minlength=n * (K + 1)).reshape(n, K + 1) > 0
    nseg = pc.sum(1)
    if p.get("spm", 1) > 0:
        ok_sp &= nseg <= 1
    keep = ok_sp[sp] & (labels == maj[sp])
    return keep


SH = Path(os.environ.get("POINTLY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def dataset(name):
    if name == "coco":
        r = SH / "coco_panoptic_val2017"
        return PanopticDataset(r / "panoptic_val2017.json", r / "panoptic"), r / "images"
    if name == "coconut":
        r = SH / "coconut_val2017_139"
        return PanopticDataset(r / "panoptic.json", r / "panoptic"), r / "images"
    if name == "nuclei":
        r = SH / "dsb2018_nuclei"
        return PanopticDataset(r / "panoptic.json", r / "panoptic"), r / "images"
    if name == "synth":
        from pointly.data.synth import ensure_dataset

        r = ensure_dataset() / "val"
        return PanopticDataset(r / "panoptic.json", r / "panoptic"), r / "images"
    raise SystemExit(name)


def main():
    name = sys.argv[1]
    Ps = [int(p) for p in sys.argv[2].split(",")]
    seeds = [int(s) for s in sys.argv[3].split(",")]
    vnames = sys.argv[4].split(",")
    nimg = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    ds, imdir = dataset(name)
    images = list(ds.images)[:nimg]
    cache = Path(os.environ.get("POINTLY_CACHE", "/tmp")) / f"region_confidence_{name}.pkl"
    store = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    rgbs = {}
    for im in images:
        bgr = cv2.imread(str(imdir / im.file_name))
        rgbs[im.id] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    truths = {im.id: ds.segments(im.id) for im in images}
    for P in Ps:
        res = {v: [] for v in vnames}
        tms = {v: 0.0 for v in vnames}
        for seed in seeds:
            key = (P, seed)
            if key not in store:
                store[key] = annotations_by_image(simulate(ds, SimulationOptions(points=P, seed=seed)).document)
                cache.write_bytes(pickle.dumps(store))
            by = store[key]
            reps = {v: QualityReport(ds.categories) for v in vnames}
            for im in images:
                anns = by.get(im.id, [])
                rgb = rgbs[im.id]
                pos = []
                for a in anns:
                    c = np.asarray(a["point_coords"], dtype=np.int64).reshape(-1, 2)
                    lab = np.asarray(a.get("point_labels", [1] * len(c))).reshape(-1)
                    pos.append(c[lab == 1])
                for v in vnames:
                    t0 = time.process_time()
                    labels, known = run(v, rgb, pos)
                    tms[v] += time.process_time() - t0
                    reg = Regions._with_boxes(labels, known, len(pos))
                    t = build_targets(anns, ds.categories, im, options=TargetOptions(shape="watershed"), shapes=reg)
                    reps[v].add_image(im, anns, t, truths[im.id])
            for v in vnames:
                s = reps[v].summary()
                res[v].append([100 * s[k] for k in ("pq", "coverage", "agreement", "precision")])
        nb = len(seeds) * len(images)
        for v in vnames:
            a = np.asarray(res[v])
            m = a.mean(0)
            se = a[:, 0].std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else 0
            print(
                f"{name} P{P} {v:40s} PQ {m[0]:5.1f}±{se:3.1f} cov {m[1]:5.1f} acc {m[2]:5.1f} prec {m[3]:5.1f}"
                f"  {1000 * tms[v] / nb:5.0f} ms  seeds {' '.join(f'{x:.1f}' for x in a[:, 0])}",
                flush=True,
            )


if __name__ == "__main__":
    main()
