"""The MiniLM (BERT) models of the bot, read without transformers: a quick start.

The emotion classifier, the crisis detector and the response ranker are BERT encoders with LoRA
adapters merged in. Loading them through transformers and peft means importing both (about 2 s of the
bot's 4 s start on 2 cores) and merging the adapters every time. The first load does that and writes
a *fast copy* into the model cache: the merged weights (safetensors), a small config and the
tokenizer file. Later starts read the copy into the plain PyTorch modules below and tokenize with the
``tokenizers`` library: same weights, same token ids, same numbers (the tests compare both paths),
without importing transformers at all.

A copy is named by a hash of everything it was made from (the model folder's files, the encoder's
weights file, this format's version), so a retrained model gets a new copy, and ``empathetic-bot cache
--clear encoders`` removes them all. With the cache off (``cache_dir=""``) every load takes the full path.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

log = logging.getLogger(__name__)

FORMAT = 1
CACHE_KIND = "encoders"
# Files beside a model that read its embeddings without changing them (a ranker's ``situation.json``, see
# ``finetune.train_situation``): adding one keeps the fast copies and reply pools made before.
READS_NOT_EMBEDS = frozenset({"situation.json"})


# -- where copies live ---------------------------------------------------------------------------------
def copy_folder(kind: str, sources: Sequence[Path], cache_dir: str | None) -> Path | None:
    """The folder of the fast copy of a model made from ``sources`` (files or folders), or None when the
    cache is off."""
    if cache_dir == "":
        return None
    from .generation import default_cache_dir

    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    digest = hashlib.sha256(f"format {FORMAT}".encode())
    for source in sources:
        files = sorted(p for p in Path(source).rglob("*") if p.is_file()) if Path(source).is_dir() else [Path(source)]
        for f in files:
            if f.suffix in (".png", ".md") or f.name == "run_summary.json" or f.name in READS_NOT_EMBEDS:
                continue  # cards and pictures do not change the weights
            digest.update(f.name.encode())
            digest.update(f.read_bytes() if f.stat().st_size < 64 * 2**20 else f"{f.stat().st_size}:{f.stat().st_mtime_ns}".encode())
    return root / CACHE_KIND / f"{kind}-{digest.hexdigest()[:16]}"


def read_copy(folder: Path | None, device: str = "cpu"):
    """(tokenizer, model, meta) from a fast copy, or None when there is none (or it cannot be read)."""
    if folder is None or not (folder / "fast.json").is_file():
        return None
    try:
        from safetensors.torch import load_file

        meta = json.loads((folder / "fast.json").read_text())
        if meta.get("format") != FORMAT:
            return None
        model = build(meta)
        model.load_state_dict(load_file(str(folder / "weights.safetensors")), strict=True)
        tokenizer = FastTokenizer(folder / "tokenizer.json", meta.get("truncation_side", "right"),
                                  meta.get("model_max_length", 512))
        return tokenizer, model.to(device).eval(), meta
    except Exception as exc:  # noqa: BLE001 - a damaged copy is rebuilt from the full path
        log.warning("the cached fast copy %s could not be read (%s); loading the full model", folder, exc)
        return None


def write_copy(folder: Path | None, model, tokenizer_file: Path, meta: dict) -> None:
    """Write the fast copy of ``model`` (a transformers BERT encoder, or a mean-pooling classifier or
    ensemble of them) atomically; failures only cost the next start its speed."""
    if folder is None or not Path(tokenizer_file).is_file():
        return
    try:
        from safetensors.torch import save_file

        state = our_state_dict(model, meta["kind"])
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp / "weights.safetensors"))
        shutil.copyfile(tokenizer_file, tmp / "tokenizer.json")
        (tmp / "fast.json").write_text(json.dumps({**meta, "format": FORMAT}, indent=1))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process wrote it first
            shutil.rmtree(tmp, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not write the fast copy %s: %s", folder, exc)


def encoder_meta(config) -> dict:
    """The architecture numbers of a transformers ``BertConfig`` that the modules below need."""
    return {"vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
            "num_hidden_layers": config.num_hidden_layers, "num_attention_heads": config.num_attention_heads,
            "intermediate_size": config.intermediate_size, "max_position_embeddings": config.max_position_embeddings,
            "type_vocab_size": config.type_vocab_size, "layer_norm_eps": config.layer_norm_eps,
            "hidden_act": config.hidden_act}


def our_state_dict(model, kind: str) -> dict:
    """The weights of a transformers model under the names of the modules below (a single classifier
    becomes the one member of ``MeanPoolClassifier``)."""
    state = model.state_dict()
    single = kind != "encoder" and not any(k.startswith("members.") for k in state)
    skip = ("position_ids", "token_type_ids", "pooler.")
    return {("members.0." if single else "") + k: v for k, v in state.items() if not any(s in k for s in skip)}


def stale_copy(entry: Path) -> bool | None:
    """Whether the fast copy in ``entry`` was made from a model folder that is gone or has changed since
    (a retrained model is copied anew under another name); None when the copy does not say what it was
    made from."""
    try:
        meta = json.loads((entry / "fast.json").read_text())
    except (OSError, ValueError):
        return None
    sources = [Path(s) for s in meta.get("sources", ())]
    if not sources:
        return None
    if not all(s.exists() for s in sources):
        return True
    kind = entry.name.rsplit("-", 1)[0]
    return copy_folder(kind, sources, str(entry.parent.parent)).name != entry.name


def build(meta: dict):
    if meta["kind"] == "encoder":
        return Encoder(meta["encoder"])
    return MeanPoolClassifier(meta["encoder"], meta["labels"], meta.get("problem_type"), meta.get("members", 1))


# -- the modules ---------------------------------------------------------------------------------------
@functools.cache  # built on first use, so that importing this module does not import torch
def _define():
    import torch
    from torch import nn

    class Embeddings(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
            self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
            self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
            self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

        def forward(self, input_ids, token_type_ids):
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            x = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None] + \
                self.token_type_embeddings(token_type_ids)
            return self.LayerNorm(x)

    class SelfAttention(nn.Module):
        def __init__(self, c):
            super().__init__()
            h = c["hidden_size"]
            self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)

    class Output(nn.Module):
        def __init__(self, n_in, n_out, eps):
            super().__init__()
            self.dense = nn.Linear(n_in, n_out)
            self.LayerNorm = nn.LayerNorm(n_out, eps=eps)

    class Attention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.self = SelfAttention(c)
            self.output = Output(c["hidden_size"], c["hidden_size"], c["layer_norm_eps"])

    class Intermediate(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    class Layer(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.attention = Attention(c)
            self.intermediate = Intermediate(c)
            self.output = Output(c["intermediate_size"], c["hidden_size"], c["layer_norm_eps"])
            self.heads = c["num_attention_heads"]

        def forward(self, x, bias):
            b, n, h = x.shape
            a = self.attention.self

            def split(t):
                return t.view(b, n, self.heads, h // self.heads).transpose(1, 2)

            q, k, v = split(a.query(x)), split(a.key(x)), split(a.value(x))
            scores = q @ k.transpose(-1, -2) / math.sqrt(h // self.heads) + bias
            ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, h)
            x = self.attention.output.LayerNorm(self.attention.output.dense(ctx) + x)
            y = nn.functional.gelu(self.intermediate.dense(x))
            return self.output.LayerNorm(self.output.dense(y) + x)

    class Encoder(nn.Module):
        """A BERT encoder without its pooler; ``last_hidden_state`` like transformers' ``BertModel``."""

        def __init__(self, c):
            super().__init__()
            if c.get("hidden_act", "gelu") != "gelu":
                raise ValueError(f"unsupported activation {c.get('hidden_act')!r}")
            self.embeddings = Embeddings(c)
            self.encoder = nn.Module()
            self.encoder.layer = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))

        def forward(self, input_ids, attention_mask=None, token_type_ids=None, **_):
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = self.embeddings(input_ids, token_type_ids)
            bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
            for layer in self.encoder.layer:
                x = layer(x, bias)
            return SimpleNamespace(last_hidden_state=x)

    class Member(nn.Module):
        def __init__(self, c, n_labels):
            super().__init__()
            self.bert = Encoder(c)
            self.classifier = nn.Linear(c["hidden_size"], n_labels)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return self.classifier((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))

    class MeanPoolClassifier(nn.Module):
        """The project's mean-pooling classifier, or an ensemble of them (the mean of the members'
        probabilities, given back as log-odds), with ``logits`` like transformers' output."""

        def __init__(self, c, labels, problem_type, members=1):
            super().__init__()
            self.members = nn.ModuleList(Member(c, len(labels)) for _ in range(members))
            self.config = SimpleNamespace(id2label=dict(enumerate(labels)), num_labels=len(labels),
                                          problem_type=problem_type)

        def forward(self, input_ids, attention_mask=None, token_type_ids=None, **_):
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            if len(self.members) == 1:
                return SimpleNamespace(logits=self.members[0](input_ids, attention_mask, token_type_ids))

            def member(m, modes=(torch.is_grad_enabled(), torch.is_inference_mode_enabled())):
                with torch.set_grad_enabled(modes[0]), torch.inference_mode(modes[1]):
                    return torch.sigmoid(m(input_ids, attention_mask, token_type_ids).float())

            if torch.get_num_threads() >= len(self.members):
                # each member on its own core, one thread each: a small model on short text keeps two
                # cores busier this way than one model on two threads (12-15 ms a message against 16-21)
                probs = torch.stack(list(_member_pool(len(self.members)).map(member, self.members)))
            else:  # a single core, or --threads 1 on a shared machine: one after the other
                probs = torch.stack([member(m) for m in self.members])
            mean = probs.mean(0).clamp(1e-7, 1 - 1e-7)
            return SimpleNamespace(logits=torch.log(mean) - torch.log1p(-mean))

    return SimpleNamespace(Encoder=Encoder, MeanPoolClassifier=MeanPoolClassifier)


