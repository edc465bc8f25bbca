"""Train the MNIST classifier, measure its test accuracy, and keep a small weights-only checkpoint.

    python -m bench.classifier --data-dir ../shared/data         # real run (6 epochs)
    python -m bench.classifier --smoke --data-dir <tiny mnist> --out-dir /tmp/x

Writes ``<out-dir>/classifier.json`` (test accuracy, per-class accuracy, wall time), ``classifier.png``
(per-class test accuracy) and ``<out-dir>/mnist_classifier.ckpt``, the checkpoint that FID / IS and the
text-GAN prompt accuracy use (``--model.classifier_ckpt bench/results/mnist_classifier.ckpt``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from bench._common import save_figure, write_results
from bench._images import image_bench_parser, setup
from rlgen.cli import run

REPO = Path(__file__).resolve().parents[1]
TARGET_ACC = 0.99


def main(argv: list[str] | None = None) -> dict:
    parser = image_bench_parser(__doc__, epochs=6)
    parser.set_defaults(threads=torch.get_num_threads())
    args = parser.parse_args(argv)
    out = setup(args)

    budget = ["--trainer.max_steps=3", "--trainer.limit_val_batches=2"] if args.smoke else []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        cli = run([
            "fit", "-c", str(REPO / "configs" / "classifier" / "mnist.yaml"),
            f"--data.data_dir={args.data_dir}", f"--trainer.max_epochs={args.epochs}",
            f"--trainer.default_root_dir={runs}", f"--trainer.logger.init_args.save_dir={runs}",
            "--trainer.enable_progress_bar=false", *(["--data.num_workers=0"] if args.smoke else []), *budget,
        ])
        fit_s = time.perf_counter() - start
        best = cli.trainer.checkpoint_callback.best_model_path or None
        cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=best, verbose=False)
        test_acc = float(cli.trainer.callback_metrics["test/acc"])
        ckpt = out / "mnist_classifier.ckpt"
        cli.trainer.save_checkpoint(ckpt, weights_only=True)
        per_class = _per_class_accuracy(cli.model, cli.datamodule.test_dataloader())

    result = {
        "benchmark": "classifier", "smoke": args.smoke, "date": time.strftime("%Y-%m-%d"),
        "epochs": args.epochs, "test_acc": test_acc, "target_test_acc": TARGET_ACC,
        "passed": test_acc >= TARGET_ACC, "per_class_acc": per_class,
        "fit_wall_s": round(fit_s, 1), "checkpoint": _relative(ckpt), "checkpoint_bytes": ckpt.stat().st_size,
        "torch_threads": torch.get_num_threads(),
    }
    write_results(out, "classifier", result)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(range(len(per_class)), per_class)
    ax.axhline(TARGET_ACC, color="r", ls="--", label=f"target {TARGET_ACC}")
    ax.set(xlabel="digit", ylabel="test accuracy", ylim=(min(0.9, min(per_class)), 1.0),
           title=f"MNIST classifier: test acc {test_acc:.4f}")
    ax.legend()
    save_figure(fig, out / "classifier.png")
    print(f"test accuracy {test_acc:.4f} (target {TARGET_ACC}), fit {fit_s:.0f} s, checkpoint {ckpt} "
          f"({ckpt.stat().st_size / 1e6:.2f} MB)")
    return result


def _relative(path: Path) -> str:
    return str(path.resolve().relative_to(REPO)) if path.resolve().is_relative_to(REPO) else str(path)


@torch.no_grad()
def _per_class_accuracy(model, loader) -> list[float]:
    model.eval()
    correct, total = torch.zeros(10), torch.zeros(10)
    for x, y in loader:
        pred = model(x.to(model.device)).argmax(1).cpu()
        total += torch.bincount(y, minlength=10).float()
        correct += torch.bincount(y[pred == y], minlength=10).float()
    return (correct / total.clamp(min=1)).tolist()


if __name__ == "__main__":
    main()
