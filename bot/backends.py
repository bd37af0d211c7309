"""Reply backends: what writes the candidate replies.

Every backend honours one small contract (``ReplyBackend``): candidate replies for a list of chat
messages under given sampling settings, a token count for a prompt, the context window, ``call`` to
run work on the backend's own thread, and ``describe`` for ``info``. Two are built in:

- ``transformers`` (``bot.generation.ReplyModel``): PyTorch, CPU or CUDA, any base model and any
  PEFT adapter; candidates come from one batched ``generate``.
- ``llama-cpp`` (``LlamaCppReplyModel``): llama.cpp through ``llama-cpp-python`` (optional: ``pip
  install 'empathetic-bot[fast]'``), CPU. It reads GGUF files; a LoRA adapter is merged into the GGUF
  base by ``bot.gguf_merge`` once and the file is cached. Candidates are sampled one after another
  from the same prompt, whose evaluation is kept and reused.

- ``openai`` (``OpenAIReplyModel``): any server that speaks the OpenAI chat-completions API (vLLM,
  TGI, llama.cpp's server, Ollama): ``--backend openai --base-url http://host:8000/v1 --model NAME``.

``auto`` (the default) picks llama.cpp on a CPU when it is installed and can serve the configured
base and adapter, and transformers otherwise, saying why in one log line.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, Sequence

from .config import BotConfig, GenerationConfig, ModelConfig
from .errors import GenerationError, ModelNotFoundError
from .resolve import ResolvedModel, resolve_adapter, resolve_base_model

log = logging.getLogger(__name__)

BACKENDS = ("auto", "transformers", "llama-cpp", "openai")
SMALL_MODEL_BYTES = 1 << 30  # below this, llama.cpp decodes on one thread (see LlamaCppReplyModel._load)


class ReplyBackend(Protocol):
    """What the bot needs from whatever writes its replies."""

    device: str
    context_window: int
    load_s: float

    def candidates(self, messages: list[dict], settings: GenerationConfig, n: int, stats,
                   cancel: threading.Event | None = None) -> list[tuple[str, bool]]:
        """``n`` sampled replies (one for greedy decoding) as ``[(text, finished)]``; ``finished`` is
        False for a reply cut at ``max_new_tokens``. Fills ``stats`` (a ``StreamStats``). A backend
        that can guide decoding towards the emotion state also takes ``unconditioned`` (the prompt
        without the state; passed only when ``settings.guidance`` is not 1)."""

    def count_tokens(self, messages: list[dict]) -> int: ...

    def call(self, fn, *args, **kwargs): ...

    def describe(self) -> dict: ...


def llama_cpp_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _cpu_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def llama_cpp_unsuitable(model: ModelConfig) -> str | None:
    """Why llama.cpp cannot serve this configuration (None when it can)."""
    if not llama_cpp_installed():
        return "llama-cpp-python is not installed (pip install 'empathetic-bot[fast]')"
    if model.device not in ("auto", "cpu"):
        return f"the device is {model.device!r}; the llama.cpp backend runs on the CPU"
    if model.device == "auto":
        import torch

        if torch.cuda.is_available():
            return "a CUDA device is present; transformers uses it"
    resolved = resolve_base_model(model.base_model)
    if not resolved.gguf_file or not resolved.is_local:
        return f"the base model {resolved.spec!r} is not a local GGUF file"
    adapter = resolve_adapter(model.adapter)
    if adapter is not None:
        if not adapter.is_local:
            return f"the adapter {adapter.spec!r} is not a local folder"
        from .gguf_merge import UnsupportedMerge, check_lora

        try:
            check_lora(adapter.location)  # names only: the weights are read when a merge is written
        except UnsupportedMerge as exc:
            return str(exc)
    return None


def load_reply_model(config: BotConfig):
    """The reply backend ``config.model.backend`` names (``auto`` decides, see the module's text)."""
    model = config.model
    choice = model.backend
    if choice not in BACKENDS:
        raise ValueError(f"unknown backend {choice!r}; use one of {', '.join(BACKENDS)}")
    conv = config.conversation
    if choice == "openai":
        return OpenAIReplyModel(model, context_tokens=conv.context_tokens,
                                max_new_tokens=config.generation.max_new_tokens)
    if choice in ("auto", "llama-cpp"):
        why_not = llama_cpp_unsuitable(model)
        if why_not is None:
            return LlamaCppReplyModel(model, context_tokens=conv.context_tokens,
                                      max_new_tokens=config.generation.max_new_tokens)
        if choice == "llama-cpp":
            raise ModelNotFoundError(f"the llama-cpp backend cannot run this configuration: {why_not}")
        log.info("reply backend: transformers (llama.cpp not used: %s)", why_not)
    from .generation import ReplyModel

    return ReplyModel(model)


# -- llama.cpp -------------------------------------------------------------------------------------
def merged_gguf_path(base: ResolvedModel, adapter: ResolvedModel, cache_dir: str | None, gguf_type: str) -> Path:
    """Where the base GGUF with ``adapter`` merged in is cached: ``<cache>/llama-cpp/<name>.gguf``, the
    name from ``merge_cache_name`` over the base file's hash and the tensor type."""
    from .generation import default_cache_dir, merge_cache_name

    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    name = merge_cache_name(_merge_key(base, gguf_type), adapter)
    if name is None:
        raise ModelNotFoundError(f"{adapter.location} holds no adapter files")
    return root / "llama-cpp" / f"{name}.gguf"


def _merge_key(base: ResolvedModel, gguf_type: str) -> str:
    """What a merged GGUF depends on besides the adapter: the base file's contents and the tensor type."""
    from .generation import _file_hash

    gguf = Path(base.location) / base.gguf_file
    stat = gguf.stat()
    return f"{_file_hash(str(gguf), stat.st_size, stat.st_mtime_ns)}|{gguf_type}"


def _merged_gguf(base: ResolvedModel, adapter: ResolvedModel, cache_dir: str | None, gguf_type: str) -> Path:
    """The merged file: from the cache, or written now (then older merges of the same adapter folder,
    which a retrained adapter leaves behind, are removed). With caching off it goes to a temporary
    folder that lives as long as the process."""
    from .generation import drop_older_merges, record_merge
    from .gguf_merge import merge_lora_into_gguf

    if cache_dir == "":
        import atexit
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="empathetic-bot-"))
        atexit.register(shutil.rmtree, tmp, True)
        path = tmp / "merged.gguf"
    else:
        path = merged_gguf_path(base, adapter, cache_dir, gguf_type)
        if path.is_file():
            return path
        drop_older_merges(path)
    t0 = time.perf_counter()
    log.warning("Preparing the reply model for llama.cpp: merging the adapter into the GGUF base (once, a few "
                "seconds)...")
    summary = merge_lora_into_gguf(Path(base.location) / base.gguf_file, adapter.location, path, gguf_type)
    log.info("merged %d adapter tensors (%s) into %s in %.1fs", summary["tensors_merged"], summary["merged_types"],
             path, time.perf_counter() - t0)
    if cache_dir != "":
        record_merge(path, adapter.location, _merge_key(base, gguf_type))
    return path


