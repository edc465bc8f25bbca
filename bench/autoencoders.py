"""Train the AE and the DAE (25% and 50% masking) on MNIST; report test reconstruction MSE, clean and corrupted.

    python -m bench.autoencoders --data-dir ../shared/data --epochs 10          # real run
    python -m bench.autoencoders --smoke --data-dir <tiny mnist> --out-dir /tmp/x

Each model is trained through rlgen (``configs/ae/mnist.yaml``, ``configs/dae/mnist.yaml``) and then evaluated
on the 10,000 test images, uncorrupted and with 25% and 50% masking noise (exactly round(p * 784) pixels set
to 0 per image, one fixed seed for all models), as the per-pixel MSE against the clean image. Writes
``<out-dir>/autoencoders.json`` and ``<out-dir>/autoencoders.png`` (MSE bars and, per model, rows of clean
input / 50%-masked input / reconstruction of the masked input).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from bench._common import save_figure, write_results
from bench._images import image_bench_parser, rlgen_fit, setup, show_grid
from rlgen.lightning_modules.autoencoder import mask_pixels

MODELS = {  # name -> (config, extra CLI arguments)
    "AE": ("ae", []),
    "DAE 25% mask": ("dae", ["--model.noise_level=0.25"]),
    "DAE 50% mask": ("dae", ["--model.noise_level=0.5"]),
}
EVAL_MASKS = (0.0, 0.25, 0.5)


def main(argv: list[str] | None = None) -> dict:
    args = image_bench_parser(__doc__, epochs=10).parse_args(argv)
    out = setup(args)
    budget = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=2",
              "--data.num_workers=0"] if args.smoke else [f"--trainer.max_epochs={args.epochs}"]

    results, grids = {}, {}
    for name, (config, extra) in MODELS.items():
        with tempfile.TemporaryDirectory() as runs:
            start = time.perf_counter()
            cli = rlgen_fit(config, args.data_dir, runs, *budget, *extra)
            fit_s = time.perf_counter() - start
            best = cli.trainer.checkpoint_callback.best_model_path
            model = type(cli.model).load_from_checkpoint(best, weights_only=True) if best else cli.model
        cli.datamodule.setup("test")
        loader = cli.datamodule.test_dataloader()
        if args.smoke:
            loader = [next(iter(loader))]
        mse, grids[name] = _evaluate(model.eval(), loader)
        results[name] = {"test_recon_mse": mse, "fit_wall_s": round(fit_s, 1), "epochs": cli.trainer.current_epoch}
        print(f"{name:>13}: test recon MSE clean {mse['clean']:.4f}, 25% masked {mse['mask25']:.4f}, "
              f"50% masked {mse['mask50']:.4f}  (fit {fit_s / 60:.1f} min)")

    summary = {
        "benchmark": "autoencoders", "smoke": args.smoke, "date": time.strftime("%Y-%m-%d"),
        "epochs": args.epochs, "metric": "per-pixel MSE against the clean test image, pixels in [0, 1]",
        "corruption": "masking noise, exactly round(p * 784) pixels zeroed per image", "models": results,
        "torch_threads": torch.get_num_threads(),
    }
    write_results(out, "autoencoders", summary)
    _plot(out / "autoencoders.png", results, grids)
    return summary


@torch.no_grad()
def _evaluate(model, loader) -> tuple[dict[str, float], torch.Tensor]:
    """Per-pixel test MSE for each masking level in EVAL_MASKS, and a grid for the first batch."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(1234)  # the same masks for every model
    sums, count, grid = dict.fromkeys(EVAL_MASKS, 0.0), 0, None
    for x, _ in loader:
        x = x.to(model.device)
        for p in EVAL_MASKS:
            x_in = mask_pixels(x, p)
            x_hat = model(x_in)
            sums[p] += F.mse_loss(x_hat, x, reduction="sum").item()
            if grid is None and p == EVAL_MASKS[-1]:
                grid = make_grid(torch.cat([x[:12], x_in[:12], x_hat[:12]]).cpu(), nrow=12, pad_value=1.0)
        count += x.numel()
    torch.random.set_rng_state(gen_state)
    return {("clean" if p == 0 else f"mask{round(p * 100)}"): s / count for p, s in sums.items()}, grid


def _plot(path: Path, results: dict, grids: dict) -> None:
    fig = plt.figure(figsize=(11, 6))
    ax = fig.add_subplot(1, 2, 1)
    keys = ["clean", "mask25", "mask50"]
    width = 0.8 / len(results)
    for i, (name, res) in enumerate(results.items()):
        ax.bar([k + i * width for k in range(len(keys))], [res["test_recon_mse"][k] for k in keys], width, label=name)
    ax.set_xticks([k + width for k in range(len(keys))], ["clean input", "25% masked", "50% masked"])
    ax.set(ylabel="test MSE per pixel", title="reconstruction of the clean test image")
    ax.legend()
    for i, (name, grid) in enumerate(grids.items()):
        show_grid(fig.add_subplot(len(grids), 2, 2 * i + 2), grid, f"{name}: clean / 50% masked / output")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
