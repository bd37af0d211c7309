"""The reply model: a causal LM (plus an optional PEFT adapter) that writes candidate replies.

Loading a GGUF file de-quantizes every tensor, which takes seconds; the converted model is kept in
a cache folder (``ModelConfig.cache_dir``) so that later starts load plain safetensors instead.
A local adapter merged into a GGUF base is cached the same way (``merged/``, keyed by the hashes of
the GGUF file and of the adapter's files), so later starts skip PEFT and the merge too.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .config import GenerationConfig, ModelConfig
from .errors import GenerationError, ModelNotFoundError
from .resolve import ResolvedModel, file_sha256, resolve_adapter, resolve_base_model

log = logging.getLogger(__name__)

# Seeded sampling uses torch's process-wide generator; this lock makes "seed, then generate" atomic
# across bots in one process.
_SEEDED_GENERATION = threading.Lock()


def default_cache_dir() -> Path:
    return Path(os.environ.get("EMPATHETIC_BOT_CACHE") or Path.home() / ".cache" / "empathetic-bot")


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelNotFoundError(f"device {device!r} was requested but CUDA is not available; use --device cpu")
    return device


def pick_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None


def _gguf_cache_folder(resolved: ResolvedModel, cache_dir: str | None) -> Path | None:
    if cache_dir == "":
        return None
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    gguf = Path(resolved.location) / resolved.gguf_file
    stat = gguf.stat()
    return root / "gguf" / f"{gguf.stem}-{_file_hash(str(gguf), stat.st_size, stat.st_mtime_ns)[:16]}"


@functools.lru_cache(maxsize=8)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, remembered while its size and modification time stay the same (a start
    with an adapter names two caches after the same 100 MB base file)."""
    return file_sha256(path)


def merge_cache_name(base_key: str, adapter: ResolvedModel) -> str | None:
    """The name of a cached merge of a local ``adapter`` into a base known by ``base_key``:
    ``<adapter folder's path hash>-<hash of base_key and the adapter's files>``; None when the folder
    holds no adapter files. Shared by the transformers and llama.cpp caches."""
    folder = Path(adapter.location).resolve()
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.name.startswith("adapter_") and p.suffix in (".json", ".safetensors", ".bin"))
    if not files:
        return None
    h = hashlib.sha256(base_key.encode())
    for f in files:
        h.update(f"{f.name}:{file_sha256(f)}".encode())
    where = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    return f"{where}-{h.hexdigest()[:16]}"


MERGE_INDEX = ".sources.json"  # in each kind's folder: what each cached merge was made from


def record_merge(path: Path, adapter_folder: str, base_key: str) -> None:
    """Note beside a cached merge the adapter folder and base it was made from, so that
    ``empathetic-bot cache --prune`` can tell when the adapter is gone or has changed. Best effort: a
    merge the index does not know is kept."""
    import json

    index = path.parent / MERGE_INDEX
    try:
        data = json.loads(index.read_text()) if index.is_file() else {}
        data[path.name] = {"adapter": str(Path(adapter_folder).resolve()), "base_key": base_key}
        data = {k: v for k, v in data.items() if (path.parent / k).exists()}
        tmp = index.with_name(f"{index.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, index)
    except (OSError, ValueError) as exc:
        log.debug("could not record the merge %s: %s", path, exc)


def stale_merge(entry: Path) -> bool | None:
    """Whether a cached merge was made from an adapter folder that is gone or now holds other weights
    (it would be merged anew under another name); None when the index does not know it."""
    import json
    from types import SimpleNamespace

    try:
        known = json.loads((entry.parent / MERGE_INDEX).read_text()).get(entry.name)
    except (OSError, ValueError):
        return None
    if not known:
        return None
    folder = Path(known["adapter"])
    if not folder.is_dir():
        return True
    name = merge_cache_name(known["base_key"], SimpleNamespace(location=str(folder)))
    return name is None or name != entry.name.removesuffix(".gguf")


def drop_older_merges(path: Path) -> None:
    """Remove the cached merges of the same adapter folder beside ``path`` (``path`` itself included; a
    retrained adapter would otherwise leave one copy of the model per training run). Entries being
    written (``<name>.<random>``) are left alone."""
    prefix, suffix = path.name.split("-")[0] + "-", path.suffix
    if not path.parent.is_dir():
        return
    for old in path.parent.iterdir():
        stem = old.name[: len(old.name) - len(suffix)] if suffix and old.name.endswith(suffix) else None
        if suffix and stem is None:
            continue
        if old.name.startswith(prefix) and "." not in (stem if suffix else old.name):
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)


