"""A pool of human replies: what people answered in conversations like this one.

A 135M-parameter model writes fluent replies that are often off the point; the listeners of
EmpatheticDialogues and the supporters of ESConv wrote replies that are kind and to the point, but to
someone else. The pool holds those replies with the conversation each one answered. At a turn, the
``k`` replies whose conversations lie nearest to this one (cosine of the response ranker's context
embeddings) join the model's candidates, and the ranker and the reply checks choose among all of them.

A human reply may name details that are not this person's ("how old was your cat?" to someone whose
dog died). So a retrieved reply joins the candidates only when it passes every reply check and
``unsaid_specifics`` finds nothing: every word it uses that is not common in replies must appear in
the conversation. A word is common when listeners use it whatever was said: in at least ``COMMON_DF``
of the pool's replies, and repeating a word of the conversation it answers in under ``ECHO_MAX`` of
them ("sorry", "proud", "hope"; not "dog", "birthday" or "boss", which listeners say when the person
did). A "he" or "she" needs a man or a woman in the conversation. At build time the
pool keeps only replies a bot can say honestly: none that tells the listener's own experiences ("I had
a dog like that", "my wife", "happened to me too"), none with a never-shown problem, 4 to 40 words.

Build once per ranker, into the model cache (``empathetic-bot pool --data-dir DIR``; a few minutes on
two CPU cores); the bot then finds it there (``model.reply_pool = "auto"``). The pool is built from
CC BY-NC data, like the adapter and the ranker: non-commercial use only. It reads the train splits
only, so validation and test conversations never answer themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .errors import ModelNotFoundError
from .fast_encoder import READS_NOT_EMBEDS

log = logging.getLogger(__name__)

POOL_VERSION = 1
COMMON_DF = 0.002  # a word in at least 0.2% of the pool's replies...
ECHO_MAX = 0.2  # ...that repeats the conversation in under 20% of them is common: "sorry", "proud", "hope"
MIN_WORDS, MAX_WORDS = 4, 40
_WORD = re.compile(r"[a-z][a-z']+")
# The listener speaking of their own life: a bot that says it is lying.
_OWN_LIFE = re.compile(
    r"\b(?:i|i've|i'd|we|we've)\s+(?:had|have had|once|used to|went|lost|got|was|were|did|remember|know how|"
    r"experienced|been through|had to|have (?:a|an|two|three|my)|own|felt|just|also|too)\b|"
    r"\bmy\s+(?!pleasure\b|condolences\b|heart\b|goodness\b|gosh\b|god\b|best\b|sympathies\b|thoughts\b|guess\b|"
    r"advice\b|suggestion\b|opinion\b)\w+|\b(?:me|mine|myself) (?:too|as well|either)\b|\bhappened to me\b|"
    r"\b(?:when|if) i\b|\bi (?:can )?relate\b|\bsame (?:thing )?(?:here|with me|happened)\b|\bme too\b|"
    r"\bour\s+\w+|\bus\b|\bi'?ve\b(?! heard)|\bi (?:always|usually|often|do|did|love|hate|like|enjoy|prefer|wish i|"
    r"would never|would have|would be|never|live|work|play|ate|am (?:a|an|from|also|going|in|at)|'?m (?:a|an|from|also|going|in|at))\b", re.IGNORECASE)
_NOISE = re.compile(r"https?://|www\.|_[a-z]+_|\[|\]|<|>|\|")
_STOP = frozenset("""a about above after again against all am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few for
from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his how
how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my myself no nor not of off on
once only or other ought our ours ourselves out over own same shan't she she'd she'll she's should shouldn't so some such
than that that's the their theirs them themselves then there there's these they they'd they'll they're they've this those
through to too under until up very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's
which while who who's whom why why's with won't would wouldn't you you'd you'll you're you've your yours yourself
yourselves must might may will shall oh yes yeah ok okay well really just also so much many lot lots thing things something anything get got
feel feels feeling felt talk talking help helps helped support think thinking try trying want wanted know time day
days today going gets back life people first last start situation""".split())  # and words of any conversation


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _stem(word: str) -> str:
    word = word.split("'")[0]
    for suffix in ("ies", "ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


_ASKS = frozenset("what how why when where who which did do does is are was were have has can could would will "
                  "should shall may am".split())


def tidy(text: str) -> str:
    """A human reply as the bot shows it: no space before punctuation, a space after a comma, "i" as
    "I", a capital first letter and a closing full stop ("ok ,how much raise did you get ?" becomes
    "Ok, how much raise did you get?")."""
    text = re.sub(r"\s+([,.!?;:])", r"\1", " ".join(text.split()))
    text = re.sub(r",(?=[A-Za-z])", ", ", text)
    text = re.sub(r"\bi\b(?=(?:'[a-z]+)?\b)", "I", text)
    if text[:1].islower():
        text = text[0].upper() + text[1:]
    if not text[-1:].isalnum():
        return text
    last = re.split(r"[.!?]\s+", text)[-1].split()
    return text + ("?" if last and last[0].lower() in _ASKS else ".")


def honest_reply(text: str) -> bool:
    """Whether a human listener's reply can be said by a bot as it stands: 4-40 words, no markup, no
    story of the listener's own life, nothing the reply checks never show."""
    from .replycheck import never_problems

    n = len(text.split())
    return (MIN_WORDS <= n <= MAX_WORDS and not _NOISE.search(text) and not _OWN_LIFE.search(text)
            and not never_problems(text))


