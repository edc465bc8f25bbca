"""LightningModules, one file per algorithm family. Every module here is imported by the CLI."""
