#!/usr/bin/env bash
# Extracts the public-domain sample photos shipped inside the scikit-image and scikit-learn
# wheels (downloaded from PyPI, nothing installed) into DIR/train and DIR/test (5 held out).
# Used to train the built-in model: see models/default/README.md.
set -euo pipefail
out="${1:?usage: scripts/fetch-training-images.sh DIR}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps -q -d "$tmp" scikit-image==0.26.0 scikit-learn==1.9.1
mkdir -p "$out/train" "$out/test"
python3 - "$tmp" "$out" <<'PY'
import os, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
held_out = {"astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "brick.png"}
n = 0
for whl in sorted(os.listdir(tmp)):
    prefix = "skimage/data/" if whl.startswith("scikit_image") else "sklearn/datasets/images/"
    with zipfile.ZipFile(os.path.join(tmp, whl)) as z:
        for name in z.namelist():
            base = os.path.basename(name)
            if name.startswith(prefix) and base.lower().endswith((".png", ".jpg", ".jpeg")):
                data = z.read(name)
                if len(data) < 2000:
                    continue
                sub = "test" if base in held_out else "train"
                open(os.path.join(out, sub, base), "wb").write(data)
                n += 1
print(f"{n} images in {out}/train and {out}/test")
PY