_HE = frozenset("he him his he's he'd he'll himself".split())
_SHE = frozenset("she her hers she's she'd she'll herself".split())
_MEN = _HE | frozenset("""man men guy guys boy boys dad father daddy husband brother son boyfriend uncle grandpa
grandfather nephew fiance groom king gentleman mr""".split())
_WOMEN = _SHE | frozenset("""woman women girl girls lady mom mother mum mommy wife sister daughter girlfriend aunt
grandma grandmother niece fiancee bride queen mrs ms""".split())


def unsaid_specifics(reply: str, conversation: Sequence[dict], common: frozenset[str]) -> list[str]:
    """The words of ``reply`` that are neither common in replies nor said in the conversation (by
    either side): the details a reply written for someone else brings along ("cat", "wedding"), and a
    "he" or "she" nobody in the conversation is."""
    said_words = {w for m in conversation for w in words(m.get("content", ""))}
    said = {_stem(w) for w in said_words}
    out = []
    for w in words(reply):
        if w in out:
            continue
        if w in _HE or w in _SHE:
            if not said_words & (_MEN if w in _HE else _WOMEN):
                out.append(w)
            continue
        if w in _STOP or w in common or len(w) < 3:
            continue
        if _stem(w) not in said:
            out.append(w)
    return out


def common_words(rows: Sequence[dict]) -> list[str]:
    """The words listeners use whatever was said (see ``COMMON_DF`` and ``ECHO_MAX``), from (context, reply) rows."""
    df, echo = Counter(), Counter()
    for r in rows:
        said = {_stem(w) for m in r["context"] for w in words(m["content"])}
        for w in set(words(r["reply"])):
            df[w] += 1
            echo[w] += _stem(w) in said
    return sorted(w for w, n in df.items() if n >= COMMON_DF * len(rows) and echo[w] < ECHO_MAX * n)


def ranker_key(ranker) -> str:
    """A short name for the ranker whose embeddings index a pool: a pool is only valid for its ranker.
    ``ranker``: a ``ResponseRanker`` or its ``ResolvedModel`` (``bot.ranker.resolve_ranker``)."""
    resolved = getattr(ranker, "resolved", ranker)
    folder = Path(resolved.location)
    h = hashlib.sha1()
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix in (".safetensors", ".json", ".bin") and f.name not in READS_NOT_EMBEDS:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return f"{resolved.spec.replace('/', '_')[:40]}-{h.hexdigest()[:12]}"


