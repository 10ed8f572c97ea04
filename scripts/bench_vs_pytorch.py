"""PyTorch side of scripts/bench-vs-pytorch.sh, and its report.

  python bench_vs_pytorch.py run --official TREE --work model|golden1|golden8 [--reps N] ...
      Times the official KARL code (a checkout the user provides; nothing of it is copied or
      edited) on the same work as karl-core's benches and prints `times <bench> <case> <s>...`
      lines in the format of `cargo bench --bench model/train -- --times`.
  python bench_vs_pytorch.py report RESULTS
      Reads the lines the shell script collected (`<impl> <threads> times ...`) and prints one
      Markdown table of medians and ratios. Needs no torch.

Runtime patches (inside this process only): `torch.Tensor.get_device()` returns the tensor's
device on the CPU instead of -1 (the official code passes it as a device); `.cuda()` is a no-op;
the VQGAN's base checkpoint is not loaded (`pretrained_ckpt_path=None`; random weights, timing
does not depend on them); `pytorch_lightning` and `torchvision` are stubbed where not installed
(the official VQModel only subclasses `pl.LightningModule`; `utils.misc` only subclasses
`torchvision.datasets.ImageFolder`); for the golden mini configuration, `OmegaConf.load` inside
`modules.base_tokenizers` returns `vqgan.yaml` with the mini `ddconfig`, as the golden generator
did (shared/golden/README.md).
"""

import argparse
import contextlib
import copy
import io
import json
import os
import statistics
import sys
import time
import types

OFFICIAL_FILES = [
    "kolmogorov_tokenizers/__init__.py",
    "kolmogorov_tokenizers/karl_vqgan.py",
    "kolmogorov_tokenizers/configs/karl_vqgan.yaml",
    "modules/base_tokenizers.py",
    "modules/latent_distillation_modules.py",
    "base_tokenizers/configs/vqgan.yaml",
    "base_tokenizers/taming/models/vqgan.py",
    "utils/misc.py",
]


def die(msg):
    print(f"bench_vs_pytorch.py: {msg}", file=sys.stderr)
    sys.exit(2)


def setup_official(tree, threads):
    import torch

    if threads:
        torch.set_num_threads(threads)
    missing = [f for f in OFFICIAL_FILES if not os.path.isfile(os.path.join(tree, f))]
    if missing:
        die(f"{tree} is not a checkout of the official KARL code (missing {', '.join(missing)})")
    tree = os.path.abspath(tree)
    # The official code loads its YAML files by relative path and appends "base_tokenizers/"
    # to sys.path: it runs from its own root.
    os.chdir(tree)
    sys.path[:0] = [tree, os.path.join(tree, "base_tokenizers")]

    orig_get_device = torch.Tensor.get_device

    def get_device(self):
        d = orig_get_device(self)
        return self.device if d < 0 else d

    torch.Tensor.get_device = get_device
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        import pytorch_lightning  # noqa: F401
    except ImportError:
        pl = types.ModuleType("pytorch_lightning")
        pl.LightningModule = torch.nn.Module
        sys.modules["pytorch_lightning"] = pl
    try:
        import torchvision  # noqa: F401
    except ImportError:
        tv = types.ModuleType("torchvision")
        tv.datasets = types.ModuleType("torchvision.datasets")
        tv.datasets.ImageFolder = type("ImageFolder", (), {})  # utils.misc subclasses it
        sys.modules["torchvision"] = tv
        sys.modules["torchvision.datasets"] = tv.datasets
    # No checkpoint: random weights. (pretrained_ckpt_path=None is passed too; this is a guard.)
    from base_tokenizers.taming.models.vqgan import VQModel

    VQModel.init_from_ckpt = lambda self, *a, **k: None
    return torch


def peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_model(torch, args):
    """karl_small, one 256² image, T = 256, eval: the official `encode` with timers around the
    VQGAN encode, the KARL decoder (decoder_embed .. soft code) and the VQGAN decode; the KARL
    encoder is the rest (patch embed, transformer, halting, quantizer)."""
    import kolmogorov_tokenizers

    base_args = {"id": "vqgan", "is_requires_grad": False, "pretrained_ckpt_path": None}
    model = kolmogorov_tokenizers.karl_small(base_tokenizer_args=base_args, quantize_latent=True, factorize_latent=True)
    model.eval()
    s = 256
    # The same image as karl-core/benches/model.rs.
    img = torch.tensor([((i * 7919) % 255) / 255.0 for i in range(3 * s * s)], dtype=torch.float32)
    x = img.reshape(1, 3, s, s)

    marks = {}
    vq = model.base_tokenizer.vqgan
    orig_encode, orig_recon, orig_embed = vq.encode, model.reconstruct_images, model.decoder_embed.forward

    def encode(*a, **k):
        t0 = time.perf_counter()
        out = orig_encode(*a, **k)
        marks["vqgan_encode"] = marks.get("vqgan_encode", 0.0) + time.perf_counter() - t0
        return out

    def embed(*a, **k):
        marks["dec_start"] = time.perf_counter()
        return orig_embed(*a, **k)

    def recon(*a, **k):
        t0 = time.perf_counter()
        marks["karl_decoder"] = t0 - marks["dec_start"]
        out = orig_recon(*a, **k)
        marks["vqgan_decode"] = time.perf_counter() - t0
        return out

    vq.encode, model.reconstruct_images, model.decoder_embed.forward = encode, recon, embed
    rows = []
    with torch.no_grad():
        for run in range(args.warmup + args.reps):
            marks.clear()
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the official code prints kc and L1
                _, recons, _ = model.encode(x, input_token_budget=[256], desired_reconstruction_quality=0.05)
            total = time.perf_counter() - t0
            assert len(recons) == 1 and recons[0].shape == (1, 3, s, s)
            enc = total - marks["vqgan_encode"] - marks["karl_decoder"] - marks["vqgan_decode"]
            if run >= args.warmup:
                rows.append(dict(marks, karl_encoder=enc, total=total))
    for stage in ["vqgan_encode", "karl_encoder", "karl_decoder", "vqgan_decode", "total"]:
        print(f"times model {stage} " + " ".join(f"{r[stage]:.4f}" for r in rows))
    print(f"peak RSS {peak_rss_mb():.0f} MB (threads: {torch.get_num_threads()})")


def golden_mini(torch, shared):
    path = os.path.join(shared, "golden", "mini", "config.json")
    if not os.path.isfile(path):
        die(f"golden mini config not found at {path} (set KARL_SHARED to the folder holding golden/)")
    cfg = json.load(open(path))
    import modules.base_tokenizers as bt
    from omegaconf import OmegaConf

    real_load = OmegaConf.load

    def load(p):
        conf = real_load(p)
        if str(p).endswith("vqgan.yaml"):
            conf.model.params.ddconfig = OmegaConf.create(cfg["vqgan"]["ddconfig"])
            conf.model.params.n_embed = cfg["vqgan"]["n_embed"]
            conf.model.params.embed_dim = cfg["vqgan"]["embed_dim"]
        return conf

    bt.OmegaConf = types.SimpleNamespace(load=load, create=OmegaConf.create)
    from kolmogorov_tokenizers.karl_vqgan import KARLTokenizer

    base = bt.VQGANWrapper(embed_dim=cfg["vqgan"]["embed_dim"], pretrained_ckpt_path=None, is_requires_grad=False)
    yaml_args = OmegaConf.to_container(real_load("kolmogorov_tokenizers/configs/karl_vqgan.yaml"))
    enc, dec = cfg["encoder"], cfg["decoder"]
    model = KARLTokenizer(
        base_tokenizer=base,
        encoder_width=enc["width"], encoder_num_layers=enc["layers"], encoder_num_heads=enc["heads"],
        decoder_width=dec["width"], decoder_num_layers=dec["layers"], decoder_num_heads=dec["heads"],
        max_grid_tokens=cfg["max_grid_tokens"], train_stage="latent_distillation_pretrain",
        **yaml_args,
    )
    n = sum(p.numel() for p in model.parameters())
    if n != cfg["num_parameters"]:
        die(f"golden mini built with {n} parameters, config.json says {cfg['num_parameters']}")
    return model


