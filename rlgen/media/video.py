"""Agent videos: write rgb_array frames to an MP4 file and send them to the active loggers.

TensorBoard gets an animated GIF summary (what ``SummaryWriter.add_video`` writes, encoded here with
Pillow because ``add_video`` still imports ``moviepy.editor``, which moviepy 2 removed); W&B gets
``log_video`` with the MP4 file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from pytorch_lightning import Trainer
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

from rlgen.compat import add_tensorboard_summary
from rlgen.media.images import logged_step


def save_video(frames: Sequence[np.ndarray], path: str | Path, fps: int = 30) -> Path:
    """Write ``frames`` (each ``(H, W, 3)`` uint8) to ``path`` (MP4 with moviepy's bundled ffmpeg)."""
    from moviepy import ImageSequenceClip  # imported here: moviepy loads ffmpeg on import

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ImageSequenceClip([np.asarray(f) for f in frames], fps=fps).write_videofile(str(path), logger=None)
    return path


def gif_bytes(frames: Sequence[np.ndarray], fps: int = 30) -> bytes:
    """An animated GIF of ``frames`` (each ``(H, W, 3)`` uint8), looping forever."""
    images = [Image.fromarray(np.asarray(f)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(1, round(1000 / fps)), loop=0)
    return buffer.getvalue()


def log_video(trainer: Trainer, key: str, frames: Sequence[np.ndarray], path: str | Path | None = None,
              fps: int = 30) -> None:
    """Send an episode's ``frames`` to every active logger at the scalars' current step (``logged_step``).

    Args:
        trainer: the running trainer (its loggers receive the video).
        key: metric-style name, e.g. ``val/video``.
        frames: the episode's rgb_array frames, each ``(H, W, 3)`` uint8.
        path: the MP4 already written for these frames (W&B uploads it); written to a temp name if None.
        fps: playback speed.
    """
    if not frames or not trainer.is_global_zero:
        return
    from tensorboard.compat.proto.summary_pb2 import Summary

    step = logged_step(trainer)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            h, w, c = np.asarray(frames[0]).shape
            image = Summary.Image(height=h, width=w, colorspace=c, encoded_image_string=gif_bytes(frames, fps))
            add_tensorboard_summary(logger.experiment, Summary(value=[Summary.Value(tag=key, image=image)]), step)
        elif isinstance(logger, WandbLogger):
            if path is None:
                path = save_video(frames, Path(logger.save_dir or ".") / "videos" / f"{key.replace('/', '_')}.mp4",
                                  fps)
            logger.log_video(key=key, videos=[str(path)], step=step)