def _merged_cache_folder(resolved: ResolvedModel, adapter: ResolvedModel, cache_dir: str | None, dtype) -> Path | None:
    """Where the base with ``adapter`` merged in is kept; None when it is not cached (caching off, a
    base that is not a GGUF file, or an adapter that is not a local folder: their contents have no
    cheap fingerprint). Named by ``merge_cache_name`` over the converted base's name and the dtype."""
    base_cache = _gguf_cache_folder(resolved, cache_dir) if resolved.gguf_file else None
    if base_cache is None or not adapter.is_local:
        return None
    name = merge_cache_name(_merge_key(base_cache, dtype), adapter)
    return base_cache.parent.parent / "merged" / name if name else None


def _merge_key(base_cache: Path, dtype) -> str:
    return f"{base_cache.name}|{dtype}"


def _replace_merged_cache(folder: Path, tok, model, adapter_folder: str, base_key: str) -> None:
    """Write ``folder``, drop older merges of the same adapter folder and note what it was made from."""
    drop_older_merges(folder)  # includes an unreadable copy at ``folder`` itself
    _write_cache(folder, tok, model)
    if folder.is_dir():
        record_merge(folder, adapter_folder, base_key)


def mark_dequantized(model) -> None:
    """transformers de-quantizes GGUF weights to floats on load but still tags the model as
    "quantized with gguf", which blocks ``save_pretrained`` and training. The weights are plain
    floats, so drop the tag."""
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _write_cache(cache: Path, tok, model) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=cache.name + ".", dir=cache.parent))
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            os.rename(tmp, cache)  # atomic: a concurrent start sees all of it or none
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
        log.info("cached the converted model in %s", cache)
    except OSError as exc:
        log.warning("could not cache the converted model in %s: %s", cache, exc)


def _read_cache(cache: Path | None, dtype):
    """(tokenizer, model) from a cached copy (converted GGUF or merged adapter); None when the copy is
    missing or unreadable: a broken cache is rebuilt, not fatal."""
    if cache is None or not (cache / "config.json").is_file():
        return None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(cache), AutoModelForCausalLM.from_pretrained(cache, dtype=dtype)
    except Exception as exc:  # noqa: BLE001
        log.warning("ignoring the unreadable model cache %s: %s", cache, exc)
        return None


def _load_gguf(resolved: ResolvedModel, dtype, cache: Path | None):
    """Read the converted copy in ``cache`` when it is there; else convert the GGUF and write it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = _read_cache(cache, dtype)
    if cached is not None:
        return (*cached, str(cache))
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise ModelNotFoundError("reading a .gguf model needs the gguf package: pip install gguf") from None
    tok = AutoTokenizer.from_pretrained(resolved.location, gguf_file=resolved.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(resolved.location, gguf_file=resolved.gguf_file, dtype=dtype)
    mark_dequantized(model)
    if cache is not None:
        _write_cache(cache, tok, model)
    return tok, model, resolved.location


def load_base(resolved: ResolvedModel, dtype, cache_dir: str | None = None):
    """(tokenizer, causal LM, where it was read from) for a resolved base model, on the CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        if resolved.gguf_file:
            return _load_gguf(resolved, dtype, _gguf_cache_folder(resolved, cache_dir))
        return (AutoTokenizer.from_pretrained(resolved.location),
                AutoModelForCausalLM.from_pretrained(resolved.location, dtype=dtype), resolved.location)
    except ModelNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001
        hint = " (a hub id needs a network connection the first time)" if resolved.kind == "hub" else ""
        raise ModelNotFoundError(f"could not load the base model {resolved.spec!r}{hint}: {exc}") from exc


def plain_model_folder(resolved: ResolvedModel, cache_dir: str | None = None) -> str:
    """A folder (or hub id) that ``from_pretrained`` reads without ``gguf_file``: for a GGUF model, the
    converted copy in the cache (made now if missing). 4-bit loading (QLoRA) needs this."""
    if not resolved.gguf_file:
        return resolved.location
    # 4-bit loading needs the converted copy even where caching is off (``cache_dir == ""``).
    folder = _gguf_cache_folder(resolved, cache_dir or None)
    if not (folder / "config.json").is_file():
        import torch

        _load_gguf(resolved, torch.float32, folder)  # converts and writes the copy
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"could not write a converted copy of {resolved.spec!r} to {folder}")
    return str(folder)


@dataclass
class StreamStats:
    prompt_tokens: int = 0
    new_tokens: int = 0
    generate_s: float = 0.0
    rank_s: float = 0.0  # scoring the candidates (the ranker; the cross-encoder when it has one)
    stopped: str = "eos"  # "eos", "max_new_tokens" or "cancelled"
    model_called: bool = False  # False on a turn answered by written lines and the pool alone


