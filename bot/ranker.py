"""The response ranker: how well does a candidate reply fit the conversation so far?

The MiniLM encoder the emotion classifier uses, fine-tuned (LoRA) so that the embedding of the recent
turns lies close to the embedding of a reply that fits them: the fit score is the cosine of the two,
mean-pooled and normalised (times a fixed scale, so it reads as a logit). The context is encoded once a
turn and each candidate once, so scoring N candidates costs N short encoder passes. It is trained by
``finetune.train_ranker`` on EmpatheticDialogues and ESConv with in-batch negatives plus, for each
context, a reply from another turn of the same conversation, the reply to the most similar other
context by TF-IDF (fits the words, not the situation), and a reply with the same emotion label.

A ranker folder may also hold a *cross-encoder* in ``cross/`` (``finetune.train_cross_ranker``): the
same encoder reading the recent turns and the candidate together in one pass ("[CLS] context [SEP]
reply [SEP]"), with one output. It was trained as a correction of the bi-encoder (its head started
at zero), so the fit is the bi-encoder's score plus its output. It sees what an embedding of each
side apart cannot ("Congratulations!" to "I was passed over for a promotion"); it costs one encoder
pass per candidate over both texts. ``ResponseRanker(spec, cross=False)`` leaves it off. The reply
pool is indexed by the bi-encoder alone, so adding or retraining a cross-encoder keeps the pool.

``ResponseRanker(spec).score(messages, candidates)`` returns one score per candidate. ``spec`` is
``"empathy-ranker"`` (shipped with the package; trained on CC BY-NC data, like the reply adapter) or a
folder written by ``finetune.train_ranker``.

Training and serving share ``context_text`` and ``embed``, so the ranker reads at serving time
exactly what it was trained on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from .errors import ModelNotFoundError

log = logging.getLogger(__name__)

SHIPPED_RANKER = "empathy-ranker"
CONTEXT_TURNS = 3  # the last user message and up to two turns before it
MAX_CONTEXT_TOKENS = 96
MAX_REPLY_TOKENS = 64
_SPEAKER = {"user": "Person", "assistant": "Listener"}


def context_text(messages: Sequence[dict], turns: int = CONTEXT_TURNS) -> str:
    """The recent turns as one text, oldest first, each with its speaker ("Person:" / "Listener:")."""
    recent = [m for m in messages if m.get("role") in _SPEAKER][-turns:]
    return " ".join(f"{_SPEAKER[m['role']]}: {m['content']}" for m in recent)


def encode_text(tokenizer, text: str, max_tokens: int) -> list[int]:
    """Token ids of one text with [CLS] / [SEP]; a context keeps its *last* tokens (the newest message
    matters most; ``max_tokens < 0``), a reply its first ones."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = ids[max_tokens:] if max_tokens < 0 else ids[:max_tokens]
    return [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]


def embed(model, tokenizer, texts: Sequence[str], max_tokens: int, batch_size: int = 64, device="cpu"):
    """Normalised mean-pooled embeddings (a torch tensor, one row per text, in order). Gradients flow
    when called outside ``torch.no_grad`` (training)."""
    import torch

    ids = [encode_text(tokenizer, t, max_tokens) for t in texts]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    rows = [None] * len(ids)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        enc = tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
        mask = enc["attention_mask"].to(device)
        hidden = model(input_ids=enc["input_ids"].to(device), attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        vecs = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1.0), dim=-1)
        for r, i in enumerate(idx):
            rows[i] = vecs[r]
    return torch.stack(rows)


def cross_ids(tokenizer, context: str, reply: str) -> list[int]:
    """What the cross-encoder reads: [CLS] the context's last tokens [SEP] the reply's first tokens [SEP]."""
    c = tokenizer(context, add_special_tokens=False)["input_ids"][-MAX_CONTEXT_TOKENS:]
    r = tokenizer(reply, add_special_tokens=False)["input_ids"][:MAX_REPLY_TOKENS]
    return [tokenizer.cls_token_id, *c, tokenizer.sep_token_id, *r, tokenizer.sep_token_id]


