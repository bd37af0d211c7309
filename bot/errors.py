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


class TurnTimeoutError(GenerationError):
    """A turn ran past its time limit (``conversation.turn_timeout_s``) and was stopped. The session's
    history is unchanged."""


class ConversationConflictError(GenerationError):
    """Another process sharing the session store saved the conversation while this turn was answered;
    the turn was not kept (the session is as the other process left it), and may be sent again."""


class SessionStoreError(BotError, RuntimeError):
    """The session store cannot be opened: its database package or driver is not installed, its server
    cannot be reached or refuses the login, or it was written by a newer version of the package."""
