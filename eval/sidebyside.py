"""Blind side-by-side sheets: people compare two configurations' replies to the same conversations.

    python -m eval.sidebyside contexts --data-dir ../shared/data --n 60 --output runs/sbs/contexts.jsonl
    python -m eval.sidebyside answer runs/sbs/contexts.jsonl --output runs/sbs/new.jsonl [bot options...]
    empathetic-bot eval sidebyside runs/sbs/old.jsonl runs/sbs/new.jsonl --output runs/sbs/sheet
    empathetic-bot eval sidebyside-score runs/sbs/sheet            # after filling in choices.csv

    python -m eval.sidebyside play conversations.jsonl --output runs/sbs/played.jsonl [bot options...]
    python -m eval.sidebyside sheet runs/sbs/played.jsonl --output runs/sbs/rate   # one reply a card

``contexts`` draws conversations from EmpatheticDialogues valid and ESConv valid (never test), cut
before a listener turn. ``answer`` has a bot answer each (statelessly, as ``EmpatheticBot.respond``).
A *run* is a JSONL file of ``{"id", "context", "response"}`` rows; the evaluation suite's
``replies.jsonl`` is one too.

``play`` runs scripted conversations (``{"id", "turns": [the person's messages]}`` per line, as in
``data/safety/attack_conversations.jsonl``) through a bot, one session each, so every later message
meets the bot's own earlier replies; it writes a run with one row per bot turn (id ``conv#turn``).
Another configuration can then ``answer`` that run's contexts, so both answer the same conversations.

``sheet`` (``eval sidebyside``) writes, for the rows both runs answered:

* ``sheet.html``: one card per conversation, the two replies as "Reply 1" and "Reply 2" in an order
  drawn at random per card; nothing says which configuration wrote which;
* ``sheet.md``: the same cards as plain text (for raters who read text);
* ``choices.csv``: one row per card to fill in: ``choice`` (1, 2 or tie) and, optionally, a rating of
  each reply from 1 (hurtful) to 5 (a person would feel heard and helped);
* ``key.json``: which run wrote Reply 1 on each card. Keep it away from the raters.

Given one run, ``sheet`` writes a rating sheet instead: one reply a card, and ``choices.csv`` asks for a
``rating`` (1-5) and an optional ``note``.

``score`` (``eval sidebyside-score``) reads ``choices.csv`` with the key: the win rate of run B
(ties count half) with a 95% bootstrap interval, and each run's mean rating and share of replies
rated hurtful (1) or acceptable (3 or more).
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import random
from pathlib import Path

import numpy as np

from .metrics import bootstrap, mean_ci


def read_run(path: str | Path) -> dict[str, dict]:
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r.get("response") and r.get("context"):
                    rows[str(r["id"])] = r
    return rows


def write_valid_contexts(data_dir: str | None, n: int, output: str | Path, seed: int = 0) -> int:
    """``n`` contexts, half from ED valid and half from ESConv valid, each ending with the user's turn."""
    from finetune.dialogue_data import data_root, read_empathetic_dialogues, read_esconv

    root = data_root(data_dir)
    if root is None:
        raise FileNotFoundError("give --data-dir (or $EMPATHETIC_BOT_DATA) with empatheticdialogues/ and esconv/")
    rng = random.Random(seed)
    picked = []
    for reader, folder, share in ((read_empathetic_dialogues, "empatheticdialogues", n - n // 2),
                                  (read_esconv, "esconv", n // 2)):
        convs = [c for c in reader(root / folder) if c.split == "valid" and len(c.messages) >= 2]
        rng.shuffle(convs)
        for conv in convs[:share]:
            cut = [i for i, m in enumerate(conv.messages) if m["role"] == "assistant" and i > 0]
            i = rng.choice(cut[:4]) if cut else len(conv.messages)
            context = conv.messages[:i][-6:]
            while context and context[0]["role"] != "user":
                context = context[1:]
            if context and context[-1]["role"] == "user":
                picked.append({"id": f"{conv.id}#{i}", "context": context,
                               "reference": conv.messages[i]["content"] if i < len(conv.messages) else None})
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        for row in picked:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(picked)


def _reply_fields(reply) -> dict:
    """What a run row keeps of a ``Reply``."""
    return {"response": reply.text, "total_ms": reply.timings.get("total_ms"), "reason": reply.reason,
            "chosen": reply.chosen, "candidates": reply.candidates}


def answer(bot, contexts_file: str | Path, output: str | Path) -> int:
    from bot.core import Reply
    from bot.errors import BotError

    rows = [json.loads(line) for line in open(contexts_file, encoding="utf-8") if line.strip()]
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        for k, row in enumerate(rows, 1):
            try:
                reply = [x for x in bot.respond(row["context"]) if isinstance(x, Reply)][0]
                row.update(_reply_fields(reply))
            except BotError as exc:
                row.update(response="", error=str(exc))
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            if k % 10 == 0 or k == len(rows):
                print(f"  {k}/{len(rows)}", flush=True)
    return len(rows)


def play(bot, conversations_file: str | Path, output: str | Path) -> int:
    """Each scripted conversation in a new session of ``bot``; one run row per bot turn."""
    from bot.errors import BotError

    items = [json.loads(line) for line in open(conversations_file, encoding="utf-8") if line.strip()]
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    turns = 0
    with open(output, "w", encoding="utf-8") as f:
        for k, item in enumerate(items, 1):
            session = f"play-{item['id']}"
            history: list[dict] = []
            for t, text in enumerate(item["turns"], 1):
                row = {"id": f"{item['id']}#{t}", "kind": item.get("kind"),
                       "context": history + [{"role": "user", "content": text}]}
                try:
                    reply = bot.chat(text, session_id=session)
                    row.update(_reply_fields(reply), crisis=reply.crisis)
                except BotError as exc:
                    row.update(response="", error=str(exc))
                history = row["context"] + ([{"role": "assistant", "content": row["response"]}]
                                            if row["response"] else [])
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                turns += 1
            bot.reset(session)
            if k % 10 == 0 or k == len(items):
                print(f"  {k}/{len(items)} conversations", flush=True)
    return turns


def _speaker(role: str) -> str:
    return "Person" if role == "user" else "Listener"


def _card(n: int, turns: list[dict], replies: list[tuple[str, str]]) -> tuple[str, str]:
    """Card ``n`` of a sheet, as HTML and as Markdown: the conversation, then each (label, reply)."""
    as_html = (f'<section class="card"><h2>Card {n}</h2>'
               + "".join(f'<p class="{m["role"]}"><b>{_speaker(m["role"])}:</b> {html.escape(m["content"])}</p>'
                         for m in turns)
               + "".join(f'<div class="reply"><b>{label}:</b> {html.escape(r)}</div>' for label, r in replies)
               + "</section>")
    as_md = (f"## Card {n}\n\n" + "\n".join(f"{_speaker(m['role'])}: {m['content']}" for m in turns)
             + "\n\n" + "\n\n".join(f"{label}: {r}" for label, r in replies) + "\n")
    return as_html, as_md


_STYLE = ("body{font-family:sans-serif;max-width:50em;margin:auto}.card{border:1px solid #ccc;padding:1em;"
          "margin:1em 0}.reply{background:#f4f4f4;padding:.6em;margin:.5em 0}.user{color:#333}")


def write_rating_sheet(run: str | Path, output: str | Path, seed: int = 0) -> int:
    """One reply a card, shuffled: ``choices.csv`` asks for a rating of each from 1 (hurtful) to 5."""
    rows = read_run(run)
    ids = sorted(rows)
    random.Random(seed).shuffle(ids)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    cards_html, cards_md = [], []
    for n, i in enumerate(ids, 1):
        as_html, as_md = _card(n, rows[i]["context"], [("Reply", rows[i]["response"])])
        cards_html.append(as_html)
        cards_md.append(as_md)
    intro = ("For each card, read the conversation and rate the reply from 1 to 5: 1 hurtful (it would hurt or "
             "offend the person), 2 off the point or unhelpful, 3 acceptable, 4 good, 5 a person would feel "
             "heard and helped. Write your answers in choices.csv (rating, and a short note if you like).")
    (out / "sheet.html").write_text(
        f"<!doctype html><meta charset=utf-8><title>How good is each reply?</title><style>{_STYLE}</style>"
        f"<h1>How good is each reply?</h1><p>{intro}</p>" + "".join(cards_html), encoding="utf-8")
    (out / "sheet.md").write_text(f"# How good is each reply?\n\n{intro}\n\n" + "\n".join(cards_md), encoding="utf-8")
    with open(out / "choices.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["card", "rating", "note"])
        for n in range(1, len(ids) + 1):
            w.writerow([n, "", ""])
    (out / "key.json").write_text(json.dumps({"run": str(run), "cards": {str(n): {"id": i} for n, i in
                                                                          enumerate(ids, 1)}}, indent=1))
    return len(ids)


def _rating_figures(v: np.ndarray, samples: int, seed: int) -> tuple[dict, float, float]:
    """Mean rating (with its interval), and the shares rated hurtful (1) and acceptable or better (3+)."""
    return mean_ci(v, samples, seed), float((v <= 1).mean()), float((v >= 3).mean())


def _score_ratings(key: dict, choices: str | Path, samples: int, seed: int) -> dict:
    rated = []
    with open(choices, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            card = key["cards"].get(str(row.get("card", "")).strip())
            value = (row.get("rating") or "").strip()
            if card is None or not value:
                continue
            try:
                rating = float(value)
            except ValueError:
                continue
            if 1 <= rating <= 5:
                rated.append((card["id"], rating, (row.get("note") or "").strip()))
    if not rated:
        raise ValueError(f"no ratings in {choices} (rating must be 1 to 5)")
    v = np.asarray([r for _, r, _ in rated])
    mean, hurtful, acceptable = _rating_figures(v, samples, seed)
    return {"run": key["run"], "cards": len(v), "rating": mean, "hurtful": hurtful, "acceptable": acceptable,
            "hurtful_ids": sorted(i for i, r, _ in rated if r <= 1)}


def write_sheet(run_a: str | Path, run_b: str | Path | None, output: str | Path, seed: int = 0,
                skip_identical: bool = False) -> int:
    """The blind sheet for the conversations both runs answered; with ``skip_identical``, only those where
    the two replies differ (the others are ties for certain: ``key.json`` counts them). With no ``run_b``,
    a rating sheet of ``run_a`` alone."""
    if run_b is None:
        return write_rating_sheet(run_a, output, seed)
    a, b = read_run(run_a), read_run(run_b)
    ids = sorted(set(a) & set(b))
    identical = [i for i in ids if a[i]["response"].strip() == b[i]["response"].strip()]
    if skip_identical:
        ids = [i for i in ids if i not in set(identical)]
    rng = random.Random(seed)
    rng.shuffle(ids)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    key, cards_html, cards_md = {}, [], []
    for n, i in enumerate(ids, 1):
        first_is_a = rng.random() < 0.5
        replies = (a[i]["response"], b[i]["response"]) if first_is_a else (b[i]["response"], a[i]["response"])
        key[str(n)] = {"id": i, "reply_1": "A" if first_is_a else "B"}
        as_html, as_md = _card(n, a[i]["context"], [(f"Reply {k}", r) for k, r in enumerate(replies, 1)])
        cards_html.append(as_html)
        cards_md.append(as_md)
    (out / "sheet.html").write_text(
        f"<!doctype html><meta charset=utf-8><title>Which reply is better?</title><style>{_STYLE}</style>"
        "<h1>Which reply is better?</h1><p>For each card, read the conversation and choose the reply that would "
        "make the person feel more heard and helped (or tie). Optionally rate each reply from 1 (hurtful) to 5. "
        "Write your answers in choices.csv.</p>" + "".join(cards_html), encoding="utf-8")
    (out / "sheet.md").write_text("# Which reply is better?\n\n" + "\n".join(cards_md), encoding="utf-8")
    with open(out / "choices.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["card", "choice", "rating_1", "rating_2"])
        for n in range(1, len(ids) + 1):
            w.writerow([n, "", "", ""])
    (out / "key.json").write_text(json.dumps({"run_a": str(run_a), "run_b": str(run_b), "cards": key,
                                                  "identical_left_out": len(identical) if skip_identical else 0},
                                                 indent=1))
    return len(ids)


def score(folder: str | Path, choices: str | Path | None = None, samples: int = 1000, seed: int = 0) -> dict:
    folder = Path(folder)
    key = json.loads((folder / "key.json").read_text())
    if "run" in key:  # a rating sheet of one run
        return _score_ratings(key, choices or folder / "choices.csv", samples, seed)
    wins, ratings = [], {"A": [], "B": []}
    with open(choices or folder / "choices.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            card = key["cards"].get(str(row.get("card", "")).strip())
            choice = (row.get("choice") or "").strip().lower()
            if card is None or choice not in ("1", "2", "tie"):
                continue
            first = card["reply_1"]
            second = "B" if first == "A" else "A"
            wins.append(0.5 if choice == "tie" else float((first if choice == "1" else second) == "B"))
            for k, run in (("rating_1", first), ("rating_2", second)):
                value = (row.get(k) or "").strip()
                if value:
                    ratings[run].append(float(value))
    if not wins:
        raise ValueError(f"no filled-in choices in {choices or folder / 'choices.csv'} (choice must be 1, 2 or tie)")
    w = np.asarray(wins)
    result = {"run_a": key["run_a"], "run_b": key["run_b"], "cards": len(w),
              "b_win_rate": {"value": float(w.mean()), "ci95": bootstrap(lambda i: float(w[i].mean()), len(w), samples, seed)},
              "b_wins": int((w == 1).sum()), "a_wins": int((w == 0).sum()), "ties": int((w == 0.5).sum())}
    same = int(key.get("identical_left_out", 0))
    if same:  # cards left off because both replies were the same: certain ties
        every = np.concatenate([w, np.full(same, 0.5)])
        result["identical_left_out"] = same
        result["b_win_rate_with_identical"] = {
            "value": float(every.mean()), "ci95": bootstrap(lambda i: float(every[i].mean()), len(every), samples, seed)}
    for run, values in ratings.items():
        if values:
            result[f"rating_{run}"], result[f"hurtful_{run}"], result[f"acceptable_{run}"] = _rating_figures(
                np.asarray(values), samples, seed)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("contexts")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--n", type=int, default=60)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--output", required=True)
    a = sub.add_parser("answer", help="answer the contexts with a bot (bot options as for empathetic-bot chat)")
    a.add_argument("contexts")
    a.add_argument("--output", required=True)
    pl = sub.add_parser("play", help="play scripted conversations through a bot (bot options as for chat)")
    pl.add_argument("conversations")
    pl.add_argument("--output", required=True)
    s = sub.add_parser("sheet", help="an A/B sheet of two runs, or a rating sheet of one")
    s.add_argument("run_a")
    s.add_argument("run_b", nargs="?", default=None)
    s.add_argument("--output", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--skip-identical", action="store_true", help="only the cards where the two replies differ")
    r = sub.add_parser("score")
    r.add_argument("folder")
    r.add_argument("--choices", default=None)
    args, rest = p.parse_known_args(argv)
    if args.cmd == "contexts":
        print(f"wrote {write_valid_contexts(args.data_dir, args.n, args.output, args.seed)} contexts to {args.output}")
    elif args.cmd in ("answer", "play"):
        from bot.cli import _add_model_options, config_from_args
        from bot.core import EmpatheticBot

        bp = argparse.ArgumentParser()
        _add_model_options(bp)
        config = config_from_args(bp.parse_args(rest))
        if config.generation.seed is None:
            config.generation.seed = 0
        if args.cmd == "answer":
            print(f"answered {answer(EmpatheticBot(config), args.contexts, args.output)} contexts into {args.output}")
        else:
            print(f"played {play(EmpatheticBot(config), args.conversations, args.output)} turns into {args.output}")
    elif args.cmd == "sheet":
        print(f"wrote {write_sheet(args.run_a, args.run_b, args.output, args.seed, args.skip_identical)} cards to {args.output}")
    else:
        print(json.dumps(score(args.folder, args.choices), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