class _ChatTokenizer:
    """The two tokenizer calls that ``finetune.train_adapter.tokenize_example`` makes, answered by
    llama.cpp's own vocabulary and the GGUF file's chat template (so evaluations that score reference
    replies run on this backend too)."""

    def __init__(self, backend: "LlamaCppReplyModel"):
        self._backend = backend

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = False, tokenize: bool = True):
        text = self._backend.render(messages, add_generation_prompt)
        return self._backend.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) if tokenize else text

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": self._backend.llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True)}


def hold_all_but_last(llm, ids: list[int]) -> None:
    """Leave ``llm``'s context holding all of ``ids`` but the last token, so that the next ``generate`` or
    ``eval`` reads that token alone. llama.cpp reads a new prompt in batches, but a prompt its cache
    already holds only from its last token on; the two give slightly different numbers, enough to change
    a sampled reply. Read the same way every time, the same seed gives the same reply on the first turn
    after a start as on any later one."""
    held = list(llm.input_ids[: llm.n_tokens]) if llm.n_tokens else []
    same = 0
    while same < min(len(held), len(ids) - 1) and held[same] == ids[same]:
        same += 1
    llm.n_tokens = same  # eval() drops the cache past this point
    if same < len(ids) - 1:
        llm.eval(ids[same:-1])