def run_generation(owner, fn, stats: StreamStats):
    """``fn()`` on ``owner``'s model thread, one generation at a time (``owner._lock``), its time in
    ``stats.generate_s``; any failure becomes a ``GenerationError``. Shared by the backends."""
    with owner._lock:
        started = time.perf_counter()
        try:
            out = owner.call(fn)
        except Exception as exc:  # noqa: BLE001
            raise GenerationError(f"the reply model failed: {exc}") from exc
        stats.generate_s = time.perf_counter() - started
    return out


def mark_stopped(stats: StreamStats, replies: list[tuple[str, bool]], cancel: threading.Event) -> None:
    """Why the candidates ended: cancelled, every one cut at the length limit, or (default) an end token."""
    if cancel.is_set():
        stats.stopped = "cancelled"
    elif replies and not any(f for _, f in replies):
        stats.stopped = "max_new_tokens"


class ReplyModel:
    """Tokenizer + causal LM (+ adapter). Thread-safe for one generation at a time per instance."""

    def __init__(self, config: ModelConfig):
        t0 = time.perf_counter()
        self.config = config
        self.resolved = resolve_base_model(config.base_model)
        self.adapter = resolve_adapter(config.adapter)
        self.device = pick_device(config.device)
        self.dtype = pick_dtype(config.dtype, self.device)
        # All torch work of this model, and of the bot's classifier (see ``call``), runs on this one
        # thread, loading included. On CPU each thread that runs torch ops keeps its own OpenMP team,
        # and a second team (say, the classifier on the caller's thread, or an adapter merged on it)
        # halves generation speed on 2 cores.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reply-model")
        self.call(self._load)
        self._lock = threading.Lock()
        self.load_s = time.perf_counter() - t0
        log.info("reply model %s loaded on %s (%s) in %.1fs", self.resolved.spec, self.device, self.dtype, self.load_s)

    def _load(self) -> None:
        merged = (_merged_cache_folder(self.resolved, self.adapter, self.config.cache_dir, self.dtype)
                  if self.adapter is not None else None)
        cached = _read_cache(merged, self.dtype)
        if cached is not None:
            (self.tokenizer, self.model), self.loaded_from = cached, str(merged)
        else:
            if merged is not None or (self.resolved.gguf_file and self.config.cache_dir != ""):
                log.warning("Preparing the reply model for first use (once, about 20 s on 2 cores; kept in the "
                            "model cache)...")
            self.tokenizer, self.model, self.loaded_from = load_base(self.resolved, self.dtype, self.config.cache_dir)
            if self.adapter is not None:
                self._attach_adapter()
                if merged is not None:
                    _replace_merged_cache(merged, self.tokenizer, self.model, self.adapter.location,
                                          _merge_key(_gguf_cache_folder(self.resolved, self.config.cache_dir),
                                                     self.dtype))
        self.model.to(device=self.device, dtype=self.dtype).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelNotFoundError(
                f"the base model {self.resolved.spec!r} has no chat template; use an instruction-tuned (chat) model"
            )
        self.context_window = int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)

    def _attach_adapter(self) -> None:
        from peft import PeftModel

        try:
            peft_model = PeftModel.from_pretrained(self.model, self.adapter.location)
        except Exception as exc:  # noqa: BLE001
            raise ModelNotFoundError(f"could not load the adapter {self.adapter.spec!r}: {exc}") from exc
        # Merging makes generation as fast as the bare base model.
        self.model = peft_model.merge_and_unload()

    def call(self, fn, *args, **kwargs):
        """Run ``fn`` on the model's own thread and return its result (see ``_worker``)."""
        return self._worker.submit(fn, *args, **kwargs).result()

    # -- tokens ----------------------------------------------------------------------------------
    def encode(self, messages: list[dict]) -> list[int]:
        out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(out, dict) or hasattr(out, "keys"):
            out = out["input_ids"]
        return list(out)

    def count_tokens(self, messages: list[dict]) -> int:
        return len(self.encode(messages))

    def sequence_nll(self, ids: list[int], labels: list[int], ignore: int = -100) -> float:
        """Summed negative log-likelihood of the labelled tokens of ``ids`` (labels equal to ``ignore``
        are not scored)."""
        import torch

        def run() -> float:
            with torch.inference_mode():
                logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0, :-1].float()
                target = torch.tensor(labels[1:], device=logits.device)
                return float(torch.nn.functional.cross_entropy(logits, target, ignore_index=ignore, reduction="sum"))

        with self._lock:
            return self.call(run)

    def guided_nll(self, ids: list[int], uncond_ids: list[int], n_scored: int, gammas) -> list[float]:
        """Summed negative log-likelihood of the last ``n_scored`` tokens of ``ids`` under guidance at
        decoding (``bot.guidance``), for each ``gamma``: ``uncond_ids`` ends with the same tokens after the
        prompt without the state. Gamma 1 gives ``sequence_nll``."""
        import torch

        if n_scored < 1 or ids[-n_scored:] != uncond_ids[-n_scored:]:
            raise ValueError("both sequences must end with the same scored tokens")

        def run() -> list[float]:
            with torch.inference_mode():
                def logprobs(seq):
                    logits = self.model(input_ids=torch.tensor([seq], device=self.device)).logits[0].float()
                    return torch.log_softmax(logits[len(seq) - n_scored - 1:-1], dim=-1)

                c, u = logprobs(ids), logprobs(uncond_ids)
                target = torch.tensor(ids[-n_scored:], device=c.device)
                out = []
                for gamma in gammas:
                    mixed = torch.log_softmax(u + gamma * (c - u), dim=-1)
                    out.append(float(-mixed.gather(1, target[:, None]).sum()))
                return out

        with self._lock:
            return self.call(run)

    # -- generation ------------------------------------------------------------------------------
    takes_openers = True

    def candidates(self, messages: list[dict], settings: GenerationConfig, n: int, stats: StreamStats,
                   cancel: threading.Event | None = None,
                   unconditioned: list[dict] | None = None,
                   openers: Sequence[str] = ()) -> list[tuple[str, bool]]:
        """``n`` sampled replies to one prompt, in one batched ``generate`` (greedy decoding gives one):
        ``[(text, finished)]``, where ``finished`` is False for a reply cut at ``max_new_tokens``.
        With ``settings.guidance`` != 1 and ``unconditioned`` (the prompt without the emotion state),
        transformers' classifier-free guidance samples from ``u + guidance * (c - u)`` (``bot.guidance``).
        ``openers``: the first ``len(openers)`` replies start with these words, the model writing on from
        them (one batched ``generate`` per distinct opener; the text returned includes them)."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        cancel = cancel or threading.Event()
        ids = self.encode(messages)
        stats.prompt_tokens = len(ids)
        n = 1 if settings.temperature <= 0 else max(1, n)
        starts = [tuple(self.tokenizer(o, add_special_tokens=False)["input_ids"]) for o in openers[:n]]
        starts += [()] * (n - len(starts))
        groups: dict[tuple, list[int]] = {}  # opener tokens -> which candidates start with them
        for i, start in enumerate(starts):
            groups.setdefault(start, []).append(i)
        uncond_ids = self.encode(unconditioned) if unconditioned and settings.guidance != 1 else None

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return cancel.is_set()

        def kwargs_for(start: tuple, count: int) -> dict:
            input_ids = torch.tensor([ids + list(start)], device=self.device)
            kwargs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                          max_new_tokens=settings.max_new_tokens, min_new_tokens=2,
                          repetition_penalty=settings.repetition_penalty, num_return_sequences=count,
                          stopping_criteria=StoppingCriteriaList([_Cancel()]), pad_token_id=self.tokenizer.pad_token_id)
            if uncond_ids is not None:
                uncond = torch.tensor([uncond_ids + list(start)] * count, device=self.device)
                kwargs.update(guidance_scale=settings.guidance, negative_prompt_ids=uncond,
                              negative_prompt_attention_mask=torch.ones_like(uncond))
            if settings.temperature > 0:
                kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            return kwargs

        def run():
            rows: list[list[int] | None] = [None] * n
            with torch.inference_mode(), (_SEEDED_GENERATION if settings.seed is not None else nullcontext()):
                for k, (start, which) in enumerate(groups.items()):
                    if cancel.is_set() and k:
                        break
                    if settings.seed is not None:
                        torch.manual_seed(settings.seed + k)
                    out = self.model.generate(**kwargs_for(start, len(which)))
                    for i, row in zip(which, out[:, len(ids) + len(start):].tolist()):
                        rows[i] = row  # what the model wrote after the opener
            return rows

        rows = run_generation(self, run, stats)
        eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id} - {None}
        replies = []
        for start, row in zip(starts, rows):
            if row is None:  # a group not generated: the turn was cancelled
                continue
            length = next((j for j, t in enumerate(row) if t in eos), None)
            finished = length is not None
            row = row[:length] if finished else row
            stats.new_tokens += len(row)
            replies.append((self.tokenizer.decode(list(start) + row, skip_special_tokens=True).strip(), finished))
        mark_stopped(stats, replies, cancel)
        return replies

    def describe(self) -> dict:
        n_params = sum(p.numel() for p in self.model.parameters())
        return {
            "backend": "transformers",
            "base_model": self.resolved.description,
            "loaded_from": self.loaded_from,
            "adapter": self.adapter.description if self.adapter else None,
            "device": self.device,
            "dtype": str(self.dtype).replace("torch.", ""),
            "guidance": "supported",
            "parameters": n_params,
            "context_window": self.context_window,
            "load_seconds": round(self.load_s, 2),
        }
