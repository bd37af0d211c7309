"""Exceptions the bot raises. Each message says what happened and what to do about it."""


class BotError(Exception):
    """Base class for every error the bot raises on purpose."""


class ModelNotFoundError(BotError):
    """A model, adapter or classifier could not be found or loaded."""


class InvalidInputError(BotError, ValueError):
    """The user's message cannot be answered as it is (empty, too long, not text).

    The session's history is left exactly as it was.
    """


class GenerationError(BotError):
    """The reply model failed while writing a reply. The session's history is unchanged."""