def cross_scores(model, tokenizer, contexts: Sequence[str], replies: Sequence[str], grad: bool = False,
                 batch_size: int = 32, device="cpu"):
    """The cross-encoder's output for each (context, reply) pair, in order: a list of floats, or with
    ``grad`` a tensor that gradients flow through (training)."""
    import torch

    ids = [cross_ids(tokenizer, c, r) for c, r in zip(contexts, replies)]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # batches of similar length: little padding
    parts = []
    for s in range(0, len(order), batch_size):
        enc = tokenizer.pad({"input_ids": [ids[i] for i in order[s:s + batch_size]]}, return_tensors="pt")
        parts.append(model(input_ids=enc["input_ids"].to(device),
                           attention_mask=enc["attention_mask"].to(device)).logits[:, 0].float().cpu())
    scores = torch.zeros(len(ids))
    if parts:  # back into the order of the pairs
        scores = scores.index_add(0, torch.tensor(order, dtype=torch.long), torch.cat(parts))
    return scores if grad else scores.tolist()


def resolve_ranker(spec: str | None):
    """A ``ResolvedModel`` for the ranker, or None when ranking is off (``None`` / ``""``)."""
    from .resolve import ResolvedModel, _list_files, _resolve_local_or_hub

    if not spec:
        return None
    if spec == SHIPPED_RANKER:
        folder = Path(__file__).resolve().parent / "models" / SHIPPED_RANKER
        if not (folder / "ranker.json").is_file():
            raise ModelNotFoundError(f"the shipped ranker is missing from {folder}; reinstall the package "
                                     "or pass --ranker '' to turn ranking off")
        return ResolvedModel(spec, "package", str(folder), None, f"shipped response ranker ({folder})",
                             _list_files(folder))
    resolved = _resolve_local_or_hub(spec, "ranker", "--ranker")
    if not resolved.is_local or not (Path(resolved.location) / "ranker.json").is_file():
        raise ModelNotFoundError(f"the ranker {spec!r} is not a folder written by finetune.train_ranker "
                                 "(it has no ranker.json)")
    return resolved


