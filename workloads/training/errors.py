"""The job's errors, in a module without heavy imports: the entrypoint catches them before torch loads.

Each message is one line meant for the user; the entrypoint prints it on stderr and exits non-zero.
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base of the errors the entrypoint reports as a one-line reason."""


class ConfigError(TrainingError):
    """An argument is missing or out of range; the message names it."""


class DataError(TrainingError):
    """The dataset breaks the contract (docs/contracts.md, "Datasets")."""


class CheckpointError(TrainingError):
    """A checkpoint exists but cannot be used."""


class StorageError(TrainingError):
    """An object could not be read or written (not the data's fault: access, network)."""


class ObjectNotFound(StorageError):
    """The object (or its bucket) does not exist."""
