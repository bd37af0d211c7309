import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
# Converted models are cached inside the checkout, not in the user's home, during tests.
os.environ.setdefault("EMPATHETIC_BOT_CACHE", str(ARTIFACTS / "model-cache"))
os.environ.setdefault("EMPATHETIC_BOT_DATA_HOME", str(ARTIFACTS / "data-home"))  # the CLI's and UI's stored conversations
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def real_bot():
    """The bot on the real embedded default models (CPU), shared by the slow tests."""
    from bot import BotConfig, EmpatheticBot

    config = BotConfig()
    config.generation.max_new_tokens = 24
    config.generation.seed = 1234
    return EmpatheticBot(config)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")
