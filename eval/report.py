"""Reports: ``report.json`` (every figure, the configuration and the commit), ``report.md`` (tables and
plots for a person), ``replies.jsonl`` (each scored reply, to read the numbers against the text), and
``compare.md`` / ``compare.json`` for several runs side by side."""

from __future__ import annotations

import json
from pathlib import Path


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def _ci(fig: dict | None) -> str:
    if not fig or not fig.get("ci95"):
        return ""
    lo, hi = fig["ci95"]
    return f" [{_fmt(lo)}, {_fmt(hi)}]"


def _value(fig: dict | None) -> str:
    return (_fmt(fig.get("value")) + _ci(fig)) if fig else "n/a"


def plot_epitome(report: dict, path: Path) -> bool:
    emp = report.get("empathy") or {}
    if not emp.get("replies"):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mechs = list(emp["replies"])
    fig, axes = plt.subplots(1, len(mechs), figsize=(3.2 * len(mechs), 3), sharey=True)
    for ax, m in zip(axes, mechs):
        for k, (who, color) in enumerate((("replies", "#3b7dd8"), ("references", "#9a9a9a"))):
            if emp.get(who):
                counts = emp[who][m]["levels"]
                total = max(sum(counts), 1)
                ax.bar([x + (k - 0.5) * 0.38 for x in range(3)], [c / total for c in counts], width=0.38,
                       color=color, label="bot" if who == "replies" else "human reference")
        ax.set_xticks(range(3), ["none", "weak", "strong"])
        ax.set_title(m.replace("_", " "))
    axes[0].set_ylabel("share of replies")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def markdown(report: dict) -> str:
    sysinfo = report["system"]
    if sysinfo["kind"] == "bot":
        rm = sysinfo.get("reply_model") if isinstance(sysinfo.get("reply_model"), dict) else {}
        who = (f"bot: base {rm.get('base_model')}, adapter {rm.get('adapter') or 'none'}, emotion classifier "
               f"{sysinfo.get('emotion_classifier') or 'none'}, prompts {sysinfo.get('prompts')}")
    else:
        who = f"transcripts: {sysinfo['file']} ({sysinfo['rows']} rows, {sysinfo['broken_rows_skipped']} broken rows skipped)"
    cfg = report["config"]
    lines = [f"# Evaluation: {report['label']}", "", who + "  ",
             f"Commit {report['commit']}, {report['created']}, seed {cfg['seed']}, {cfg['samples']} generated replies, "
             f"{cfg['ppl_samples']} reference replies for perplexity, {report['wall_seconds']} s.", "",
             "Intervals are 95% bootstrap intervals over the examples.", "",
             "## Headline", "", "| figure | value [95% CI] | better |", "| --- | --- | --- |"]
    for name, fig in report["headline"].items():
        lines.append(f"| {name} | {_value(fig)} | {fig['better']} |")
    q = report.get("quality")
    if q:
        lines += ["", "## Response quality (EmpatheticDialogues test)", ""]
        if q.get("reference_perplexity"):
            p = q["reference_perplexity"]
            lines.append(f"Perplexity of the human reference reply under the bot's reply model, with the bot's own prompt: "
                         f"{_value(p)} ({p['n']} replies, {p['tokens']} tokens).  ")
        cond = q.get("conditioning")
        if cond:
            lines += ["", "Does the reply model read the emotion state? The same human replies scored with the bot's "
                          "own system message (persona, emotion state, guidance), with another conversation's, and "
                          f"with none ({cond['n']} replies, {cond['tokens']} tokens; a gain of 1.00 means the state "
                          "is ignored):", "",
                      "| system message | perplexity | gain over own |", "| --- | --- | --- |",
                      f"| own | {_value(cond['own'])} | |",
                      f"| another conversation's | {_value(cond['swapped'])} | {_value(cond['gain_swapped'])} |",
                      f"| none | {_value(cond['none'])} | {_value(cond['gain_none'])} |", ""]
        if q.get("bleu"):
            lines.append(f"BLEU against the reference (sacrebleu, corpus): {_value(q['bleu'])}.")
        rows = [("replies", "bot"), ("references", "human reference")]
        lines += ["", "| text | Distinct-1 | Distinct-2 | words per reply | repeated 3-grams |", "| --- | --- | --- | --- | --- |"]
        for key, name in rows:
            t = q.get(f"{key}_text")
            if t:
                lines.append(f"| {name} | {_fmt(t['distinct_1'])} | {_fmt(t['distinct_2'])} | "
                             f"{_fmt(t['length_words']['value'], 1)} | {_fmt(t['repetition_3']['value'])} |")
        acc = q.get("emotion_accuracy")
        if acc and acc.get("value") is not None:
            lines += ["", f"Emotion accuracy: the Ekman group of the bot's reading of the conversation matches the gold "
                          f"EmpatheticDialogues label (mapped as in `eval/bot_suite.py`) in {_value(acc)} of {acc['n']} "
                          f"contexts ({acc['unmapped_skipped']} with labels that have no Ekman group skipped).", "",
                      "| gold group | accuracy | n |", "| --- | --- | --- |"]
            lines += [f"| {g} | {_fmt(v['accuracy'])} | {v['n']} |" for g, v in acc["by_group"].items()]
    e = report.get("empathy")
    if e:
        sc = e["scorer"]
        lines += ["", "## Empathy (EPITOME)", "",
                  "Mean level (0 none, 1 weak, 2 strong) of each communication mechanism, scored by the suite's own "
                  f"EPITOME classifiers (test macro-F1 ER {sc['test_macro_f1']['emotional_reactions']:.3f}, IP "
                  f"{sc['test_macro_f1']['interpretations']:.3f}, EX {sc['test_macro_f1']['explorations']:.3f}; "
                  "split train / dev / test " + " / ".join(str(v) for v in sc["split"].values()) + " pairs).", "",
                  "| mechanism | bot | human reference |", "| --- | --- | --- |"]
        for m in e.get("replies", {}):
            ref = (e.get("references") or {}).get(m)
            lines.append(f"| {m.replace('_', ' ')} | {_value(e['replies'][m])} | {_value(ref) if ref else 'n/a'} |")
        if (Path(report["config"]["output"]) / "epitome_levels.png").is_file():
            lines += ["", "![EPITOME levels](epitome_levels.png)"]
    a = report.get("advice")
    if a:
        lines += ["", "## Acknowledge before advising", "",
                  "| text | advice before acknowledgement | any advice | acknowledges |", "| --- | --- | --- | --- |"]
        for key, name in (("replies", "bot"), ("references", "human reference")):
            if a.get(key):
                r = a[key]
                lines.append(f"| {name} | {_value(r['advice_before_acknowledgement'])} | {_value(r['advice'])} | "
                             f"{_value(r['acknowledgement'])} |")
        if a.get("detector_vs_esconv"):
            v = a["detector_vs_esconv"]
            lines += ["", f"The advice detector against ESConv's \"Providing Suggestions\" turns ({v['split']}, "
                          f"{v['turns']} supporter turns): precision {v['precision']}, recall {v['recall']}, F1 {v['f1']}."]
    s = report.get("safety")
    if s:
        lines += ["", "## Safety"]
        if "recall" in s and s.get("scenarios"):
            lines += ["", f"Crisis scenarios: {s['crisis']} crisis messages and {s['not_crisis']} look-alikes. "
                          f"Recall {_value(s['recall'])}, precision {_value(s['precision'])}, right category "
                          f"{_fmt(s['category_accuracy'])}; replies with the right resources {_value(s.get('resources'))}.", "",
                      "| recall by | value | n |", "| --- | --- | --- |"]
            for table in ("recall_by_kind", "recall_by_category"):
                lines += [f"| {k} | {_fmt(v['recall'])} | {v['n']} |" for k, v in s[table].items()]
            missed = "; ".join(f"{i} \"{t}\"" for i, t in zip(s["missed"], s.get("missed_text", [""] * len(s["missed"]))))
            lines += ["", f"Missed: {missed or 'none'}. False alarms: {', '.join(s['false_alarms']) or 'none'}."]
        elif "flagged_contexts" in s:
            lines += ["", f"{s['flagged_contexts']} contexts flagged as possible crises; replies with the right resources: "
                          f"{_value(s['resources'])}."]
        if s.get("bad_input"):
            b = s["bad_input"]
            lines += ["", f"Bad input: {b['passed']} of {b['total']} handled as expected.", "",
                      "| input | expected | outcome | session intact | detail |", "| --- | --- | --- | --- | --- |"]
            lines += [f"| {c['input']} | {c['expected']} | {c['outcome']} | {c['history_intact']} | "
                      f"{c['detail'].replace('|', '/')[:90]} |" for c in b["cases"]]
    oc = report.get("output_checks")
    if oc:
        lines += ["", "## Output checks", "",
                  f"On the {oc['replies']} generated replies: {oc['candidates_caught']} candidates had a problem that is never "
                  f"shown ({', '.join(oc['problems']) or 'none'}); the written fallback was shown {oc['fallback_shown']} times; "
                  f"shown replies that an independent look (the never-shown rules and the learned crisis detector) still "
                  f"finds harmful: {oc['harmful_shown']}."]
    at = report.get("attacks")
    if at:
        lines += ["", "## Attacks and openers", "",
                  f"{at['messages']} first messages (`data/safety/attacks.jsonl`, `openers.jsonl`); shown replies that leak "
                  f"the instructions: {at['leaks_shown']}; shown replies found harmful: {at['harmful_shown']}; candidates "
                  f"caught by the checks: {at['candidates_caught']}.", "",
                  "| goal | n | written redirect | any written reply | crisis reply | leaks shown | harmful shown | candidates caught | fallback |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for goal, g in at["by_goal"].items():
            lines.append(f"| {goal} | {g['n']} | {g['redirected']:.2f} | {g.get('written_reply', 0):.2f} | "
                         f"{g['crisis_reply']:.2f} | {g['leaks_shown']} | {g['harmful_shown']} | {g['candidates_caught']} | "
                         f"{g['fallback_shown']} |")
        conv = at.get("conversations")
        if conv:
            lines += ["", f"{conv['conversations']} attack conversations ({conv['turns']} user turns, "
                          "`data/safety/attack_conversations.jsonl`), turn by turn:", "",
                      "| kind | turns | written reply | crisis reply | leaks shown | harmful shown |",
                      "| --- | --- | --- | --- | --- | --- |"]
            for kind, k in conv["by_kind"].items():
                lines.append(f"| {kind} | {k['turns']} | {k['written_reply']:.2f} | {k['crisis_reply']:.2f} | "
                             f"{k['leaks_shown']} | {k['harmful_shown']} |")
        if at.get("greetings_answered_with_a_greeting_and_a_question"):
            lines += ["", "Greetings answered with a greeting and a question: "
                          f"{_value(at['greetings_answered_with_a_greeting_and_a_question'])}."]
    lat = report.get("latency")
    if lat:
        lines += ["", "## Latency", "", f"{lat['turns']} turns; model loaded in {lat['model_load_s']} s.", "",
                  "| per turn | median | p90 |", "| --- | --- | --- |"]
        for key, name in (("total_ms", "whole turn (ms)"), ("first_token_ms", "time to first token (ms)"),
                          ("tokens_per_s", "tokens/s (where the model added any)"), ("new_tokens", "tokens per reply"), ("emotion_ms", "screen + emotion (ms)")):
            if lat.get(key):
                lines.append(f"| {name} | {lat[key]['median']} | {lat[key]['p90']} |")
    return "\n".join(lines) + "\n"


def last_user(context: list[dict]) -> str:
    return next((m["content"] for m in reversed(context) if m["role"] == "user"), "")


def write_report(report: dict, rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    with open(out / "replies.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: r.get(k) for k in ("id", "emotion", "reading", "response", "reference", "epitome",
                                                        "crisis", "error")} | {"user": last_user(r.get("context") or [])}) + "\n")
    plot_epitome(report, out / "epitome_levels.png")
    (out / "report.md").write_text(markdown(report))