def bench_train(torch, args, batch):
    """One stage-1 training step of the golden mini configuration as the official engine does it
    (engines/latent_distillation_pretrain.py), in float32 on the CPU: forward (both phases),
    backward, clip_grad_norm_(3.0), AdamW(add_weight_decay(0.05), betas 0.9/0.95), EMA update."""
    import utils.misc as misc

    torch.manual_seed(0)
    model = golden_mini(torch, args.shared)
    if args.budget_a:
        model.all_token_counts = torch.tensor([args.budget_a])
    ema = copy.deepcopy(model)
    opt = torch.optim.AdamW(misc.add_weight_decay(model, 0.05), lr=2e-4, betas=(0.9, 0.95))
    model.train()
    gen = torch.Generator().manual_seed(2)
    times = []

    @torch.no_grad()
    def update_ema(decay=0.9999):  # engines/utils.py: update_ema (that module imports wandb)
        ema_params = dict(ema.named_parameters())
        for name, p in model.named_parameters():
            ema_params[name].mul_(decay).add_(p.data, alpha=1 - decay)

    for step in range(args.warmup + args.reps):
        x = torch.rand(batch, 3, 256, 256, generator=gen)
        t0 = time.perf_counter()
        loss, _ = model(x, epoch=0)
        loss.item()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        opt.zero_grad()
        update_ema()
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    print(f"times train golden{batch} " + " ".join(f"{t:.4f}" for t in sorted(times)))


def cmd_run(args):
    torch = setup_official(args.official, args.threads)
    if args.work == "model":
        bench_model(torch, args)
    elif args.work in ("golden1", "golden8"):
        bench_train(torch, args, int(args.work[len("golden"):]))
    else:
        die(f"unknown work {args.work}")


# ---------------------------------------------------------------- report

ROWS = [
    ("model", "total", "karl_small, one 256² image, T = 256"),
    ("model", "vqgan_encode", "— VQGAN encode"),
    ("model", "karl_encoder", "— KARL encoder"),
    ("model", "karl_decoder", "— KARL decoder"),
    ("model", "vqgan_decode", "— VQGAN decode"),
    ("model", "peak_rss", "— peak RSS (MB, whole process)"),
    ("train", "golden1", "golden-mini training step, batch 1"),
    ("train", "golden8", "golden-mini training step, batch 8"),
    ("train", "pixel16", "built-in model training, batch 16 (images/s)"),
]


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "MB":
        return f"{v:.0f}"
    if unit == "img/s":
        return f"{v:.1f}"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}"


def cmd_report(args):
    data = {}  # (impl, threads, bench, case) -> [seconds]
    for line in open(args.results):
        f = line.split()
        if len(f) >= 5 and f[2] == "times":
            data.setdefault((f[0], int(f[1]), f[3], f[4]), []).extend(float(v) for v in f[5:])
        elif len(f) >= 5 and f[2:4] == ["peak", "RSS"]:
            data.setdefault((f[0], int(f[1]), "model", "peak_rss"), []).append(float(f[4]))
    threads = sorted({k[1] for k in data})
    print("| work | threads | PyTorch | karl-rs | karl-rs / PyTorch | runs (PyTorch / karl-rs) |")
    print("|---|---:|---:|---:|---:|---:|")
    for t in threads:
        for bench, case, label in ROWS:
            a, b = data.get(("torch", t, bench, case)), data.get(("karl", t, bench, case))
            if not a and not b:
                continue
            ma = statistics.median(a) if a else None
            mb = statistics.median(b) if b else None
            unit = "MB" if case == "peak_rss" else "s"
            if case == "pixel16":
                unit = "img/s"
                mb = 16.0 / mb if mb else None
                ma = 16.0 / ma if ma else None
            ratio = f"{mb / ma:.2f}×" if ma and mb and unit != "img/s" else "—"
            sfx = "" if unit == "img/s" else (" MB" if unit == "MB" else " s")
            va = fmt(ma, unit) + (sfx if ma is not None else "")
            vb = fmt(mb, unit) + (sfx if mb is not None else "")
            if unit == "img/s" and mb is not None:
                vb = f"{fmt(mb, unit)} img/s"
            print(f"| {label} | {t} | {va} | {vb} | {ratio} | {len(a or [])} / {len(b or [])} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--official", required=True)
    r.add_argument("--work", required=True, choices=["model", "golden1", "golden8"])
    r.add_argument("--threads", type=int, default=0)
    r.add_argument("--reps", type=int, default=1)
    r.add_argument("--warmup", type=int, default=1)
    r.add_argument("--budget-a", type=int, default=0, help="fixed phase-(a) budget (0: the official draw)")
    r.add_argument("--shared", default=os.environ.get("KARL_SHARED", ""))
    q = sub.add_parser("report")
    q.add_argument("results")
    args = p.parse_args()
    (cmd_run if args.cmd == "run" else cmd_report)(args)


if __name__ == "__main__":
    main()
