"""How well can a token count rank photos by PNG size? Ceilings of fixed and adaptive codes.

The built-in model's count at eps is the smallest number of 12-float tokens whose prefix
reconstructs a crop to mean L1 <= eps. This script computes that ideal count for hand-made
orthonormal codes (global DCT, 8x8 block DCT, a pyramid of both, multi-level Haar), each with a
fixed coefficient order (by mean energy over training crops: what a linear token path can do)
and an adaptive one (each image's largest coefficients first, charged 1 or 2 floats each: an
upper bound for a code that chooses per image), and prints Spearman(count, PNG size) on the
held-out crops. Used for the #16 analysis in docs/karl-property-log.md.

    python3 scripts/code_ceiling.py all PER_PHOTO SEED     # every code, both orders
    python3 scripts/code_ceiling.py fixed PER_PHOTO SEED   # fixed orders, five eps, L1 at full budget
Needs numpy, scipy, pillow; photos from scripts/fetch-training-images.sh in /tmp/natural
(KARL_NATURAL overrides).
"""
import io, os, sys, glob

NATURAL = os.environ.get("KARL_NATURAL", "/tmp/natural")
import numpy as np
from PIL import Image
from scipy.fft import dctn, idctn
from scipy.stats import spearmanr

S = 64
TOK = 12
TMAX = 64


def load(p):
    return np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) / 255.0


def crops_from(files, per, rng, scale=None):
    out = []
    for f in files:
        im = load(f)
        h, w, _ = im.shape
        for _ in range(per):
            if scale is None:
                y, x = rng.integers(0, h - S + 1), rng.integers(0, w - S + 1)
                out.append(im[y:y + S, x:x + S])
            else:
                a = rng.uniform(*scale) * h * w
                side = int(min(np.sqrt(a), h, w))
                y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
                c = Image.fromarray((im[y:y + side, x:x + side] * 255).round().astype(np.uint8))
                out.append(np.asarray(c.resize((S, S), Image.BILINEAR), dtype=np.float64) / 255.0)
    return np.stack(out)


def png_size(c):
    b = io.BytesIO()
    Image.fromarray((c * 255).round().astype(np.uint8)).save(b, format="PNG")
    return len(b.getvalue())


# orthonormal opponent colour transform
M = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float64)
M = M / np.linalg.norm(M, axis=1, keepdims=True)


def fwd_global(c):
    return dctn(c @ M.T, axes=(0, 1), norm="ortho")


def inv_global(z):
    return idctn(z, axes=(0, 1), norm="ortho") @ M


