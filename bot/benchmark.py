"""Benchmark: cold start, resident memory, time to first token and tokens/s on a fixed conversation.

Prints figures; it is not a test. Run with ``empathetic-bot bench`` (same model options as chat).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time

from .config import BotConfig

CONVERSATION = (
    "I failed my driving test for the third time today and I feel like such an idiot.",
    "My instructor says I panic at roundabouts, and everyone else I know passed first time.",
    "I don't know if I should even try again. Maybe driving just isn't for me.",
    "Thanks, talking it through actually helps. I feel a bit better now.",
)


def _rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def _model_wrote(reply) -> bool:
    """Whether the reply model wrote candidates this turn (whichever was shown): not a turn answered
    by written replies alone (a greeting, a crisis question, the openers, which are whole replies)."""
    return any(c.get("source") == "model" for c in reply.candidates or ())


def run_benchmark(config: BotConfig, runs: int = 1, as_json: bool = False) -> int:
    import torch

    if config.generation.seed is None:
        config.generation.seed = 0
    rss_start = _rss_mb()
    t0 = time.perf_counter()
    from .core import EmpatheticBot

    import_s = time.perf_counter() - t0
    bot = EmpatheticBot(config)
    cold_start_s = time.perf_counter() - t0
    start_profile = {"imports": round(import_s, 3), **bot.start_times}
    rss_loaded = _rss_mb()
    turns = []
    for run in range(runs):
        sid = f"bench-{run}"
        for i, text in enumerate(CONVERSATION, 1):
            reply = bot.chat(text, session_id=sid)
            t = reply.timings
            turns.append({"run": run, "turn": i, "written": not _model_wrote(reply), "reason": reply.reason,
                          "prompt_tokens": t["prompt_tokens"], "new_tokens": t["new_tokens"],
                          "emotion_ms": t["emotion_ms"],
                          "first_token_ms": t["first_token_ms"], "rank_ms": t.get("rank_ms", 0.0),
                          "total_ms": t["total_ms"],
                          "tokens_per_s": t["tokens_per_s"]})
    rss_peak = _rss_mb()
    classify_ms = None
    if bot.emotion_classifier is not None:  # one message at a time, as on every turn
        times = []
        for _ in range(30):
            for text in CONVERSATION:
                t0 = time.perf_counter()
                bot._classify([text])  # on the model thread, as in a turn
                times.append((time.perf_counter() - t0) * 1e3)
        classify_ms = {"median": round(statistics.median(times), 2), "p90": round(sorted(times)[int(0.9 * len(times))], 2)}
    crisis_ms = None
    if bot.crisis_detector.classifier is not None:  # the message alone and with the turns before it, as in a turn
        times = []
        for _ in range(30):
            for i, text in enumerate(CONVERSATION):
                t0 = time.perf_counter()
                bot._on_model_thread(bot.crisis_detector.read, text, CONVERSATION[:i])
                times.append((time.perf_counter() - t0) * 1e3)
        crisis_ms = {"median": round(statistics.median(times), 2), "p90": round(sorted(times)[int(0.9 * len(times))], 2)}
    info = bot.info()["reply_model"]
    raw = None
    if info.get("backend") == "llama-cpp":  # llama.cpp on the served file against the plain base GGUF
        from .backends import decode_rate

        model = bot.reply_model
        plain = f"{model.resolved.location}/{model.resolved.gguf_file}"
        raw = {"served": bot.reply_model.call(decode_rate, model.model_file, model.threads),
               "plain_base": bot.reply_model.call(decode_rate, plain, model.threads)}
        raw["decode_ratio"] = round(raw["served"]["decode_tokens_per_s"] / raw["plain_base"]["decode_tokens_per_s"], 2)
    model_turns = [t for t in turns if not t["written"]]
    generated = model_turns or turns  # written replies (openers, pool, greeting...) cost no decoding
    total_tokens = sum(t["new_tokens"] for t in turns)
    total_gen_s = sum(t["total_ms"] for t in model_turns) / 1e3  # the turns the model wrote on
    result = {
        "backend": info.get("backend"), "model": info["base_model"], "adapter": info["adapter"],
        "device": info["device"], "dtype": info["dtype"], "backend_threads": info.get("threads"),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "max_new_tokens": config.generation.max_new_tokens, "candidates": config.generation.candidates, "runs": runs,
        "pooled_replies": (config.generation.retrieved if bot.reply_pool is not None else 0),
        "cold_start_s": round(cold_start_s, 2), "start_profile_s": start_profile, "loaded_from": info["loaded_from"],
        "rss_mb": {"before_load": round(rss_start), "after_load": round(rss_loaded), "after_chat": round(rss_peak)},
        "generated_turns": len(model_turns),
        "first_token_ms_median": round(statistics.median(t["first_token_ms"] for t in generated), 1),
        "tokens_per_s_median": (round(statistics.median(decoded), 1) if (decoded := [t["tokens_per_s"] for t in generated
                                                                                    if t["new_tokens"]]) else None),
        "tokens_per_s_overall": round(total_tokens / total_gen_s, 1) if total_gen_s else 0.0,
        "classify_ms": classify_ms, "crisis_detector_ms": crisis_ms, "llama_cpp_raw": raw,
        "total_ms_median": round(statistics.median(t["total_ms"] for t in turns), 1),
        "model_total_ms_median": (round(statistics.median(t["total_ms"] for t in model_turns), 1) if model_turns
                                  else None),
        "turns": turns,
    }
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"backend: {result['backend']}" + (f" ({result['backend_threads']} threads for prompts, "
                                             f"{info.get('decode_threads')} for decoding)" if result["backend_threads"] else ""))
    print(f"model: {result['model']}  adapter: {result['adapter'] or 'none'}")
    print(f"device: {result['device']}  dtype: {result['dtype']}  torch threads: {result['torch_threads']}  "
          f"max_new_tokens: {result['max_new_tokens']}  candidates: {result['candidates']}  "
          f"pooled replies: {result['pooled_replies'] or 'none'}")
    print(f"cold start: {result['cold_start_s']} s  (weights from {result['loaded_from']})")
    print("  where it goes: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in start_profile.items())
          + " (torch was imported before the clock started)")
    r = result["rss_mb"]
    print(f"resident memory: {r['before_load']} MB before load, {r['after_load']} MB loaded, "
          f"{r['after_chat']} MB after the conversation")
    print("turn  prompt_tok  new_tok  first_token_ms  (ranking)  total_ms  tokens/s")
    for t in turns:
        print(f"{t['turn']:>4}  {t['prompt_tokens']:>10}  {t['new_tokens']:>7}  {t['first_token_ms']:>14.0f}  "
              f"{t['rank_ms']:>9.0f}  {t['total_ms']:>8.0f}  {t['tokens_per_s']:>8.1f}" + (f"  (written: {t['reason']})" if t["written"] else ""))
    if classify_ms:
        print(f"emotion classifier: {classify_ms['median']} ms median, {classify_ms['p90']} ms p90 per message "
              f"({len(CONVERSATION) * 30} messages, one at a time)")
    else:
        print("emotion classifier: none configured")
    if crisis_ms:
        print(f"crisis detector: {crisis_ms['median']} ms median, {crisis_ms['p90']} ms p90 per message (with the "
              "turns before it)")
    print(f"median whole turn: {result['total_ms_median']} ms over all {len(turns)} turns; "
          + (f"{result['model_total_ms_median']} ms over the {result['generated_turns']} the model wrote candidates for"
             if model_turns else "the model wrote on none")
          + " (the others: written lines and the pool's replies; the chosen reply is shown when it is chosen; "
          "new_tok counts every candidate's tokens)")
    if raw:
        s, p = raw["served"], raw["plain_base"]
        print(f"llama.cpp raw speed, served file / plain base GGUF: decode {s['decode_tokens_per_s']} / "
              f"{p['decode_tokens_per_s']} tokens/s (ratio {raw['decode_ratio']}), prompt {s['prompt_tokens_per_s']} / "
              f"{p['prompt_tokens_per_s']} tokens/s")
    print(f"median time to first token: {result['first_token_ms_median']} ms; "
          f"median tokens/s: {result['tokens_per_s_median']}; overall tokens/s: {result['tokens_per_s_overall']}")
    return 0
