"""Empathetic chatbot runtime: ``EmpatheticBot``, its config, and the ``Reply`` it returns.

Imports are light: torch and transformers load only when a bot is created.
"""

from .config import BotConfig, ConversationConfig, GenerationConfig, ModelConfig
from .emotion import EmotionScore, EmotionState, EmotionTracker
from .errors import BotError, GenerationError, InvalidInputError, ModelNotFoundError

__all__ = [
    "BotConfig", "BotError", "ConversationConfig", "EmotionScore", "EmotionState", "EmotionTracker",
    "EmpatheticBot", "GenerationConfig", "GenerationError", "InvalidInputError", "ModelConfig",
    "ModelNotFoundError", "Reply",
]
__version__ = "0.1.0"


def __getattr__(name):
    if name in ("EmpatheticBot", "Reply"):
        from . import core

        return getattr(core, name)
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