def compare(paths: list[str | Path], output: str | Path) -> str:
    """Lay several ``report.json`` side by side; differences are against the first."""
    reports = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            p = p / "report.json"
        try:
            reports.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the report {p}: {exc}") from exc
    labels = [r.get("label") or f"run {i + 1}" for i, r in enumerate(reports)]
    names = list(dict.fromkeys(n for r in reports for n in r.get("headline", {})))
    lines = ["# Comparison", "", "Differences are against the first run; * marks a difference whose 95% intervals "
             "do not overlap.", "", "| figure | " + " | ".join(labels) + " | " +
             " | ".join(f"{lab} - {labels[0]}" for lab in labels[1:]) + " |",
             "| --- " * (1 + len(labels) + len(labels) - 1) + "|"]
    table = {}
    for n in names:
        figs = [r.get("headline", {}).get(n) for r in reports]
        cells = [_value(f) if f else "n/a" for f in figs]
        diffs = []
        for f in figs[1:]:
            if f and figs[0] and f.get("value") is not None and figs[0].get("value") is not None:
                d = f["value"] - figs[0]["value"]
                a, b = f.get("ci95"), figs[0].get("ci95")
                apart = bool(a and b and (a[0] > b[1] or b[0] > a[1]))
                diffs.append(f"{d:+.3f}" + ("*" if apart else ""))
            else:
                diffs.append("n/a")
        table[n] = {"values": [f.get("value") if f else None for f in figs], "better": next((f["better"] for f in figs if f), "")}
        lines.append(f"| {n} ({table[n]['better']} is better) | " + " | ".join(cells) + " | " + " | ".join(diffs) + " |"
                     if table[n]["better"] in ("lower", "higher") else
                     f"| {n} | " + " | ".join(cells) + " | " + " | ".join(diffs) + " |")
    lines += ["", "Runs:"] + [f"- {lab}: commit {r.get('commit')}, {r.get('created')}, {r['system']['kind']}"
                              for lab, r in zip(labels, reports)]
    md = "\n".join(lines) + "\n"
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(md)
    (out / "compare.json").write_text(json.dumps({"labels": labels, "figures": table}, indent=1))
    return md
