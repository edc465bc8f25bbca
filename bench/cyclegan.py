"""CycleGAN on the built-in MNIST pair: label preservation both ways and cycle L1 on the test digits.

    python -m bench.cyclegan --data-dir ../shared/data                   # real run (see docs/cyclegan.md)
    python -m bench.cyclegan --smoke --data-dir <tiny mnist> --out-dir /tmp/x

Trains ``configs/cyclegan/mnist.yaml`` (budget: ``--epochs`` x ``--batches`` batches), then translates
every test digit of domain A to B and of B to A. A digit keeps its label when a classifier trained on
the *target* domain (a :class:`~rlgen.lightning_modules.classifier.Classifier` fitted here on that
domain's training half, with labels) reads the source label; target >= 95% both ways. Cycle L1 is
mean |F(G(a)) - a| (and |G(F(b)) - b|) in [0, 1] pixel units. Writes ``<out-dir>/cyclegan.json``,
``cyclegan.png`` (bars + example translations).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from pytorch_lightning import Trainer
from torch.utils.data import DataLoader, TensorDataset

from bench._common import save_figure, write_results
from bench._images import image_bench_parser, setup
from rlgen.cli import run
from rlgen.datamodules.unpaired import mnist_pair
from rlgen.lightning_modules.classifier import Classifier
from rlgen.media.images import image_grid

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.95


def main(argv: list[str] | None = None) -> dict:
    parser = image_bench_parser(__doc__, epochs=4)  # CycleGAN epochs: half constant LR, half decay
    parser.add_argument("--batches", type=int, default=300, help="batches per epoch (limit_train_batches)")
    parser.add_argument("--clf-epochs", type=int, default=2, help="epochs of each target-domain classifier")
    parser.add_argument("--seed", type=int, default=0, help="seed_everything of the CycleGAN run")
    parser.set_defaults(threads=2)
    args = parser.parse_args(argv)
    out = setup(args)
    if args.smoke:
        args.epochs, args.batches, args.clf_epochs = 2, 2, 1

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        cli = run([
            "fit", "-c", str(REPO / "configs" / "cyclegan" / "mnist.yaml"), f"--data.data_dir={args.data_dir}",
            f"--trainer.max_epochs={args.epochs}", f"--trainer.limit_train_batches={args.batches}",
            f"--model.n_epochs={args.epochs // 2}", f"--model.n_epochs_decay={args.epochs - args.epochs // 2}",
            f"--trainer.default_root_dir={runs}", f"--trainer.logger.init_args.save_dir={runs}",
            "--trainer.enable_progress_bar=false", "--data.num_workers=0", f"--seed_everything={args.seed}",
            *(["--trainer.limit_val_batches=1"] if args.smoke else []),
        ])
    fit_s = time.perf_counter() - start
    model = cli.model.eval()

    train, test = mnist_pair(args.data_dir, train=True), mnist_pair(args.data_dir, train=False)
    start = time.perf_counter()
    clf = {d: _train_classifier(train[d], train[f"labels_{d}"], args.clf_epochs, args.smoke) for d in "AB"}
    clf_s = time.perf_counter() - start
    clf_acc = {d: _accuracy(clf[d], test[d], test[f"labels_{d}"]) for d in "AB"}

    fake_b, rec_a = _translate(model, test["A"], "a2b")  # A test digits -> B -> A, all in [0, 1]
    fake_a, rec_b = _translate(model, test["B"], "b2a")
    result = {
        "benchmark": "cyclegan", "smoke": args.smoke, "date": time.strftime("%Y-%m-%d"),
        "config": "configs/cyclegan/mnist.yaml", "epochs": args.epochs, "batches_per_epoch": args.batches,
        "batch_size": cli.datamodule.hparams.batch_size, "train_pairs_seen": args.epochs * args.batches
        * cli.datamodule.hparams.batch_size, "fit_wall_s": round(fit_s, 1), "classifier_wall_s": round(clf_s, 1),
        "torch_threads": args.threads, "seed": args.seed,
        "classifier_acc_on_real_test": clf_acc,  # upper bound of label preservation
        "label_preservation_a2b": _accuracy(clf["B"], fake_b, test["labels_A"]),
        "label_preservation_b2a": _accuracy(clf["A"], fake_a, test["labels_B"]),
        "cycle_l1_a": float((rec_a - test["A"]).abs().mean()),
        "cycle_l1_b": float((rec_b - test["B"]).abs().mean()),
        "target_label_preservation": TARGET,
    }
    result["passed"] = min(result["label_preservation_a2b"], result["label_preservation_b2a"]) >= TARGET
    write_results(out, "cyclegan", result)
    _plot(result, [test["A"][:8], fake_b[:8], rec_a[:8], test["B"][:8], fake_a[:8], rec_b[:8]], out / "cyclegan.png")
    a2b, b2a = result["label_preservation_a2b"], result["label_preservation_b2a"]
    print(f"label preservation A->B {a2b:.4f}, B->A {b2a:.4f} "
          f"(target {TARGET}; classifiers on real test digits {clf_acc['A']:.4f} / {clf_acc['B']:.4f}); cycle L1 "
          f"{result['cycle_l1_a']:.4f} / {result['cycle_l1_b']:.4f}; fit {fit_s:.0f} s")
    return result


def _train_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int, smoke: bool) -> Classifier:
    """A Classifier fitted on one domain's labelled training digits ``(N, 1, 28, 28)`` in [0, 1]."""
    mean, std = float(images.mean()), float(images.std())
    model = Classifier(in_channels=images.shape[1], width=16, mean=mean, std=std)
    loader = DataLoader(TensorDataset(images, labels), batch_size=128, shuffle=True)
    trainer = Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, limit_train_batches=2 if smoke else None)
    trainer.fit(model, loader)
    return model.eval()


@torch.no_grad()
def _translate(model, images: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Translated and reconstructed images in [0, 1] of ``images`` ``(N, 1, H, W)`` in [0, 1]."""
    fakes, recs = [], []
    back = "b2a" if direction == "a2b" else "a2b"
    for x in images.split(256):
        fake = model(x * 2 - 1, direction)  # (n, 1, H, W) in [-1, 1]
        fakes.append((fake + 1) / 2)
        recs.append((model(fake, back) + 1) / 2)
    return torch.cat(fakes).clamp(0, 1), torch.cat(recs).clamp(0, 1)


@torch.no_grad()
def _accuracy(clf: Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    pred = torch.cat([clf(x).argmax(1) for x in images.split(512)])
    return float((pred == labels).float().mean())


def _plot(result: dict, rows: list[torch.Tensor], path: Path) -> None:
    fig, (ax_bar, ax_img) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    keys = ["label_preservation_a2b", "label_preservation_b2a"]
    ax_bar.bar(["A -> B", "B -> A"], [result[k] for k in keys])
    ax_bar.axhline(TARGET, color="r", ls="--", label=f"target {TARGET}")
    ax_bar.set(ylim=(0, 1), ylabel="label preserved (target-domain classifier)",
               title=f"cycle L1 {result['cycle_l1_a']:.3f} / {result['cycle_l1_b']:.3f}")
    ax_bar.legend(loc="lower right")
    ax_img.imshow(image_grid(torch.cat(rows), nrow=8).permute(1, 2, 0).numpy())
    ax_img.set_axis_off()
    ax_img.set_title("rows: A, G(A), F(G(A)), B, F(B), G(F(B))")
    fig.suptitle(f"CycleGAN, MNIST pair: {result['train_pairs_seen']} training pairs, fit {result['fit_wall_s']:.0f} s")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