@functools.cache
def _member_pool(n: int):
    """Threads that run ensemble members side by side, each with one PyTorch thread (the setting is
    per thread: the caller's own thread count is left alone)."""
    import torch
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(n, thread_name_prefix="ensemble-member", initializer=lambda: torch.set_num_threads(1))


def Encoder(config: dict):  # noqa: N802 - reads like the class it builds
    return _define().Encoder(config)


def MeanPoolClassifier(config: dict, labels, problem_type, members: int = 1):  # noqa: N802
    return _define().MeanPoolClassifier(config, labels, problem_type, members)


# -- the tokenizer -------------------------------------------------------------------------------------
class FastTokenizer:
    """The part of a transformers fast tokenizer's interface the bot uses, on the ``tokenizers`` library
    (the same library transformers' fast tokenizers run on, reading the same ``tokenizer.json``)."""

    def __init__(self, path: Path, truncation_side: str = "right", model_max_length: int = 512):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_padding()
        self._tok.no_truncation()
        self.truncation_side = truncation_side
        self.model_max_length = model_max_length
        self.cls_token_id = self._tok.token_to_id("[CLS]")
        self.sep_token_id = self._tok.token_to_id("[SEP]")
        self.pad_token_id = self._tok.token_to_id("[PAD]") or 0

    def __call__(self, texts, truncation: bool = False, max_length: int | None = None, padding: bool = False,
                 return_tensors: str | None = None, add_special_tokens: bool = True):
        single = isinstance(texts, str)
        if truncation and max_length:
            self._tok.enable_truncation(max_length, direction=self.truncation_side)
        else:
            self._tok.no_truncation()
        encs = self._tok.encode_batch([texts] if single else list(texts), add_special_tokens=add_special_tokens)
        ids = [e.ids for e in encs]
        if return_tensors is None and not padding:
            return {"input_ids": ids[0] if single else ids}
        return self.pad({"input_ids": ids}, return_tensors=return_tensors)

    def pad(self, batch: dict, return_tensors: str | None = "pt"):
        ids = batch["input_ids"]
        width = max((len(x) for x in ids), default=0)
        input_ids = [list(x) + [self.pad_token_id] * (width - len(x)) for x in ids]
        mask = [[1] * len(x) + [0] * (width - len(x)) for x in ids]
        out = {"input_ids": input_ids, "token_type_ids": [[0] * width for _ in ids], "attention_mask": mask}
        if return_tensors == "pt":
            import torch

            out = {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}
            return _Batch(out)
        return out


