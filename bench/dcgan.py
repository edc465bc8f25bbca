"""DCGAN on MNIST: Inception Score and FID with rlgen's MNIST classifier, next to the real-data references.

    python -m bench.dcgan --data-dir ../shared/data --max-minutes 80       # train, then evaluate
    python -m bench.dcgan --data-dir ../shared/data --ckpt runs/dcgan_mnist/version_0/checkpoints/last.ckpt
    python -m bench.dcgan --model dcgan_clusters --data-dir ../shared/data --ckpt <its last.ckpt>
    python -m bench.dcgan --model gan --data-dir ../shared/data --max-minutes 40   # the paper's MLP GAN
    python -m bench.dcgan --smoke --data-dir <tiny mnist> --classifier-ckpt <ckpt> --out-dir /tmp/x

Scores: IS of ``--num-samples`` generated digits (10 splits) and FID of those digits against the 10,000
test digits; references: IS of the real test digits and FID of ``--num-samples`` real training digits
against the test digits (the best FID a generator can expect at that sample size). The classifier is
``bench/results/mnist_classifier.ckpt`` (``python -m bench.classifier``). Writes ``dcgan.json`` and
``dcgan.png`` (samples and scores) to ``--out-dir``; ``<model>.json`` and ``<model>.png`` with another
``--model``: ``dcgan_clusters`` (``configs/dcgan/mnist_clusters.yaml``, the DCGAN conditioned on k-means
clusters of the training images) or ``gan`` (``configs/gan/mnist.yaml``, which has no target).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from bench._common import save_figure, write_results
from bench._images import image_bench_parser, max_time, setup
from rlgen.cli import run
from rlgen.datamodules.mnist import MNISTDataModule
from rlgen.lightning_modules.classifier import load_classifier
from rlgen.lightning_modules.gan import GAN
from rlgen.media.images import image_grid
from rlgen.metrics import make_fid, make_inception_score

REPO = Path(__file__).resolve().parents[1]
TARGET_IS = 9.5
MODELS = {  # --model: config under configs/, plot title, IS target
    "dcgan": ("dcgan/mnist.yaml", "DCGAN", TARGET_IS),
    "dcgan_clusters": ("dcgan/mnist_clusters.yaml", "DCGAN on 300 k-means clusters", TARGET_IS),
    "gan": ("gan/mnist.yaml", "GAN (MLP)", None),
}
# --smoke shrinks the nets: convolutional ones by width, the MLP GAN's (configs/gan/) by its hidden layers
SMOKE_NETS = ["--model.generator.init_args.channels=4", "--model.discriminator.init_args.channels=4"]
MLP_SMOKE_NETS = {"gan": ["--model.generator.init_args.hidden=[8]", "--model.discriminator.init_args.hidden=[8]"]}


def gan_bench_parser(doc: str) -> argparse.ArgumentParser:
    """The image benchmarks' options plus those shared by the GAN benchmarks."""
    parser = image_bench_parser(doc, epochs=30)
    parser.add_argument("--classifier-ckpt", default=str(REPO / "bench" / "results" / "mnist_classifier.ckpt"))
    parser.add_argument("--ckpt", default=None, help="evaluate this checkpoint instead of training")
    parser.add_argument("--max-minutes", type=float, default=80.0, help="training wall-clock budget (caps --epochs)")
    parser.add_argument("--num-samples", type=int, default=5000, help="generated images to score")
    parser.add_argument("--fit-arg", action="append", default=[], metavar="--KEY=VALUE",
                        help="extra rlgen fit argument for the training run (repeatable), e.g. "
                             "--fit-arg=--model.mode_seeking=0")
    return parser


