"""Framework overhead: one VAE training epoch through rlgen against the same work in a plain PyTorch loop.

    python -m bench.overhead --data-dir ../shared/data --repeats 3        # real run (~6 epochs of the VAE)
    python -m bench.overhead --smoke --data-dir <tiny mnist> --out-dir /tmp/x

Both sides train the same network (``rlgen.nets.autoencoders`` conv encoder / decoder, as in
``configs/vae/mnist.yaml``) on the same 55,000 dynamically binarized training images with the same batch
size, DataLoader workers, Adam and loss, for one epoch, in this process. The rlgen side runs
``rlgen fit -c configs/vae/mnist.yaml`` with validation, checkpointing and the progress bar switched off
(the plain loop has none of them) but keeps the TensorBoard logger; the timed span covers everything from
the command to the end of the epoch (CLI parsing, Trainer set-up, DataLoader workers) on both sides.
Runs alternate (rlgen, plain, rlgen, ...) so that load from other processes hits both alike; the figure
is the median of the per-pair ratios. Target (issue 6): rlgen / plain <= 1.05.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, random_split
from torchvision import transforms
from torchvision.datasets import MNIST

from bench._common import config_args, save_figure, write_results
from bench._images import image_bench_parser, rlgen_fit, setup
from rlgen.nets.autoencoders import ConvDecoder, ConvEncoder

TARGET_RATIO = 1.05
CONFIG = "configs/vae/mnist.yaml"  # the plain loop trains the model and data of this config


class Timer:
    """Wall-clock and CPU seconds (this process; with DataLoader workers, those reaped so far too), and the
    batches trained in that time."""

    batches = 0

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, cpu_seconds() - self.cpu


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rlgen_epoch(data_dir: str, workers: int, max_batches: int | None) -> Timer:
    """Wall and CPU seconds for ``rlgen fit`` of one epoch (no validation, checkpoints or progress bar)."""
    limit = [f"--trainer.limit_train_batches={max_batches}"] if max_batches else []
    with tempfile.TemporaryDirectory() as runs:
        with Timer() as timer:
            cli = rlgen_fit("vae", data_dir, runs, f"--data.num_workers={workers}", "--trainer.max_epochs=1",
                            "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0",
                            "--trainer.enable_checkpointing=false", "--trainer.callbacks=[]",
                            "--trainer.enable_model_summary=false", *limit)
    timer.batches = cli.trainer.global_step
    return timer


def plain_epoch(data_dir: str, workers: int, max_batches: int | None) -> Timer:
    """Wall and CPU seconds for the same epoch written as a plain PyTorch loop."""
    model, data = plain_settings()
    with Timer() as timer:
        timer.batches = _plain_loop(model, data, data_dir, workers, max_batches)
    return timer


def plain_settings() -> tuple[dict, dict]:
    """The config's model and data arguments, after checking that the plain loop implements that model."""
    model, data = config_args(CONFIG), config_args(CONFIG, "data")
    written_for = {"arch": "conv", "likelihood": "bernoulli", "beta": 1.0, "transform": "binarize"}
    found = {k: model.get(k, data.get(k)) for k in written_for}
    if found != written_for:
        raise SystemExit(f"{CONFIG} now sets {found}; the plain loop is written for {written_for}: update it")
    return model, data


def _plain_loop(model: dict, data: dict, data_dir: str, workers: int, max_batches: int | None) -> int:
    """One epoch (or ``max_batches``) of the config's VAE; returns the number of batches trained."""
    torch.manual_seed(0)
    binarize = transforms.Compose([transforms.ToTensor(), transforms.Lambda(torch.bernoulli)])
    full = MNIST(data_dir, train=True, transform=binarize)
    val_size, split = data["val_size"], torch.Generator().manual_seed(data["seed"])
    train, _ = random_split(full, [len(full) - val_size, val_size], generator=split)
    loader = DataLoader(train, batch_size=data["batch_size"], shuffle=True, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0)
    latent, hidden = model["latent_dim"], model["hidden_dim"]
    encoder, decoder = ConvEncoder(2 * latent, hidden), ConvDecoder(latent, hidden)
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=model["lr"])
    batches = 0
    for x, _ in loader:
        if max_batches and batches >= max_batches:
            break
        mu, logvar = encoder(x).chunk(2, dim=1)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        rec = F.binary_cross_entropy_with_logits(decoder(z), x, reduction="sum") / x.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        opt.zero_grad()
        (rec + kl).backward()
        opt.step()
        batches += 1
    return batches


