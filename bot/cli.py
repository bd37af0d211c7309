"""``empathetic-bot``: chat in the terminal, serve the web UI, show what was resolved, benchmark.

    empathetic-bot chat                 # talk in the terminal (streaming)
    empathetic-bot ui                   # the Gradio web UI on http://127.0.0.1:7860
    empathetic-bot info                 # which models and files would be used (--load: load and measure)
    empathetic-bot bench                # cold start, memory, time to first token, tokens/s
    empathetic-bot bench --concurrent 20   # 20 users talking to the service at once (bot.loadtest)

Heavy libraries load only when a command needs them, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from .config import BotConfig, DEFAULT_BASE_MODEL, DEFAULT_ENCODER
from .errors import BotError, InvalidInputError

EVAL_HELP = """Score the bot (or any chatbot's transcripts) and write report.json + report.md.

examples:
  empathetic-bot eval --data-dir ../shared/data                      every bot suite on the default bot
  empathetic-bot eval quality empathy --adapter runs/adapter/final   some suites on another bot
  empathetic-bot eval classifier --data-dir ../shared/data           GoEmotions metrics of the emotion classifier
  empathetic-bot eval --transcripts replies.jsonl --data-dir ../shared/data    another system's replies
  empathetic-bot eval --compare reports/base reports/adapter --output reports/compare
  empathetic-bot eval sidebyside RUN_A.jsonl RUN_B.jsonl --output sheet/   blind A/B sheet for people
  empathetic-bot eval sidebyside RUN.jsonl --output sheet/                 a rating sheet, one reply a card
  empathetic-bot eval sidebyside-score sheet/                              win rate from sheet/choices.csv
"""

CHAT_HELP = ("Commands: /reset forgets this conversation, /state shows the emotion state, "
             "/why shows which words gave your last message its emotions, /help, /quit.")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    d = BotConfig()
    g = p.add_argument_group("models")
    g.add_argument("--base-model", default=d.model.base_model,
                   help=f"reply model: {DEFAULT_BASE_MODEL!r} (embedded), a folder, a .gguf file or a hub id")
    g.add_argument("--adapter", default=d.model.adapter,
                   help="PEFT adapter: 'empathy-lora' (shipped; non-commercial use), a folder or hub id, '' for none")
    g.add_argument("--emotion-classifier", default=d.model.emotion_classifier,
                   help="emotion classifier: 'goemotions-minilm' (shipped), a folder or hub id, '' for none (no tracking)")
    g.add_argument("--crisis-detector", default=d.model.crisis_detector,
                   help="learned crisis classifier beside the rules: 'crisis-minilm' (shipped), a folder, '' for rules alone")
    g.add_argument("--ranker", default=d.model.ranker,
                   help="response ranker: 'empathy-ranker' (shipped; non-commercial use), a folder, '' for none")
    g.add_argument("--cross-ranker", default=d.model.cross_ranker, action=argparse.BooleanOptionalAction,
                   help="let the ranker's cross-encoder read conversation and candidate together (default: on, "
                        "when the ranker has one)")
    g.add_argument("--reply-pool", default=d.model.reply_pool,
                   help="human replies that join the candidates: auto (the pool `empathetic-bot pool` built in the "
                        "cache, if any), a folder, or none (default: %(default)s)")
    g.add_argument("--encoder", default=d.model.encoder, help=f"BERT encoder ({DEFAULT_ENCODER!r} is embedded)")
    g.add_argument("--device", default=d.model.device, help="auto, cpu, cuda, cuda:N (default: auto)")
    g.add_argument("--dtype", default=d.model.dtype, help="auto, float32, bfloat16, float16 (default: auto)")
    g.add_argument("--backend", default=d.model.backend, choices=["auto", "transformers", "llama-cpp", "openai"],
                   help="what writes the replies: auto (llama.cpp on a CPU when installed, else transformers), "
                        "transformers, llama-cpp, or openai (a server; see --base-url) (default: %(default)s)")
    g.add_argument("--base-url", default=d.model.base_url,
                   help="openai backend: the server's address, e.g. http://localhost:8000/v1 (key from "
                        "$EMPATHETIC_BOT_API_KEY or $OPENAI_API_KEY)")
    g.add_argument("--model", dest="served_model", default=d.model.served_model,
                   help="openai backend: the model name the server knows (default: --base-model)")
    g.add_argument("--threads", type=int, default=d.model.threads,
                   help="CPU threads for the models (default: every core; 1 on a machine shared with busy work)")
    g.add_argument("--gguf-type", default=d.model.gguf_type, choices=["q8_0", "f16", "f32"],
                   help="llama.cpp: type of the tensors an adapter changes when merged into the GGUF base "
                        "(default: %(default)s)")
    g.add_argument("--cache-dir", default=d.model.cache_dir,
                   help="where converted GGUF models and merged adapters are cached ('' disables; default ~/.cache/empathetic-bot)")
    g = p.add_argument_group("generation")
    g.add_argument("--candidates", type=int, default=d.generation.candidates,
                   help="replies sampled per turn; the checks and the ranker choose one (default: %(default)s)")
    g.add_argument("--retrieved", type=int, default=d.generation.retrieved,
                   help="human replies from the reply pool that join the candidates (0: none; default: %(default)s)")
    g.add_argument("--max-new-tokens", type=int, default=d.generation.max_new_tokens)
    g.add_argument("--temperature", type=float, default=d.generation.temperature, help="0 means greedy")
    g.add_argument("--top-p", type=float, default=d.generation.top_p)
    g.add_argument("--repetition-penalty", type=float, default=d.generation.repetition_penalty)
    g.add_argument("--guidance", type=float, default=d.generation.guidance,
                   help="classifier-free guidance towards the emotion state: 1 off, 1.5-3 stronger "
                        "(a second model pass per token; default: %(default)s)")
    g.add_argument("--sympathy-bonus", type=float, default=d.generation.sympathy_bonus,
                   help="added to the ranker score of a sympathetic candidate when the person is distressed "
                        "(0 off; default: %(default)s)")
    g.add_argument("--question-bonus", type=float, default=d.generation.question_bonus,
                   help="added to the ranker score of a candidate that ends with a question (0 off; default: %(default)s)")
    g.add_argument("--pool-bonus", type=float, default=d.generation.pool_bonus,
                   help="added to the ranker score of a human reply from the reply pool (0 off; default: %(default)s)")
    g.add_argument("--openers", type=float, default=d.generation.openers,
                   help="share of the candidates that are a written line chosen by the emotion state (an "
                        "acknowledgement, a congratulation, a listening question) instead of the model's; a line "
                        "of your own without a closing question starts a model candidate (0 off; default: %(default)s)")
    g.add_argument("--seed", type=int, default=d.generation.seed, help="fix sampling for reproducible replies")
    g = p.add_argument_group("conversation")
    g.add_argument("--context-tokens", type=int, default=d.conversation.context_tokens,
                   help="token budget of one prompt; oldest turns are dropped to fit")
    g.add_argument("--max-input-chars", type=int, default=d.conversation.max_input_chars)
    g.add_argument("--prompts-dir", default=d.conversation.prompts_dir, help="your own copy of prompts/ (default: the shipped prompts/)")
    g.add_argument("--persona-name", default=d.conversation.persona_name, help="the name the bot goes by")
    g.add_argument("--log-conversations", action="store_true", help="log message text at DEBUG level")
    g.add_argument("--max-stored-turns", type=int, default=d.conversation.max_stored_turns,
                   help="exchanges a session keeps (older ones are forgotten)")
    g.add_argument("--crisis-reply", default=d.conversation.crisis_reply, choices=["fixed", "model"],
                   help="reply to a possible crisis with the written opening (fixed) or a generated one (model)")
    g.add_argument("--risk-turns", type=int, default=d.conversation.risk_turns,
                   help="user turns a session stays at risk after a flagged message (default: %(default)s)")
    g.add_argument("--store", default=d.conversation.store,
                   help="where conversations are kept: memory, default (SQLite under ~/.local/share/empathetic-bot; "
                        "what chat and ui use unless told), sqlite:///PATH or a file path, or postgresql://USER@HOST/DB "
                        "or another SQLAlchemy URL, shared by processes on several machines (pip install "
                        "'empathetic-bot[postgres]'; the password from $PGPASSWORD)")
    g.add_argument("--no-redact", dest="redact", action="store_false",
                   help="keep e-mail addresses, phone, card and account numbers in stored messages (redacted by default)")
    g.add_argument("--session-idle-expiry", dest="session_idle_expiry_s", type=float,
                   default=d.conversation.session_idle_expiry_s,
                   help="delete conversations idle for this many seconds (default: keep them)")
    g.add_argument("--max-live-sessions", type=int, default=d.conversation.max_live_sessions,
                   help="sessions held in memory at once (default: %(default)s)")
    g.add_argument("--turn-timeout", dest="turn_timeout_s", type=float, default=d.conversation.turn_timeout_s,
                   metavar="SECONDS",
                   help="stop a turn whose reply is not ready after this many seconds; the conversation is left "
                        "as it was (0: no limit; default: 60 for serve, no limit otherwise)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")


DEFAULT_SERVE_TURN_TIMEOUT_S = 60.0


def _rate(text: str):
    """``--rate-per-key`` and ``--rate-per-session``: a ``bot.service.Rate``, or None for 0 / off."""
    from .service import parse_rate

    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _show_defaults(p: argparse.ArgumentParser) -> None:
    """Every option says its default in its help, unless the help already tells it in words; the model
    options' defaults are the config dataclasses' own (``_add_model_options`` reads them from there)."""
    for action in p._actions:  # argparse keeps no public list of a parser's options
        if not action.option_strings or action.help == argparse.SUPPRESS or action.dest in ("help", "verbose"):
            continue
        text = action.help or ""
        if "default" in text:
            continue
        value = action.default
        if isinstance(value, bool):
            shown = "on" if value else "off"
        elif value is None or value == "":
            shown = "none"
        else:
            shown = str(value).replace("%", "%%")
        action.help = (text + " " if text else "") + f"(default: {shown})"


def config_from_args(args: argparse.Namespace) -> BotConfig:
    c = BotConfig()
    for section, names in (
        ("model", ("base_model", "adapter", "emotion_classifier", "ranker", "cross_ranker", "crisis_detector", "reply_pool", "encoder",
                   "device",
                   "dtype", "backend", "gguf_type", "threads", "base_url", "served_model", "cache_dir")),
        ("generation", ("candidates", "retrieved", "max_new_tokens", "temperature", "top_p", "repetition_penalty", "guidance", "sympathy_bonus", "question_bonus", "pool_bonus", "openers", "seed")),
        ("conversation", ("context_tokens", "max_input_chars", "prompts_dir", "persona_name", "log_conversations",
                          "max_stored_turns", "crisis_reply", "risk_turns", "store", "redact",
                          "session_idle_expiry_s", "max_live_sessions", "turn_timeout_s")),
    ):
        for name in names:
            setattr(getattr(c, section), name, getattr(args, name))
    if c.conversation.turn_timeout_s == 0:  # --turn-timeout 0: no limit
        c.conversation.turn_timeout_s = None
    c.validate()
    return c


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="empathetic-bot", description="An empathetic chatbot that tracks emotions.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("chat", help="chat in the terminal", description=CHAT_HELP)
    _add_model_options(p)
    p.add_argument("--session", default=None,
                   help="continue this saved conversation (default: a new one, whose id is printed)")
    p = sub.add_parser("ui", help="start the Gradio web UI")
    _add_model_options(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link (needs a network)")
    p = sub.add_parser("serve", help="serve the bot over HTTP (OpenAI-compatible chat completions, sessions, metrics)")
    _add_model_options(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-keys", default=None, metavar="FILE",
                   help="file of SHA-256 hex digests of the accepted API keys, one per line (default: no keys needed)")
    p.add_argument("--hash-key", default=None, metavar="KEY", help="print the line for KEY in an --api-keys file, and stop")
    p.add_argument("--max-body-bytes", type=int, default=65536, help="larger requests get 413 (default: %(default)s)")
    p.add_argument("--max-waiting", type=int, default=8,
                   help="turns that may wait for the model at once; more get 429 (default: %(default)s)")
    p.add_argument("--rate-per-key", type=_rate, default="30/min", metavar="RATE",
                   help="turns each API key may start (each client address, without --api-keys), as N/s, N/min "
                        "or N/hour; up to N at once, then evenly; more get 429; 0 turns it off (default: %(default)s)")
    p.add_argument("--rate-per-session", type=_rate, default="12/min", metavar="RATE",
                   help="turns each conversation may take, as --rate-per-key (default: %(default)s)")
    p = sub.add_parser("info", help="show the resolved models, files, device and dtype")
    _add_model_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--load", action="store_true",
                   help="load the models and report the backend's device, dtype, parameters and load time (a few seconds)")
    p.add_argument("--no-load", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    p = sub.add_parser("eval", help="run evaluation suites and write a report", description=EVAL_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suites", nargs="*", metavar="SUITE",
                   help="classifier, quality, empathy, advice, safety, attacks, latency, all (default: every suite but "
                        "classifier); or sidebyside RUN_A RUN_B / sidebyside-score DIR")
    _add_model_options(p)
    g = p.add_argument_group("evaluation")
    g.add_argument("--data-dir", default=None, help="folder with empatheticdialogues/, epitome/, esconv/, goemotions/ "
                   "(default $EMPATHETIC_BOT_DATA; the classifier suite also accepts the goemotions/ folder itself)")
    g.add_argument("--samples", type=int, default=60, help="replies generated and scored (default 60)")
    g.add_argument("--ppl-samples", type=int, default=300,
                   help="reference replies for perplexity and emotion accuracy (default 300)")
    g.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    g.add_argument("--scenarios", default=None, help="crisis scenario JSONL (default data/safety/crisis_scenarios.jsonl)")
    g.add_argument("--safety-max-new-tokens", type=int, default=48)
    g.add_argument("--transcripts", default=None, help="score this JSONL of (context, response) rows instead of the bot")
    g.add_argument("--write-contexts", default=None, metavar="FILE",
                   help="write the EmpatheticDialogues test contexts as JSONL for another system to answer, and stop")
    g.add_argument("--compare", nargs="+", default=None, metavar="REPORT",
                   help="lay these report.json files (or their folders) side by side, and stop")
    g.add_argument("--label", default=None, help="name of this run in reports and comparisons")
    g.add_argument("--judge", default=None, help="a ranker folder that chose nothing: the quality suite reports its fit")
    g.add_argument("--skip-identical", action="store_true",
                   help="sidebyside: leave off the cards where both replies are the same (scored as ties)")
    g.add_argument("--output", default="reports/eval", help="folder for the reports (default reports/eval)")
    g = p.add_argument_group("classifier suite")
    g.add_argument("--split", default="test", choices=["train", "dev", "test"])
    g.add_argument("--limit", type=int, default=None, help="score only the first N GoEmotions examples")
    g.add_argument("--latency-samples", type=int, default=200, help="messages timed one at a time (0 skips)")
    p = sub.add_parser("bench", help="measure cold start, memory, time to first token and tokens/s")
    _add_model_options(p)
    p.add_argument("--runs", type=int, default=1, help="repeat the three-turn conversation this many times")
    p.add_argument("--json", action="store_true", help="print JSON")
    g = p.add_argument_group("load (simulated users talking to the service at once; see bot.loadtest)")
    g.add_argument("--concurrent", type=int, default=None, metavar="N",
                   help="N users hold conversations with the service at once (after one user alone, for comparison)")
    g.add_argument("--turns", type=int, default=5, help="messages each simulated user sends (default 5)")
    g.add_argument("--url", default=None, help="a running service to load (default: start one on loopback here)")
    g.add_argument("--api-key", default=None, help="the key for --url's service, if it asks for one")
    p = sub.add_parser("pool", help="build the pool of human replies that join the candidates (from ED and ESConv train)")
    p.add_argument("--data-dir", default=None, help="folder with empatheticdialogues/ and esconv/ (default "
                   "$EMPATHETIC_BOT_DATA)")
    p.add_argument("--ranker", default=BotConfig().model.ranker, help="the ranker whose embeddings index the pool "
                   "(default: %(default)s)")
    p.add_argument("--output", default=None, help="write the pool to this folder (default: the model cache, where "
                   "--reply-pool auto finds it)")
    p.add_argument("--cache-dir", default=None, help="the model cache (default: $EMPATHETIC_BOT_CACHE or "
                   "~/.cache/empathetic-bot)")
    p.add_argument("--limit", type=int, default=None, help="keep only the first N replies (for a quick try)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p = sub.add_parser("cache", help="show (or clear) the model cache: converted and merged models, trained scorers")
    p.add_argument("--cache-dir", default=None, help="the cache folder (default: $EMPATHETIC_BOT_CACHE or "
                   "~/.cache/empathetic-bot)")
    p.add_argument("--clear", nargs="*", metavar="KIND", default=None,
                   help="delete these kinds (gguf, merged, llama-cpp, encoders, reply-pool, epitome-scorer), or all of them when none is named; "
                        "each is rebuilt when next needed")
    p.add_argument("--prune", action="store_true",
                   help="delete the merged models and fast copies made from an adapter or model folder that is gone "
                        "or has changed since (what no configuration can use any more)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    for command in sub.choices.values():
        _show_defaults(command)
    return parser


def run_cache(cache_dir: str | None, clear: list[str] | None, prune: bool = False) -> int:
    """What the cache holds, kind by kind; with ``clear`` the deletion of some or all of it; with
    ``prune`` the deletion of what was made from a folder that is gone or has changed."""
    import shutil
    from pathlib import Path

    from .fast_encoder import stale_copy
    from .generation import default_cache_dir, stale_merge

    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    kinds = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size

    if prune:
        stale_of = {"llama-cpp": stale_merge, "merged": stale_merge, "encoders": stale_copy}
        freed, unknown = 0, 0
        for kind in kinds:
            if kind.name not in stale_of:
                continue
            for entry in sorted(e for e in kind.iterdir() if not e.name.startswith(".")):
                stale = stale_of[kind.name](entry)
                if stale is None:
                    unknown += 1
                elif stale:
                    freed += size(entry)
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
                    print(f"deleted {entry} (what it was made from is gone or has changed)")
        print(f"pruned {_human_size(freed)}" + (f"; {unknown} item(s) that do not say what they were made from were "
                                              "kept (--clear KIND removes them)" if unknown else ""))
        return 0

    if clear is not None:
        unknown = set(clear) - {k.name for k in kinds}
        if unknown:
            print(f"nothing cached under the name(s) {', '.join(sorted(unknown))} in {root}", file=sys.stderr)
        for kind in kinds:
            if not clear or kind.name in clear:
                freed = size(kind)
                shutil.rmtree(kind, ignore_errors=True)
                print(f"deleted {kind} ({_human_size(freed)})")
        return 0
    if not kinds:
        print(f"the cache {root} is empty")
        return 0
    print(f"cache: {root}")
    total = 0
    for kind in kinds:
        entries = sorted(e for e in kind.iterdir() if not e.name.startswith("."))
        kind_size = size(kind)
        total += kind_size
        print(f"  {kind.name}: {_human_size(kind_size)} in {len(entries)} item(s)")
        for e in entries:
            print(f"      {e.name}  {_human_size(size(e))}")
    print(f"total: {_human_size(total)} (empathetic-bot cache --clear [KIND...] deletes; it is rebuilt when needed)")
    return 0


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose == 0:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import warnings

        warnings.filterwarnings("ignore")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    _setup_logging(args.verbose)
    try:
        if args.command == "eval":
            return run_eval(args)
        if args.command == "cache":
            return run_cache(args.cache_dir, args.clear, args.prune)
        if args.command == "pool":
            from .ranker import ResponseRanker
            from .retrieval import build_pool

            if not args.ranker:
                raise ValueError("a reply pool is indexed by the ranker's embeddings: give --ranker")
            build_pool(args.data_dir, ResponseRanker(args.ranker), args.output, args.cache_dir, args.limit)
            print("the bot uses it from now on (--reply-pool auto, the default; --retrieved sets how many replies "
                  "join the candidates)")
            return 0
        config = config_from_args(args)
        if args.command == "serve" and args.hash_key is not None:
            from .service import hash_key

            print(hash_key(args.hash_key))
            return 0
        if args.command in ("chat", "ui", "serve") and args.store is None:
            config.conversation.store = "default"  # conversations survive restarts (--store memory: they don't)
        if args.command == "serve" and args.turn_timeout_s is None:
            config.conversation.turn_timeout_s = DEFAULT_SERVE_TURN_TIMEOUT_S  # a desk's client must not wait forever
        if args.command == "chat":
            return run_chat(config, args.session)
        if args.command == "ui":
            from .ui import launch

            launch(config, host=args.host, port=args.port, share=args.share)
            return 0
        if args.command == "serve":
            from .service import serve

            serve(config, host=args.host, port=args.port, api_keys=args.api_keys, max_body_bytes=args.max_body_bytes,
                  max_waiting=args.max_waiting, rate_per_key=args.rate_per_key, rate_per_session=args.rate_per_session)
            return 0
        if args.command == "info":
            return run_info(config, as_json=args.json, load=args.load and not args.no_load)
        if args.command == "bench" and args.concurrent is not None:
            from .loadtest import run_load

            return run_load(config, users=args.concurrent, turns=args.turns, url=args.url, api_key=args.api_key,
                            as_json=args.json)
        if args.command == "bench":
            from .benchmark import run_benchmark

            return run_benchmark(config, runs=args.runs, as_json=args.json)
    except (BotError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    return 2


def run_eval(args: argparse.Namespace) -> int:
    from eval.bot_suite import SUITES, EvalConfig, run, write_contexts

    if args.compare:
        from eval.report import compare

        print(compare(args.compare, args.output), end="")
        print(f"written: {args.output}/compare.md")
        return 0
    seed = 0 if args.seed is None else args.seed
    if args.suites and args.suites[0] in ("sidebyside", "sidebyside-score"):
        from eval import sidebyside

        if args.suites[0] == "sidebyside":
            if len(args.suites) not in (2, 3):
                raise ValueError("usage: empathetic-bot eval sidebyside RUN_A [RUN_B] --output DIR")
            n = sidebyside.write_sheet(args.suites[1], args.suites[2] if len(args.suites) == 3 else None,
                                       args.output, seed, args.skip_identical)
            print(f"wrote {n} cards to {args.output}/sheet.html (and sheet.md); the raters fill in "
                  f"{args.output}/choices.csv; keep {args.output}/key.json from them")
            return 0
        if len(args.suites) != 2:
            raise ValueError("usage: empathetic-bot eval sidebyside-score DIR")
        print(json.dumps(sidebyside.score(args.suites[1]), indent=1))
        return 0
    if args.write_contexts:
        n = write_contexts(args.data_dir, args.write_contexts, args.samples, seed)
        print(f"wrote {n} contexts to {args.write_contexts}; answer them and score the result with --transcripts")
        return 0
    suites = list(dict.fromkeys(args.suites or SUITES))
    if "all" in suites:
        suites = ["classifier", *SUITES]
    unknown = [s for s in suites if s not in ("classifier", *SUITES)]
    if unknown:
        raise ValueError(f"unknown suite(s) {', '.join(unknown)}; choose from classifier, {', '.join(SUITES)}, all")
    if "classifier" in suites:
        _classifier_suite(args)
    suites = [s for s in suites if s != "classifier"]
    if not suites:
        return 0
    cfg = EvalConfig(suites=tuple(suites), data_dir=args.data_dir, samples=args.samples, ppl_samples=args.ppl_samples,
                     seed=seed, bootstrap=args.bootstrap, scenarios=args.scenarios,
                     safety_max_new_tokens=args.safety_max_new_tokens, transcripts=args.transcripts, label=args.label,
                     output=args.output, cache_dir=args.cache_dir, judge=args.judge)
    bot = None
    if not args.transcripts:
        from .core import EmpatheticBot

        config = config_from_args(args)
        config.generation.seed = seed  # the same replies every run
        bot = EmpatheticBot(config)
    report = run(cfg, bot)
    print(f"{report['label']} ({report['wall_seconds']} s):")
    for name, fig in report["headline"].items():
        ci = f" [{fig['ci95'][0]:.3f}, {fig['ci95'][1]:.3f}]" if fig.get("ci95") else ""
        print(f"  {name}: {fig['value']:.3f}{ci}")
    print(f"  report: {args.output}/report.md")
    return 0


def _classifier_suite(args: argparse.Namespace) -> None:
    from eval.classifier_suite import run

    from .generation import pick_device

    data_dir = args.data_dir
    if data_dir and (Path(data_dir).expanduser() / "goemotions").is_dir():
        data_dir = str(Path(data_dir).expanduser() / "goemotions")
    report = run(args.emotion_classifier or "goemotions-minilm", data_dir, args.output, split=args.split, limit=args.limit,
                 latency_samples=args.latency_samples, device=pick_device(args.device))
    t = report["tuned_thresholds"]
    print(f"{report['classifier']} on GoEmotions {args.split} ({report['data']['n']} comments):")
    print(f"  macro-F1 {t['macro_f1']:.3f} (tuned thresholds), {report['at_0.5']['macro_f1']:.3f} (0.5); "
          f"micro-F1 {t['micro_f1']:.3f}; Ekman macro-F1 {t['ekman']['macro_f1']:.3f}"
          + (f" (labels collapsed), {t['ekman_direct']['macro_f1']:.3f} (group thresholds)" if "ekman_direct" in t else "")
          + f"; sentiment macro-F1 {t['sentiment']['macro_f1']:.3f}; ECE {t['ece']:.3f}")
    if report["latency"]:
        print(f"  one message: {report['latency']['median_ms']} ms median, {report['latency']['p90_ms']} ms p90")
    print(f"  report: {args.output}/classifier.md")


def _human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def run_info(config: BotConfig, as_json: bool = False, load: bool = True) -> int:
    from .resolve import resolve_base_model, resolve_classifier, resolve_encoder, resolve_adapter

    m = config.model
    resolved = {
        "base_model": resolve_base_model(m.base_model),
        "adapter": resolve_adapter(m.adapter),
        "emotion_classifier": resolve_classifier(m.emotion_classifier),
        "encoder": resolve_encoder(m.encoder),
    }
    report: dict = {name: (None if r is None else {"description": r.description, "kind": r.kind,
                                                   "location": r.location, "files": r.files})
                    for name, r in resolved.items()}
    if resolved["emotion_classifier"] is None:
        from .emotion import UNAVAILABLE_NO_CLASSIFIER

        report["emotion_tracking"] = UNAVAILABLE_NO_CLASSIFIER
    if m.reply_pool == "auto" and not load:
        from .retrieval import describe_cached_pool

        report["reply_pool"] = describe_cached_pool(m.ranker, m.cache_dir)
    if load:
        from .core import EmpatheticBot

        bot = EmpatheticBot(config)
        report["loaded"] = bot.info()
    else:
        report["plan"] = _planned(config)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    for name, r in resolved.items():
        label = name.replace("_", " ")
        if r is None:
            print(f"{label}: none")
            continue
        print(f"{label}: {r.description}")
        for path, size in r.files:
            if size > 1_000_000 or len(r.files) <= 3:
                print(f"    {path}  ({_human_size(size)})")
    if "emotion_tracking" in report:
        print(f"emotion tracking: {report['emotion_tracking']}")
    if "reply_pool" in report:
        print(f"reply pool: {report['reply_pool']}")
    if not load:
        for key, value in report["plan"].items():
            print(f"{key}: {value}")
        print("(add --load to load the models and measure: device, dtype, parameters, load time)")
    else:
        rm = report["loaded"]["reply_model"]
        print(f"backend: {rm.get('backend', 'custom')}" + (f"  threads: {rm['threads']}" if rm.get("threads") else ""))
        print(f"device: {rm['device']}  dtype: {rm['dtype']}  parameters: {rm['parameters']:,}  "
              f"context window: {rm['context_window']} tokens")
        print(f"loaded from: {rm['loaded_from']}  ({rm['load_seconds']} s)")
        print(f"ranker: {report['loaded']['ranker'] or 'none (the first candidate without problems is shown)'}")
        print(f"reply pool: {report['loaded']['reply_pool']}")
        print(f"crisis detector: rules + {report['loaded']['crisis_detector']}"
              if report['loaded']['crisis_detector'] != "rules only" else "crisis detector: rules only")
        print(f"candidates per turn: {config.generation.candidates}")
        print(f"prompts: {report['loaded']['prompts']}")
    return 0


def _planned(config: BotConfig) -> dict:
    """What the bot would load, read without loading anything (and without importing torch)."""
    from dataclasses import replace

    from .backends import llama_cpp_unsuitable
    from .prompting import PromptBook

    m = config.model
    if m.backend in ("auto", "llama-cpp"):
        # the CUDA check would import torch: read the plan as on a CPU and say what a GPU changes
        why_not = llama_cpp_unsuitable(replace(m, device="cpu") if m.device == "auto" else m)
        if why_not is None:
            backend = "llama-cpp" + (" (transformers where a CUDA device is present)" if m.device == "auto" else "")
        elif m.backend == "auto":
            backend = f"transformers (llama.cpp not used: {why_not})"
        else:
            backend = f"llama-cpp cannot run this configuration: {why_not}"
    else:
        backend = m.backend + (f" at {m.base_url}" if m.backend == "openai" else "")
    pooled = config.generation.retrieved if m.reply_pool else 0
    return {
        "backend": backend,
        "ranker": m.ranker or "none (the first candidate without problems is shown)",
        "crisis detector": f"rules + {m.crisis_detector}" if m.crisis_detector else "rules only",
        "candidates per turn": f"{config.generation.candidates}" + (f" + up to {pooled} pooled replies" if pooled else ""),
        "openers": (f"{config.generation.openers:.0%} of the candidates are written lines the emotion state chooses"
                    if config.generation.openers > 0 else "off"),
        "prompts": str(PromptBook(config.conversation.prompts_dir, config.conversation.persona_name).dir),
    }


def _read_line(stream) -> bytes | None:
    line = stream.readline()
    return None if not line else line.rstrip(b"\r\n")


def run_chat(config: BotConfig, session_id: str | None = None) -> int:
    import time

    from .core import EmpatheticBot, Reply

    interactive = sys.stdin.isatty()
    if interactive:
        print("Loading the models...", file=sys.stderr, flush=True)
    bot = EmpatheticBot(config)
    out = sys.stdout
    print(f"Ready. {CHAT_HELP}", file=sys.stderr, flush=True)
    if session_id is None:
        session_id = time.strftime("cli-%Y%m%d-%H%M%S")
        if bot.store is not None:
            print(f"(This conversation is saved as {session_id}: continue it later with --session {session_id}; "
                  "/reset deletes it.)", file=sys.stderr, flush=True)
    elif earlier := len(bot.history(session_id)) // 2:
        print(f"(Continuing {session_id}: {earlier} earlier turns.)", file=sys.stderr, flush=True)
    stdin = sys.stdin.buffer
    while True:
        if interactive:
            print("you> ", end="", file=out, flush=True)
        raw = _read_line(stdin)
        if raw is None:
            break
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            print("bot> (That line was not valid UTF-8 text; the invalid bytes were replaced.)", file=out, flush=True)
            text = raw  # the bot replaces the invalid bytes and flags it
        command = text.strip().lower() if isinstance(text, str) else ""
        if command in ("/quit", "/exit", "/q"):
            break
        if command == "/reset":
            bot.reset(session_id)
            print("bot> (Conversation deleted. Let's start fresh.)", file=out, flush=True)
            continue
        if command == "/state":
            print(f"state> {bot.emotion_state(session_id).summary()}", file=out, flush=True)
            continue
        if command == "/why":
            try:
                for label, words in bot.explain(session_id=session_id).items():
                    shown = ", ".join(f"{w} {v:+.0%}" for w, v in words) or "no single word stands out"
                    print(f"why> {label}: {shown}", file=out, flush=True)
            except BotError as exc:
                print(f"why> {exc}", file=out, flush=True)
            continue
        if command == "/help":
            print(CHAT_HELP, file=out, flush=True)
            continue
        try:
            print("bot> ", end="", file=out, flush=True)
            reply = None
            for item in bot.stream(text, session_id=session_id):
                if isinstance(item, Reply):
                    reply = item
                else:
                    print(item, end="", file=out, flush=True)
            # a reply cut off by --max-new-tokens is marked; the history keeps it up to its last full sentence
            print(" …" if reply is not None and reply.stopped == "max_new_tokens" else "", file=out, flush=True)
            if reply is not None and reply.emotion.available and interactive:
                print(f"       [{reply.emotion.line()}]", file=out, flush=True)
        except InvalidInputError as exc:
            print(f"({exc})", file=out, flush=True)
        except BotError as exc:
            print(f"\n(Sorry, that turn failed: {exc}. Your conversation is unchanged; try again.)", file=out, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