def load_encoder(encoder_spec: str):
    """The bare encoder (``BertModel``, float32, CPU) that a ranker adapter is trained on and merged into."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from .resolve import resolve_encoder

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the sentence-embedding checkpoint has no pooler weights: expected
    try:
        return AutoModel.from_pretrained(resolve_encoder(encoder_spec).location, dtype=torch.float32,
                                         add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(verbosity)


class ResponseRanker:
    """Scores candidate replies for fit with the conversation (see the module docstring)."""

    def __init__(self, spec: str = SHIPPED_RANKER, device: str = "cpu", cache_dir: str | None = None,
                 cross: bool = True):
        import json

        self.resolved = resolve_ranker(spec)
        if self.resolved is None:
            raise ModelNotFoundError("no ranker given")
        folder = Path(self.resolved.location)
        def full():
            from transformers import AutoTokenizer

            from .fast_encoder import encoder_meta

            model = load_encoder(meta["encoder"])
            if meta.get("form") == "lora-adapter":
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
            fast = ({"kind": "encoder", "encoder": encoder_meta(model.config)}
                    if type(model).__name__ == "BertModel" and model.config.hidden_act == "gelu" else None)
            return AutoTokenizer.from_pretrained(folder), model.to(device).eval(), fast

        try:
            from .fast_encoder import load

            meta = json.loads((folder / "ranker.json").read_text())
            self.scale = float(meta.get("scale", 20.0))
            # a fast copy in the model cache after the first load (see bot.fast_encoder; cache_dir "": none)
            self.tokenizer, self.model = load("ranker", folder, cache_dir, device, full)
            self.cross_model = self.cross_tokenizer = None
            if cross and (folder / "cross" / "classifier.json").is_file():
                self.cross_tokenizer, self.cross_model = load_cross(folder / "cross", cache_dir, device)
            fit_file = folder / "emotion_fit.json"
            self.emotion_profile = json.loads(fit_file.read_text()) if fit_file.is_file() else None
            situation_file = folder / "situation.json"
            self.situation_model = json.loads(situation_file.read_text()) if situation_file.is_file() else None
        except ModelNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            raise ModelNotFoundError(f"could not load the response ranker {spec!r}: {exc}") from exc
        self.device = device

    def score(self, messages: Sequence[dict], candidates: Sequence[str]) -> list[float]:
        """One fit score per candidate (scale x cosine: higher fits better) for the conversation
        ``messages`` (ending with the user's message)."""
        if not candidates:
            return []
        return self.score_pairs([context_text(messages)] * len(candidates), list(candidates))

    def context_vector(self, messages: Sequence[dict]):
        """The normalised embedding of the conversation's recent turns (a numpy vector): the key the reply
        pool is searched with (``bot.retrieval``)."""
        import torch

        with torch.inference_mode():
            return embed(self.model, self.tokenizer, [context_text(messages)], -MAX_CONTEXT_TOKENS,
                         device=self.device)[0].float().cpu().numpy()

    def emotion_fit(self, message_probs: dict[str, float], reply_probs: Sequence[dict[str, float]]) -> list[float]:
        """How each reply's emotions match those human listeners answer this message's emotions with
        (cosine with the expected reply profile; see ``finetune.emotion_fit``). Empty without a profile."""
        if not self.emotion_profile or not reply_probs:
            return []
        import numpy as np

        labels = self.emotion_profile["labels"]
        profile = np.asarray(self.emotion_profile["profile"])
        u = np.asarray([message_probs.get(label, 0.0) for label in labels])
        expected = (u / max(u.sum(), 1e-9)) @ profile
        out = []
        for probs in reply_probs:
            r = np.asarray([probs.get(label, 0.0) for label in labels])
            out.append(float(r @ expected / max(np.linalg.norm(r) * np.linalg.norm(expected), 1e-9)))
        return out

    def situation(self, vector) -> float | None:
        """The probability that the conversation tells of something bad happening to the person, read
        from its context vector (``context_vector``) by ``situation.json`` beside the ranker (see
        ``finetune.train_situation``); None without one."""
        if not self.situation_model:
            return None
        import numpy as np

        z = float(np.dot(np.asarray(self.situation_model["weights"]), vector)) + self.situation_model["bias"]
        return float(1.0 / (1.0 + np.exp(-z)))

    def bad_situation(self, vector) -> bool:
        """Whether ``situation`` reaches the threshold chosen on ED valid."""
        p = self.situation(vector)
        return p is not None and p >= self.situation_model["threshold"]

    @property
    def emotion_weight(self) -> float:
        return float(self.emotion_profile.get("weight", 0.0)) if self.emotion_profile else 0.0

    @property
    def has_cross(self) -> bool:
        return self.cross_model is not None

    def score_pairs(self, contexts: Sequence[str], replies: Sequence[str]) -> list[float]:
        """Fit scores for (context, reply) pairs, in order: the bi-encoder's (each distinct text encoded
        once), plus the cross-encoder's correction when the ranker has one."""
        fits = score_pairs(self.model, self.tokenizer, contexts, replies, self.scale, self.device)
        if self.cross_model is None or not fits:
            return fits
        import torch

        with torch.inference_mode():
            extra = cross_scores(self.cross_model, self.cross_tokenizer, contexts, replies, device=self.device)
        return [a + b for a, b in zip(fits, extra)]


def load_cross(folder: Path, cache_dir: str | None, device: str = "cpu"):
    """(tokenizer, model) of a ranker's cross-encoder (``cross/``: a one-output mean-pooling classifier
    saved as its LoRA adapter), through the fast copy in the model cache when there is one."""
    from .emotion import full_classifier
    from .fast_encoder import load

    return load("cross-ranker", folder, cache_dir, device, lambda: full_classifier(str(folder), True, device))


def score_pairs(model, tokenizer, contexts: Sequence[str], replies: Sequence[str], scale: float = 20.0,
                device="cpu") -> list[float]:
    import torch

    ctx_texts, rep_texts = sorted(set(contexts)), sorted(set(replies))
    with torch.inference_mode():
        c = embed(model, tokenizer, ctx_texts, -MAX_CONTEXT_TOKENS, device=device)
        r = embed(model, tokenizer, rep_texts, MAX_REPLY_TOKENS, device=device)
    ci = {t: i for i, t in enumerate(ctx_texts)}
    ri = {t: i for i, t in enumerate(rep_texts)}
    cs = c[[ci[t] for t in contexts]]
    rs = r[[ri[t] for t in replies]]
    return (scale * (cs * rs).sum(-1)).tolist()