def main(argv: list[str] | None = None) -> dict:
    parser = image_bench_parser(__doc__, epochs=1)
    parser.add_argument("--repeats", type=int, default=3, help="alternating (rlgen, plain) pairs")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers on both sides (config: 2)")
    args = parser.parse_args(argv)
    out = setup(args)
    max_batches, repeats, workers = (3, 1, 0) if args.smoke else (None, args.repeats, args.workers)

    rlgen, plain = [], []
    for i in range(repeats):
        rlgen.append(rlgen_epoch(args.data_dir, workers, max_batches))
        plain.append(plain_epoch(args.data_dir, workers, max_batches))
        print(f"pair {i + 1}/{repeats}: rlgen {rlgen[-1].wall:.1f} s ({rlgen[-1].cpu:.1f} s CPU), plain "
              f"{plain[-1].wall:.1f} s ({plain[-1].cpu:.1f} s CPU), wall ratio {rlgen[-1].wall / plain[-1].wall:.3f}")
    rlgen_s, plain_s = [t.wall for t in rlgen], [t.wall for t in plain]
    ratios = [r / p for r, p in zip(rlgen_s, plain_s, strict=True)]
    cpu_ratios = [r.cpu / p.cpu for r, p in zip(rlgen, plain, strict=True)]
    ratio = statistics.median(ratios)
    result = {
        "benchmark": "overhead", "smoke": args.smoke, "date": time.strftime("%Y-%m-%d"),
        "what": "one VAE training epoch (55,000 images, batch 128), rlgen fit vs plain PyTorch loop",
        "rlgen_s": rlgen_s, "plain_s": plain_s, "ratios": ratios, "median_ratio": ratio,
        "median_rlgen_s": statistics.median(rlgen_s), "median_plain_s": statistics.median(plain_s),
        "rlgen_cpu_s": [t.cpu for t in rlgen], "plain_cpu_s": [t.cpu for t in plain], "cpu_ratios": cpu_ratios,
        "median_cpu_ratio": statistics.median(cpu_ratios),
        "target_ratio": TARGET_RATIO, "passed": ratio <= TARGET_RATIO,
        "workers": workers, "torch_threads": torch.get_num_threads(),
        "batches_per_epoch": {"rlgen": [t.batches for t in rlgen], "plain": [t.batches for t in plain]},
    }
    write_results(out, "overhead", result)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    pairs = range(1, repeats + 1)
    ax.plot(pairs, rlgen_s, "o-", label="rlgen fit")
    ax.plot(pairs, plain_s, "s-", label="plain PyTorch loop")
    ax.plot(pairs, result["rlgen_cpu_s"], "o--", color="C0", alpha=0.5, label="rlgen, CPU seconds")
    ax.plot(pairs, result["plain_cpu_s"], "s--", color="C1", alpha=0.5, label="plain, CPU seconds")
    ax.set(xlabel="pair (alternating runs)", ylabel="seconds per epoch", ylim=(0, None),
           title=f"VAE epoch: median ratio rlgen/plain = {ratio:.3f} (target <= {TARGET_RATIO})")
    ax.legend(fontsize=8)
    save_figure(fig, out / "overhead.png")
    print(f"median wall-time ratio rlgen / plain = {ratio:.3f} (target <= {TARGET_RATIO}); "
          f"median CPU-time ratio {statistics.median(cpu_ratios):.3f}")
    return result


if __name__ == "__main__":
    main()
