"""Text-conditional GAN on MNIST: prompt accuracy, the share of generated digits the classifier reads as prompted.

    python -m bench.textgan --data-dir ../shared/data --epochs 5 --threads 2   # train, then evaluate
    python -m bench.textgan --ckpt runs/textgan_mnist/version_0/checkpoints/last.ckpt
    python -m bench.textgan --smoke --data-dir <tiny mnist> --classifier-ckpt <ckpt> --out-dir /tmp/x

For every digit and every caption template of training ("seven", "7", "the digit seven", ...) it draws
``--per-prompt`` images and classifies them with ``bench/results/mnist_classifier.ckpt``; it also
tries a few phrasings never seen in training ("digit seven", "number 7", ...) to show how far the
character-level encoder generalizes. Writes ``textgan.json`` and ``textgan.png`` to ``--out-dir``.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from bench._common import save_figure, write_results
from bench._images import setup
from bench.dcgan import gan_bench_parser, mnist_images, trained_model
from rlgen.lightning_modules.classifier import load_classifier
from rlgen.lightning_modules.textgan import CAPTION_TEMPLATES, DIGIT_WORDS, TextGAN, caption
from rlgen.media.images import image_grid

TARGET_ACC = 0.9
UNSEEN_TEMPLATES = ("digit {word}", "number {digit}", "handwritten {word}", "a {digit}")


def main(argv: list[str] | None = None) -> dict:
    parser = gan_bench_parser(__doc__)
    parser.add_argument("--per-prompt", type=int, default=100, help="images generated per (digit, template)")
    args = parser.parse_args(argv)
    out = setup(args)
    per_prompt = 4 if args.smoke else args.per_prompt
    classifier = load_classifier(args.classifier_ckpt)

    model, ckpt, epochs, train_s = trained_model(TextGAN, "textgan/mnist.yaml", args)

    start = time.perf_counter()
    seen = prompt_accuracy(model, classifier, CAPTION_TEMPLATES, per_prompt)
    unseen = prompt_accuracy(model, classifier, UNSEEN_TEMPLATES, per_prompt)
    diversity = within_prompt_diversity(model, args.data_dir, per_prompt)
    eval_s = time.perf_counter() - start
    result = {
        "benchmark": "textgan", "smoke": args.smoke, "date": time.strftime("%Y-%m-%d"), "checkpoint": str(ckpt),
        "epochs_trained": round(epochs, 2), "train_wall_s": None if train_s is None else round(train_s, 1),
        "eval_wall_s": round(eval_s, 1), "images_per_prompt": per_prompt,
        "prompt_acc": seen["overall"], "target_prompt_acc": TARGET_ACC, "passed": seen["overall"] >= TARGET_ACC,
        "per_digit_acc": seen["per_digit"], "per_template_acc": seen["per_template"],
        "unseen_phrasings_acc": unseen["overall"], "unseen_per_template_acc": unseen["per_template"],
        "within_prompt_diversity": diversity,
        "threads": args.threads, "fit_args": args.fit_arg,
    }
    write_results(out, "textgan", result)
    plot(out / "textgan.png", model, seen, epochs)
    print(f"TextGAN after {epochs:.2f} epochs: prompt accuracy {seen['overall']:.3f} (target {TARGET_ACC}); "
          f"unseen phrasings {unseen['overall']:.3f}; within-prompt diversity vs real {diversity['ratio']:.2f}")
    return result


@torch.no_grad()
def prompt_accuracy(model: TextGAN, classifier, templates, per_prompt: int) -> dict:
    """Share of images drawn for each (digit, template) caption that the classifier labels as that digit."""
    hits = torch.zeros(10, len(templates))
    for t, template in enumerate(templates):
        for d in range(10):
            text = template.format(word=DIGIT_WORDS[d], digit=d)
            images = model(torch.randn(per_prompt, model.latent_dim), [text] * per_prompt)
            hits[d, t] = (classifier(images).argmax(1) == d).float().mean()
    return {"overall": float(hits.mean()), "per_digit": hits.mean(1).tolist(),
            "per_template": {tpl: float(hits[:, t].mean()) for t, tpl in enumerate(templates)}}


@torch.no_grad()
def within_prompt_diversity(model: TextGAN, data_dir: str, n: int) -> dict:
    """Pixel standard deviation across the images of one prompt ("the digit d"), next to the same for real digits.

    A ratio near 1 means the samples of a prompt vary as much as real handwriting; near 0, that G ignores z
    (mode collapse within the class), which prompt accuracy alone cannot reveal.
    """
    real, labels = mnist_images(data_dir, with_labels=True)
    fake_std, real_std = [], []
    for d in range(10):
        fake = model(torch.randn(n, model.latent_dim), [caption(d, 3)] * n)  # (n, 1, 28, 28)
        fake_std.append(float(fake.std(0).mean()))
        real_std.append(float(real[labels == d][:n].std(0).mean()))
    ratio = sum(fake_std) / sum(real_std)
    return {"generated_pixel_std": fake_std, "real_pixel_std": real_std, "ratio": ratio}


@torch.no_grad()
def plot(path: Path, model: TextGAN, seen: dict, epochs: int) -> None:
    """One row per digit ("the digit d") on the left, per-digit prompt accuracy on the right."""
    texts = [caption(d, 3) for d in range(10) for _ in range(8)]
    images = model(torch.randn(80, model.latent_dim), texts)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), gridspec_kw={"width_ratios": [1, 1.2]})
    axes[0].imshow(image_grid(images, nrow=8).permute(1, 2, 0).numpy())
    axes[0].set(title=f'rows: "the digit 0" ... "the digit 9" ({epochs:.2f} epochs)', xticks=[], yticks=[])
    axes[1].bar(range(10), seen["per_digit"])
    axes[1].axhline(TARGET_ACC, color="r", ls="--", label=f"target {TARGET_ACC}")
    axes[1].set(xlabel="prompted digit", ylabel="classified as prompted", ylim=(0, 1), xticks=range(10),
                title=f"prompt accuracy {seen['overall']:.3f} (all {len(CAPTION_TEMPLATES)} templates)")
    axes[1].legend(loc="lower right")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