# What ``info`` says where no pool is built (``scripts/setup.sh`` looks for it to build one).
NO_POOL = "none (build one from EmpatheticDialogues and ESConv train with: empathetic-bot pool --data-dir DIR)"


def describe_cached_pool(ranker_spec: str | None, cache_dir: str | None = None) -> str:
    """One line on the pool ``"auto"`` would use, read without loading a model (``empathetic-bot info``)."""
    from .ranker import resolve_ranker

    resolved = resolve_ranker(ranker_spec)
    if resolved is None:
        return "none (no ranker: the pool is indexed by its embeddings)"
    folder = pool_folder(resolved, cache_dir)
    if not (folder / "pool.json").is_file():
        return NO_POOL
    try:
        replies = int(json.loads((folder / "pool.json").read_text())["replies"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"unreadable in {folder} (rebuild it with: empathetic-bot pool --data-dir DIR)"
    return f"{replies:,} human replies in {folder} (non-commercial use)"


def pool_folder(ranker, cache_dir: str | None = None) -> Path:
    from .generation import default_cache_dir

    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return root / "reply-pool" / ranker_key(ranker)


def pool_examples(conversations: Iterable) -> Iterator[dict]:
    """(context, reply) pairs from the train split: every listener turn that answers a user turn."""
    for conv in conversations:
        if conv.split != "train":
            continue
        for i, m in enumerate(conv.messages):
            if m["role"] != "assistant" or i == 0 or conv.messages[i - 1]["role"] != "user":
                continue
            if honest_reply(m["content"]):
                yield {"id": f"{conv.source}:{conv.id}#{i}", "context": conv.messages[max(0, i - 6):i],
                       "reply": m["content"], "emotion": conv.emotion}


def pool_rows_from(root: Path) -> list[dict]:
    """The pool's rows from the datasets under ``root`` (ED, and ESConv when present), in pool order."""
    from finetune.dialogue_data import read_empathetic_dialogues, read_esconv

    sources = [read_empathetic_dialogues(root / "empatheticdialogues")]
    if (root / "esconv").is_dir():
        sources.append(read_esconv(root / "esconv"))
    return [r for src in sources for r in pool_examples(src)]


def build_pool(data_dir: str | None, ranker, output: str | Path | None = None, cache_dir: str | None = None,
               limit: int | None = None, progress=print) -> Path:
    """Read ED and ESConv train under ``data_dir``, keep the honest replies, embed their contexts with
    ``ranker`` and write the pool (``pool.json``, ``replies.jsonl``, ``contexts.npy``)."""
    import numpy as np
    import torch

    from finetune.dialogue_data import data_root

    from .ranker import MAX_CONTEXT_TOKENS, context_text, embed

    root = data_root(data_dir)
    if root is None or not (root / "empatheticdialogues").is_dir():
        raise FileNotFoundError("give --data-dir (or set EMPATHETIC_BOT_DATA) with empatheticdialogues/ "
                                "(and esconv/ if you have it)")
    t0 = time.perf_counter()
    rows = pool_rows_from(root)
    if limit:
        rows = rows[:limit]
    if not rows:
        raise ValueError(f"no usable replies found under {root}")
    common = common_words(rows)
    progress(f"{len(rows)} replies kept; embedding their conversations with the ranker...")
    vecs = []
    step = 2048
    with torch.inference_mode():
        for s in range(0, len(rows), step):
            texts = [context_text(r["context"]) for r in rows[s:s + step]]
            vecs.append(embed(ranker.model, ranker.tokenizer, texts, -MAX_CONTEXT_TOKENS, device=ranker.device)
                        .float().cpu().numpy().astype(np.float16))
            progress(f"  {min(s + step, len(rows))}/{len(rows)}")
    out = Path(output) if output else pool_folder(ranker, cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "contexts.npy", np.concatenate(vecs))
    with open(out / "replies.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "reply": r["reply"], "emotion": r["emotion"],
                                "context": r["context"][-1]["content"]}, ensure_ascii=False) + "\n")
    meta = {"version": POOL_VERSION, "ranker": ranker.resolved.spec, "ranker_key": ranker_key(ranker),
            "replies": len(rows), "common_df": COMMON_DF, "echo_max": ECHO_MAX, "common_words": common,
            "sources": [p.name for p in (root / "empatheticdialogues", root / "esconv") if p.is_dir()],
            "split": "train", "license": "CC BY-NC 4.0 (EmpatheticDialogues, ESConv): non-commercial use only",
            "build_s": round(time.perf_counter() - t0, 1)}
    (out / "pool.json").write_text(json.dumps(meta, indent=1))
    progress(f"reply pool written to {out} ({len(rows)} replies, {meta['build_s']} s)")
    return out


