"""LightningDataModules: MNIST, unpaired image folders. Every module here is imported by the CLI."""

from rlgen.datamodules.mnist import MNISTDataModule

__all__ = ["MNISTDataModule"]
