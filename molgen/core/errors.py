"""Exception hierarchy. Every error a user can cause derives from
:class:`MolgenError` so the CLI can turn it into one clear line."""


class MolgenError(Exception):
    """Base class for errors caused by user input or user files."""


class RegistryError(MolgenError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(MolgenError, ValueError):
    """A configuration file or value is invalid."""


class DataError(MolgenError, ValueError):
    """A data set or data file is missing, empty or malformed."""


class ParseError(MolgenError, ValueError):
    """A text representation of a domain object could not be parsed."""


class UnknownTokenError(MolgenError, ValueError):
    """A token is not in the vocabulary.

    Attributes:
        token: The offending token.
    """

    def __init__(self, token: str, message: str | None = None):
        self.token = token
        super().__init__(message or f"unknown token {token!r} (not in the vocabulary)")


class CheckpointError(MolgenError, OSError):
    """A saved model or checkpoint directory is missing or corrupted."""