def fwd_block(c, b=8):
    y = c @ M.T
    y = y.reshape(S // b, b, S // b, b, 3).transpose(0, 2, 1, 3, 4)
    return dctn(y, axes=(2, 3), norm="ortho")


def inv_block(z, b=8):
    y = idctn(z, axes=(2, 3), norm="ortho").transpose(0, 2, 1, 3, 4).reshape(S, S, 3)
    return y @ M


def haar_fwd(x):
    # multi-level 2D orthonormal Haar over axes 0,1, in place layout
    x = x.copy()
    n = S
    while n > 1:
        a = x[:n, :n]
        lo = (a[0::2] + a[1::2]) / np.sqrt(2)
        hi = (a[0::2] - a[1::2]) / np.sqrt(2)
        a = np.concatenate([lo, hi], 0)
        lo = (a[:, 0::2] + a[:, 1::2]) / np.sqrt(2)
        hi = (a[:, 0::2] - a[:, 1::2]) / np.sqrt(2)
        x[:n, :n] = np.concatenate([lo, hi], 1)
        n //= 2
    return x


def haar_inv(x):
    x = x.copy()
    n = 2
    while n <= S:
        a = x[:n, :n].copy()
        h = n // 2
        lo, hi = a[:, :h], a[:, h:]
        b = np.empty_like(a)
        b[:, 0::2] = (lo + hi) / np.sqrt(2)
        b[:, 1::2] = (lo - hi) / np.sqrt(2)
        lo, hi = b[:h], b[h:]
        c = np.empty_like(b)
        c[0::2] = (lo + hi) / np.sqrt(2)
        c[1::2] = (lo - hi) / np.sqrt(2)
        x[:n, :n] = c
        n *= 2
    return x


def fwd_haar(c):
    return haar_fwd(c @ M.T)


def inv_haar(z):
    return haar_inv(z) @ M


def counts_fixed(crops, fwd, inv, order, eps_list, cost=1):
    """order: flat indices of coefficients in the order they are sent."""
    res = {e: [] for e in eps_list}
    curves = []
    for c in crops:
        z = fwd(c).ravel()
        errs = []
        for t in range(1, TMAX + 1):
            k = t * TOK // cost
            m = np.zeros_like(z)
            idx = order(z)[:k]
            m[idx] = z[idx]
            errs.append(np.abs(inv(m.reshape(fwd(c).shape)) - c).mean())
        errs = np.array(errs)
        curves.append(errs)
        for e in eps_list:
            ok = np.nonzero(errs <= e)[0]
            res[e].append(ok[0] + 1 if len(ok) else TMAX + 1)
    return {e: np.array(v) for e, v in res.items()}, np.array(curves)


def load_sets():
    """Held-out crops (PER_PHOTO per held-out photo, full resolution), 2100 training crops (area
    5-100 %, resized) for the energy order, and the held-out crops' PNG sizes."""
    heldout = sorted(glob.glob(NATURAL + "/test/*"))
    train = sorted(glob.glob(NATURAL + "/train/*"))
    if not heldout or not train:
        sys.exit(f"code_ceiling: no photos under {NATURAL}/test and {NATURAL}/train (scripts/fetch-training-images.sh)")
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    rng = np.random.default_rng(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
    ho = crops_from(heldout, per, rng)
    tr = crops_from(train, 100, rng, scale=(0.05, 1.0))
    return ho, tr, np.array([png_size(c) for c in ho])


def main():
    ho, tr, png = load_sets()
    eps_list = [0.03, 0.04, 0.05, 0.07]
    print(f"{len(ho)} held-out crops, {len(tr)} training crops for the energy order")
    for name, fwd, inv in [("global DCT", fwd_global, inv_global), ("8x8 block DCT", fwd_block, inv_block),
                           ("Haar", fwd_haar, inv_haar)]:
        energy = np.mean([fwd(c).ravel() ** 2 for c in tr], axis=0)
        fixed = np.argsort(-energy)
        for label, order, cost in [("fixed order", lambda z: fixed, 1), ("adaptive (value only)", lambda z: np.argsort(-np.abs(z)), 1),
                                   ("adaptive (value+index)", lambda z: np.argsort(-np.abs(z)), 2)]:
            res, curves = counts_fixed(ho, fwd, inv, order, eps_list, cost)
            parts = []
            for e in eps_list:
                k = res[e]
                parts.append(f"eps {e}: KC {k.mean():5.1f} rho {spearmanr(k, png)[0]:.3f}")
            fixed_t = " ".join(f"e{t}:{spearmanr(curves[:, t-1], png)[0]:.2f}" for t in (1, 4, 16, 64))
            print(f"{name:14s} {label:24s} | " + " | ".join(parts) + " | rho(e_T,png) " + fixed_t)




def fwd_pyr(c):
    z = fwd_block(c)  # (8, 8, 8, 8, 3): block row, block col, u, v, ch
    dc = dctn(z[:, :, 0, 0, :], axes=(0, 1), norm="ortho")
    z = z.copy()
    z[:, :, 0, 0, :] = dc
    return z


def inv_pyr(z):
    z = z.copy()
    z[:, :, 0, 0, :] = idctn(z[:, :, 0, 0, :], axes=(0, 1), norm="ortho")
    return inv_block(z)


def main2():
    ho, tr, png = load_sets()
    eps_list = [0.03, 0.04, 0.05, 0.07, 0.09]
    print(f"{len(ho)} held-out crops")
    for name, fwd, inv in [("global DCT", fwd_global, inv_global), ("8x8 block DCT", fwd_block, inv_block),
                           ("pyramid", fwd_pyr, inv_pyr)]:
        energy = np.mean([fwd(c).ravel() ** 2 for c in tr], axis=0)
        fixed = np.argsort(-energy)
        res, curves = counts_fixed(ho, fwd, inv, lambda z: fixed, eps_list, 1)
        parts = [f"{e}: KC {res[e].mean():5.1f} rho {spearmanr(res[e], png)[0]:.3f}" for e in eps_list]
        mono = np.mean([(res[0.03][i] >= res[0.05][i] >= res[0.09][i]) for i in range(len(ho))])
        print(f"{name:14s} full L1 {curves[:, -1].mean():.4f} e16 {curves[:, 15].mean():.4f} | " + " | ".join(parts) + f" | mono {mono:.2f}")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    if mode not in ("all", "fixed"):
        sys.exit(f"code_ceiling: mode must be 'all' or 'fixed', got {mode!r}")
    main() if mode == "all" else main2()