def train(config: str, args: argparse.Namespace, runs: str) -> tuple[str, float]:
    """Fit ``config`` within the budget (no validation: scoring happens afterwards); the last checkpoint."""
    nets = MLP_SMOKE_NETS.get(config.split("/")[0], SMOKE_NETS)
    budget = ["--trainer.max_steps=4", *nets] if args.smoke else [
        f"--trainer.max_epochs={args.epochs}", f"--trainer.max_time={max_time(args.max_minutes)}"]
    start = time.perf_counter()
    cli = run([
        "fit", "-c", str(REPO / "configs" / config), f"--data.data_dir={args.data_dir}",
        "--model.classifier_ckpt=null", "--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={runs}", f"--trainer.logger.init_args.save_dir={runs}",
        *(["--data.num_workers=0"] if args.smoke else []), *budget, *args.fit_arg,
    ])
    last = next(c.last_model_path for c in cli.trainer.checkpoint_callbacks if c.last_model_path)
    return last, time.perf_counter() - start


def trained_model(model_class, config: str, args: argparse.Namespace):
    """``(model in eval mode, checkpoint path, epochs trained, fit seconds or None)``: ``--ckpt`` or a fresh fit."""
    if args.ckpt and args.fit_arg:
        raise SystemExit(f"bench: --fit-arg {' '.join(args.fit_arg)} changes a training run, but --ckpt skips "
                         "training; drop one of them")
    with tempfile.TemporaryDirectory() as runs:
        ckpt, train_s = (args.ckpt, None) if args.ckpt else train(config, args, runs)
        model = model_class.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    batch_size = state.get("datamodule_hyper_parameters", {}).get("batch_size", 64)
    epochs = state.get("gan_batches_seen", 0) / (55000 // batch_size)  # training batches / batches per epoch
    return model, ckpt, epochs, train_s


def mnist_images(data_dir: str, train: bool = False, limit: int | None = None, with_labels: bool = False):
    """MNIST test (or training) images ``(N, 1, 28, 28)`` in [0, 1] (and their labels ``(N,)``)."""
    dm = MNISTDataModule(data_dir=data_dir, num_workers=0)
    dm.setup("fit" if train else "test")
    dataset = dm.train_set if train else dm.test_set
    n = len(dataset) if limit is None else min(limit, len(dataset))
    images = torch.stack([dataset[i][0] for i in range(n)])
    return (images, torch.tensor([int(dataset[i][1]) for i in range(n)])) if with_labels else images


@torch.no_grad()
def batched(fn, n: int, batch_size: int = 500) -> torch.Tensor:
    """``fn(b)`` for batches summing to ``n`` items, concatenated."""
    return torch.cat([fn(min(batch_size, n - i)) for i in range(0, n, batch_size)])


def main(argv: list[str] | None = None) -> dict:
    parser = gan_bench_parser(__doc__)
    parser.add_argument("--model", choices=list(MODELS), default="dcgan",
                        help="dcgan: configs/dcgan/mnist.yaml (target IS >= 9.5); dcgan_clusters: "
                             "configs/dcgan/mnist_clusters.yaml (the same on 300 k-means clusters, target IS >= 9.5); "
                             "gan: the paper's MLP GAN, configs/gan/mnist.yaml (no target)")
    args = parser.parse_args(argv)
    name = args.model
    config, title, target = MODELS[name]
    out = setup(args)
    n = 200 if args.smoke else args.num_samples
    classifier = load_classifier(args.classifier_ckpt)

    model, ckpt, epochs, train_s = trained_model(GAN, config, args)

    start = time.perf_counter()
    fake = batched(lambda b: model(model.noise(b)), n)  # (n, 1, 28, 28) in [0, 1]
    real_test = mnist_images(args.data_dir)
    real_train = mnist_images(args.data_dir, train=True, limit=n)
    scores = reference_and_fake_scores(classifier, fake, real_test, real_train)
    scores.update(class_confidence(classifier, fake, real_test))
    eval_s = time.perf_counter() - start

    result = {
        "benchmark": name, "config": f"configs/{config}", "smoke": args.smoke,
        "date": time.strftime("%Y-%m-%d"), "checkpoint": str(ckpt), "epochs_trained": round(epochs, 2),
        "train_wall_s": None if train_s is None else round(train_s, 1), "eval_wall_s": round(eval_s, 1),
        "num_samples": n, **scores, "target_is": target, "passed": None if target is None else scores["is"] >= target,
        "threads": args.threads, "fit_args": args.fit_arg,
    }
    write_results(out, name, result)
    plot(out / f"{name}.png", fake[:64], f"{title}, {epochs:.2f} epochs", {
        "IS (generated)": scores["is"], "IS (real test)": scores["real_is"],
        **({f"target {target}": target} if target else {}),
    }, {"FID (generated)": scores["fid"], "FID (real train vs test)": scores["real_fid"]})
    print(f"{title} after {epochs:.2f} epochs: IS {scores['is']:.2f} ± {scores['is_std']:.2f} (real test "
          f"{scores['real_is']:.2f}, target {target}), FID {scores['fid']:.2f} "
          f"(real-vs-real {scores['real_fid']:.2f}); mean H(y|x) {scores['entropy']:.3f} (real "
          f"{scores['real_entropy']:.3f}), top class < 0.9: {scores['unsure']:.1%} (real {scores['real_unsure']:.1%})")
    return result


def reference_and_fake_scores(classifier, fake: torch.Tensor, real_test: torch.Tensor,
                              real_train: torch.Tensor) -> dict[str, float]:
    """IS and FID (vs the test set) of the generated images, and the same for real training images."""
    fid = make_fid(classifier)
    fid.reset_real_features = False  # keep the test-set statistics between the two comparisons
    for chunk in real_test.split(1000):
        fid.update(chunk, real=True)
    scores = {}
    for name, images in (("", fake), ("real_", real_train)):
        inception = make_inception_score(classifier)
        for chunk in images.split(1000):
            fid.update(chunk, real=False)
            inception.update(chunk)
        is_mean, is_std = inception.compute()
        scores.update({f"{name}is": float(is_mean), f"{name}is_std": float(is_std), f"{name}fid": float(fid.compute())})
        fid.reset()
    test_is = make_inception_score(classifier)
    for chunk in real_test.split(1000):
        test_is.update(chunk)
    scores["real_is"] = float(test_is.compute()[0])  # the real *test* set's IS is the reference
    return scores


@torch.no_grad()
def class_confidence(classifier, fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """How plainly the images show one digit, which is what limits the IS once the classes are balanced.

    ``entropy``: the mean of H(y|x) over the generated images; ``unsure``: their share whose top class
    probability is below 0.9; ``real_entropy`` and ``real_unsure``: the same for the real test digits.
    """
    out = {}
    for name, images in (("", fake), ("real_", real)):
        p = torch.cat([classifier(chunk).softmax(dim=1) for chunk in images.split(1000)])  # (N, 10)
        out[f"{name}entropy"] = float(-(p * p.clamp_min(1e-12).log()).sum(dim=1).mean())
        out[f"{name}unsure"] = float((p.max(dim=1).values < 0.9).float().mean())
    return out


def plot(path: Path, samples: torch.Tensor, title: str, is_bars: dict[str, float], fid_bars: dict[str, float]) -> None:
    """Samples on the left, IS and FID bars on the right."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    axes[0].imshow(image_grid(samples, nrow=8).permute(1, 2, 0).numpy())
    axes[0].set_title(title, fontsize=10)
    axes[0].set(xticks=[], yticks=[])
    axes[1].bar(list(is_bars), list(is_bars.values()), color=["C0", "C2", "C3"][: len(is_bars)])
    axes[1].set(title="Inception Score (MNIST classifier)", ylim=(0, 10.5))
    axes[2].bar(list(fid_bars), list(fid_bars.values()), color=["C0", "C2"])
    axes[2].set(title="FID vs test set (lower is better)")
    for ax in axes[1:]:
        ax.tick_params(axis="x", labelrotation=15)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
