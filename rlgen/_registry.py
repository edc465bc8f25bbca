"""Import every module of a package so that LightningCLI finds its classes by short name."""

import importlib
import pkgutil


def import_submodules(package_name: str) -> None:
    """Import all direct submodules of ``package_name`` (``class_path: VAE`` then resolves)."""
    package = importlib.import_module(package_name)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package_name}.{info.name}")