class LlamaCppReplyModel:
    """A GGUF model run by llama.cpp on the CPU (see the module's text). Thread-safe for one
    generation at a time per instance."""

    backend = "llama-cpp"

    def __init__(self, config: ModelConfig, context_tokens: int | None = 2048, max_new_tokens: int = 120,
                 threads: int | None = None):
        t0 = time.perf_counter()
        self.config = config
        self.resolved = resolve_base_model(config.base_model)
        if not self.resolved.gguf_file:
            raise ModelNotFoundError(f"the llama-cpp backend needs a GGUF base model, not {self.resolved.spec!r}")
        self.adapter = resolve_adapter(config.adapter)
        self.device = "cpu"
        self.threads = threads or config.threads or _cpu_threads()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reply-model")
        self._lock = threading.Lock()
        self.call(self._load, context_tokens, max_new_tokens)
        self.load_s = time.perf_counter() - t0
        log.info("reply model %s loaded in llama.cpp (%s, %d threads) in %.1fs", self.resolved.spec,
                 self.model_file, self.threads, self.load_s)

    def _load(self, context_tokens: int | None, max_new_tokens: int) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ModelNotFoundError("the llama-cpp backend needs llama-cpp-python: "
                                     "pip install 'empathetic-bot[fast]'") from None
        base_file = Path(self.resolved.location) / self.resolved.gguf_file
        if self.adapter is None:
            self.model_file = base_file
        else:
            try:
                self.model_file = _merged_gguf(self.resolved, self.adapter, self.config.cache_dir,
                                               self.config.gguf_type)
            except Exception as exc:  # noqa: BLE001
                raise ModelNotFoundError(f"could not merge the adapter {self.adapter.spec!r} into "
                                         f"{self.resolved.spec!r} for llama.cpp: {exc}") from exc
        want = (context_tokens or 8192) + max_new_tokens
        # Decoding a small model is bound by memory, not arithmetic: on 2 cores one thread decodes the
        # default model as fast as two (152 against 152 tokens/s), and with another busy job on the
        # machine two threads fall to 39 tokens/s while one keeps 150. Prompts do use every thread.
        small = self.model_file.stat().st_size < SMALL_MODEL_BYTES
        self.decode_threads = 1 if small else self.threads

        def open_model(n_ctx: int):
            return Llama(model_path=str(self.model_file), n_ctx=n_ctx, n_batch=512, n_threads=self.decode_threads,
                         n_threads_batch=self.threads, verbose=False)

        try:
            self.llm = open_model(want)
            trained = int(self.llm._model.n_ctx_train() or want)
            if want > trained:  # no longer than the model was trained for
                self.llm = open_model(trained)
            self._open_model = lambda: open_model(self.llm.n_ctx())
            self._uncond_llm = None  # a second context for guidance at decoding, opened on first use
        except Exception as exc:  # noqa: BLE001
            raise ModelNotFoundError(f"llama.cpp could not load {self.model_file}: {exc}") from exc
        # the file's own metadata (read by llama.cpp; parsing it in Python takes seconds)
        self.template_source = self.llm.metadata.get("tokenizer.chat_template")
        if not self.template_source:
            raise ModelNotFoundError(f"the base model {self.resolved.spec!r} has no chat template; "
                                     "use an instruction-tuned (chat) model")
        self.context_window = self.llm.n_ctx()
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        self._template = env.from_string(self.template_source)
        self.tokenizer = _ChatTokenizer(self)
        vocab = self.llm._model
        self._eos = {self.llm.token_eos()} | ({vocab.token_eot()} if hasattr(vocab, "token_eot") else set())
        self._eos.discard(-1)
        self._special = {"bos_token": self._piece(self.llm.token_bos()), "eos_token": self._piece(self.llm.token_eos())}

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def call(self, fn, *args, **kwargs):
        """Run ``fn`` on the backend's own thread and return its result (see ``ReplyModel.call``)."""
        return self._worker.submit(fn, *args, **kwargs).result()

    def warm_up(self) -> None:
        """A few tokens of a tiny chat: llama.cpp allocates its buffers and graphs on the first evaluation,
        which would otherwise cost the first real turn about 0.4 s on 2 cores."""

        def warm():
            ids = self.encode([{"role": "user", "content": "Hello, how are you today?"}])
            for i, _ in enumerate(self.llm.generate(ids, top_k=1, temp=0.0)):
                if i >= 3:
                    break

        self.call(warm)

    # -- tokens ----------------------------------------------------------------------------------
    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt, **self._special)

    def encode(self, messages: list[dict]) -> list[int]:
        # Special tokens are parsed in the rendered prompt: its markers come from the template, and
        # message text reaches here screened (``bot.safety`` removes template markers from it).
        return self.llm.tokenize(self.render(messages).encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, messages: list[dict]) -> int:
        return len(self.encode(messages))

    def sequence_nll(self, ids: list[int], labels: list[int], ignore: int = -100) -> float:
        """Summed negative log-likelihood of the labelled tokens of ``ids`` (labels equal to ``ignore``
        are not scored), one decode step per scored token so that only the last logits are needed."""
        import numpy as np

        def run() -> float:
            first = next((i for i, x in enumerate(labels) if x != ignore), len(ids))
            if first == 0:
                raise ValueError("the first token cannot be scored: it has nothing before it")
            self.llm.reset()
            self.llm.eval(ids[:first])
            total, n_vocab = 0.0, self.llm.n_vocab()
            for i in range(first, len(ids)):
                if labels[i] != ignore:
                    logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(n_vocab,)).astype(np.float64)
                    top = logits.max()
                    total += float(top + np.log(np.exp(logits - top).sum()) - logits[labels[i]])
                if i + 1 < len(ids):
                    self.llm.eval([ids[i]])
            self.llm.reset()
            return total

        with self._lock:
            return self.call(run)

    # -- generation ------------------------------------------------------------------------------
    takes_openers = True

    def candidates(self, messages: list[dict], settings: GenerationConfig, n: int, stats,
                   cancel: threading.Event | None = None,
                   unconditioned: list[dict] | None = None,
                   openers: Sequence[str] = ()) -> list[tuple[str, bool]]:
        """``n`` sampled replies, one after another in this context (llama.cpp reuses the prompt's cache).
        With ``settings.guidance`` != 1 and ``unconditioned`` (the prompt without the emotion state), each
        token is sampled from the guided scores (``bot.guidance``), the unconditioned prompt run in a
        second context. ``openers``: the first ``len(openers)`` replies start with these words (the model
        writes on from them; the text returned includes them)."""
        cancel = cancel or threading.Event()
        ids = self.encode(messages)
        stats.prompt_tokens = len(ids)
        n = 1 if settings.temperature <= 0 else max(1, n)
        seeds = ([settings.seed + i for i in range(n)] if settings.seed is not None
                 else [random.randrange(2**31) for _ in range(n)])
        uncond_ids = self.encode(unconditioned) if unconditioned and settings.guidance != 1 else None
        starts = [self.llm.tokenize(o.encode("utf-8"), add_bos=False, special=False) for o in openers[:n]]
        starts += [[]] * (n - len(starts))

        def one(seed: int, start: list[int]) -> tuple[list[int], bool]:
            """What the model writes after ``start`` (the opener's tokens, given, not generated)."""
            self.llm.set_seed(seed)
            row: list[int] = []
            processors = None
            if uncond_ids is not None:
                from llama_cpp import LogitsProcessorList

                from .guidance import LlamaGuidance

                if self._uncond_llm is None:
                    self._uncond_llm = self._open_model()
                processors = LogitsProcessorList([LlamaGuidance(self._uncond_llm, uncond_ids + start, len(ids) + len(start),
                                                                settings.guidance)])
            # top_k 50 and no min_p, as transformers samples; llama.cpp's repeat penalty looks at the
            # last 64 tokens of the reply (transformers': the whole prompt and reply)
            for token in self.llm.generate(ids + start, top_k=50, top_p=settings.top_p, min_p=0.0,
                                           temp=max(settings.temperature, 0.0),
                                           repeat_penalty=settings.repetition_penalty,
                                           logits_processor=processors):
                if token in self._eos:
                    return row, True
                row.append(token)
                if len(row) >= settings.max_new_tokens or cancel.is_set():
                    break
            return row, False

        def run():
            hold_all_but_last(self.llm, ids)
            out = []
            for seed, start in zip(seeds, starts):
                if cancel.is_set() and out:
                    break
                out.append(one(seed, start))
            return out

        from .generation import mark_stopped, run_generation

        replies = []
        for start, (row, finished) in zip(starts, run_generation(self, run, stats)):
            stats.new_tokens += len(row)
            text = self.llm.detokenize(start + row).decode("utf-8", errors="replace")
            replies.append((text.strip(), finished))
        mark_stopped(stats, replies, cancel)
        return replies

    def describe(self) -> dict:
        return {
            "backend": self.backend,
            "base_model": self.resolved.description,
            "loaded_from": str(self.model_file),
            "adapter": self.adapter.description if self.adapter else None,
            "device": self.device,
            "dtype": f"GGUF ({self.config.gguf_type} merged tensors)" if self.adapter else "GGUF",
            "threads": self.threads,
            "decode_threads": self.decode_threads,
            "guidance": "supported",
            "parameters": int(self.llm._model.n_params()) if hasattr(self.llm._model, "n_params") else None,
            "context_window": self.context_window,
            "load_seconds": round(self.load_s, 2),
        }