class ReplyPool:
    """A built pool: ``nearest(context_vector, k)`` gives the replies to the ``k`` nearest conversations."""

    def __init__(self, folder: str | Path):
        import numpy as np

        folder = Path(folder)
        try:
            self.meta = json.loads((folder / "pool.json").read_text())
            self.vectors = np.load(folder / "contexts.npy").astype(np.float32)
            with open(folder / "replies.jsonl", encoding="utf-8") as f:
                self.rows = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"could not read the reply pool in {folder}: {exc}; rebuild it with "
                                     "empathetic-bot pool --data-dir DIR") from exc
        if self.meta.get("version") != POOL_VERSION or len(self.rows) != len(self.vectors):
            raise ModelNotFoundError(f"the reply pool in {folder} is from another version or incomplete; rebuild "
                                     "it with empathetic-bot pool --data-dir DIR")
        self.folder = folder
        self.common = frozenset(self.meta.get("common_words", ()))

    def __len__(self) -> int:
        return len(self.rows)

    def nearest(self, vector, k: int) -> list[dict]:
        """The rows of the ``k`` nearest contexts (cosine; ``vector`` normalised), best first, each with its
        ``similarity``; one row per distinct reply text."""
        import numpy as np

        if k <= 0 or not len(self.rows):
            return []
        sims = self.vectors @ np.asarray(vector, dtype=np.float32)
        top = np.argpartition(-sims, min(4 * k, len(sims) - 1))[: 4 * k]
        out, seen = [], set()
        for i in top[np.argsort(-sims[top])]:
            row = self.rows[int(i)]
            key = row["reply"].strip().lower()
            if key not in seen:
                seen.add(key)
                out.append({**row, "reply": tidy(row["reply"]), "similarity": float(sims[i])})
            if len(out) == k:
                break
        return out


def open_pool(spec: str | None, ranker, cache_dir: str | None = None) -> ReplyPool | None:
    """The pool the config names: ``None`` / ``""`` / ``"none"``: no pool; ``"auto"``: the pool built for
    this ranker in the model cache, if there is one; else a folder written by ``build_pool``."""
    if not spec or spec == "none" or ranker is None:
        if spec and spec not in ("none", "auto") and ranker is None:
            raise ModelNotFoundError("a reply pool needs the response ranker (its embeddings index the pool)")
        return None
    if spec == "auto":
        folder = pool_folder(ranker, cache_dir)
        if not (folder / "pool.json").is_file():
            return None
        return ReplyPool(folder)
    folder = Path(spec).expanduser()
    if not (folder / "pool.json").is_file():
        raise ModelNotFoundError(f"no reply pool in {folder} (build one with empathetic-bot pool --data-dir DIR "
                                 "--output FOLDER)")
    pool = ReplyPool(folder)
    # the same bi-encoder files under another name (a copy with a cross-encoder added) index it as well
    if str(pool.meta.get("ranker_key", "")).rsplit("-", 1)[-1] != ranker_key(ranker).rsplit("-", 1)[-1]:
        raise ModelNotFoundError(f"the reply pool in {folder} was built with another ranker "
                                 f"({pool.meta.get('ranker')}); rebuild it for this one")
    return pool