class _Batch(dict):
    """A dict of tensors with ``.to(device)``, like transformers' ``BatchEncoding``."""

    def to(self, device):
        return _Batch({k: v.to(device) for k, v in self.items()})


def load(kind: str, folder: Path | None, cache_dir: str | None, device: str, full):
    """(tokenizer, model) for the model in ``folder``: from its fast copy when there is one, else from
    ``full()`` (the transformers path, returning ``(tokenizer, model, meta or None)``: meta describes a
    model the modules above can hold), whose result is then copied for the next start."""
    target = copy_folder(kind, [folder], cache_dir) if folder is not None else None
    got = read_copy(target, device)
    if got is not None:
        return got[0], got[1]
    tokenizer, model, meta = full()
    if meta is not None and target is not None:
        write_copy(target, model, Path(folder) / "tokenizer.json",
                   {**meta, "sources": [str(Path(folder).resolve())],  # for `empathetic-bot cache --prune`
                    "truncation_side": getattr(tokenizer, "truncation_side", "right"),
                    "model_max_length": min(int(getattr(tokenizer, "model_max_length", 512) or 512), 10**6)})
    return tokenizer, model


def classifier_meta(model) -> dict | None:
    """What a fast copy of a transformers classifier needs, or None when it is not the project's
    mean-pooling BERT classifier (or ensemble) over a BERT encoder with GELU."""
    name = type(model).__name__
    if name not in ("BertMeanPoolForSequenceClassification", "BertMeanPoolEnsembleForSequenceClassification"):
        return None
    config = model.config
    if getattr(config, "model_type", "bert") != "bert" or config.hidden_act != "gelu":
        return None
    members = len(model.members) if hasattr(model, "members") else 1
    return {"kind": "classifier", "encoder": encoder_meta(config), "members": members,
            "labels": [config.id2label[i] for i in range(config.num_labels)], "problem_type": config.problem_type}