def decode_rate(model_file: str | os.PathLike, threads: int, tokens: int = 128) -> dict:
    """llama.cpp's raw speed on a GGUF file: tokens a second decoding one token at a time after a short
    prompt (no sampling), and prompt tokens a second evaluating a longer prompt. For the benchmark's
    comparison of the merged file with the plain base file."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(model_file), n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False)
    prompt = llm.tokenize(b"Tell me about the first dog you ever had and what you loved about him.", add_bos=False)
    llm.eval(prompt)
    t0 = time.perf_counter()
    for _ in range(tokens):
        llm.eval([prompt[-1]])
    decode = tokens / (time.perf_counter() - t0)
    llm.reset()
    long_prompt = (prompt * (512 // len(prompt)))[:512]
    t0 = time.perf_counter()
    llm.eval(long_prompt)
    return {"decode_tokens_per_s": round(decode, 1),
            "prompt_tokens_per_s": round(len(long_prompt) / (time.perf_counter() - t0), 1)}


# -- any OpenAI-compatible server ----------------------------------------------------------------
API_KEY_VARIABLES = ("EMPATHETIC_BOT_API_KEY", "OPENAI_API_KEY")


class OpenAIReplyModel:
    """Replies from a server that speaks the OpenAI chat-completions API (vLLM, TGI, llama.cpp's
    server, Ollama, a hosted API): the bot's own prompts (persona, emotion state, guidance) are sent
    as chat messages and the candidates come back streamed. The key, when the server wants one, is
    read from ``$EMPATHETIC_BOT_API_KEY`` or ``$OPENAI_API_KEY``.

    Servers differ in what they accept: ``n`` (several choices in one request) is asked for and any
    missing choices are requested one by one; the repetition penalty, which is not part of the API,
    is not sent. Token counts for fitting the prompt are estimated (a token is taken as three bytes
    of text, which over-counts English), so the context budget stays on the safe side.
    """

    backend = "openai"

    def __init__(self, config: ModelConfig, context_tokens: int | None = 2048, max_new_tokens: int = 120,
                 timeout_s: float = 120.0):
        t0 = time.perf_counter()
        if not config.base_url:
            raise ModelNotFoundError("the openai backend needs a server address: --base-url http://host:port/v1")
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self.model_name = config.served_model or config.base_model
        self.device = "cpu"  # for the classifiers the bot runs itself
        self.timeout_s = timeout_s
        self.context_window = (context_tokens or 4096) + max_new_tokens
        self._key = next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), None)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bot-classifiers")
        self._said_no_guidance = False
        self.load_s = time.perf_counter() - t0

    def call(self, fn, *args, **kwargs):
        """The bot's classifier work runs on one thread of its own (see ``ReplyModel.call``)."""
        return self._worker.submit(fn, *args, **kwargs).result()

    def count_tokens(self, messages: list[dict]) -> int:
        return sum(len(m["content"].encode("utf-8")) // 3 + 4 for m in messages) + 2

    def _request(self, messages: list[dict], settings: GenerationConfig, n: int, seed: int | None,
                 cancel: threading.Event, stats) -> dict[int, list]:
        import json
        import urllib.error
        import urllib.request

        body = {"model": self.model_name, "messages": messages, "stream": True, "n": n,
                "max_tokens": settings.max_new_tokens, "temperature": settings.temperature, "top_p": settings.top_p}
        if seed is not None:
            body["seed"] = seed
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=json.dumps(body).encode(),
                                     headers=headers, method="POST")
        choices: dict[int, list] = {}  # index -> [text pieces, finish_reason]
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                for raw in resp:
                    if cancel.is_set():
                        break  # closing the connection stops the server's generation
                    line = raw.decode("utf-8", errors="replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if event.get("error"):
                        raise GenerationError(f"the reply server answered with an error: {event['error']}")
                    for ch in event.get("choices", []):
                        entry = choices.setdefault(int(ch.get("index", 0)), [[], None])
                        piece = (ch.get("delta") or {}).get("content")
                        if piece:
                            entry[0].append(piece)
                            stats.new_tokens += 1  # one streamed piece is about one token
                        if ch.get("finish_reason"):
                            entry[1] = ch["finish_reason"]
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", errors="replace")
            raise GenerationError(f"the reply server at {self.base_url} answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise GenerationError(f"could not reach the reply server at {self.base_url}: {exc}") from exc
        return choices

    def candidates(self, messages: list[dict], settings: GenerationConfig, n: int, stats,
                   cancel: threading.Event | None = None,
                   unconditioned: list[dict] | None = None) -> list[tuple[str, bool]]:
        """``n`` replies from the server. Guidance at decoding needs the model's logits, which a chat
        completions API does not give: ``unconditioned`` is ignored (said once in the log)."""
        if unconditioned and settings.guidance != 1 and not self._said_no_guidance:
            self._said_no_guidance = True
            log.warning("guidance %.2g ignored: an OpenAI-compatible server cannot be guided token by token",
                        settings.guidance)
        cancel = cancel or threading.Event()
        stats.prompt_tokens = self.count_tokens(messages)
        n = 1 if settings.temperature <= 0 else max(1, n)
        started = time.perf_counter()
        out: list[tuple[str, bool]] = []
        request_n = n
        while len(out) < n and not (cancel.is_set() and out):
            seed = None if settings.seed is None else settings.seed + len(out)
            got = self._request(messages, settings, request_n, seed, cancel, stats)
            if not got:
                break
            for _, (pieces, reason) in sorted(got.items()):
                out.append(("".join(pieces).strip(), reason == "stop"))
            request_n = 1  # a server that ignores ``n`` gets the rest one by one
        stats.generate_s = time.perf_counter() - started
        from .generation import mark_stopped

        mark_stopped(stats, out[:n], cancel)
        return out[:n]

    def describe(self) -> dict:
        return {"backend": self.backend, "base_model": f"{self.model_name} at {self.base_url}",
                "loaded_from": self.base_url, "adapter": None, "device": "server", "dtype": "server",
                "guidance": "unsupported", "parameters": None, "context_window": self.context_window, "load_seconds": round(self.load_s, 2)}
