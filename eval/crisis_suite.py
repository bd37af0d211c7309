"""How well crisis language is caught: the rules alone, the learned classifier alone, and both together.

    python -m eval.crisis_suite --detector crisis-minilm --data-dir ../shared/data --output reports/crisis

Sets, each reported on its own:

* ``heldout``: ``data/safety/crisis_heldout.jsonl``, written apart from the training phrasings and
  never used to choose anything (no rule, no threshold);
* ``heldout2``: ``data/safety/crisis_heldout2.jsonl``, a second set written the same way, later, by an
  author who saw neither the rules, the training data, the first held-out set nor the model;
* ``heldout3``: ``data/safety/crisis_heldout3.jsonl``, a third set by yet another author who saw nothing
  of the project (no code, data or model), written while the third round of training phrasings was
  being written by another, and read once for the detector trained with that round;
* ``heldout4``: ``data/safety/crisis_heldout4.jsonl``, a fourth author's set (nothing of the project
  seen), read first for the detector of the third round; the kinds it missed named the fourth round's
  brief, so it is no judge of that round's families;
* ``heldout5``: ``data/safety/crisis_heldout5.jsonl``, a fifth author's set (nothing of the project
  seen, written while the fourth round was), read once for the detector trained with that round;
* ``heldout6``: ``data/safety/crisis_heldout6.jsonl``, a sixth author's set (nothing of the project seen,
  written while the fifth round was): 150 crises and 150 messages that are not (100 ordinary, 50
  look-alikes), read once for the detector trained with that round;
* ``heldout7``: ``data/safety/crisis_heldout7.jsonl``, two more authors' sets (nothing of the project
  seen, written while the sixth round was; 150 each: 75 crises, at least half of them without a danger
  word, 45 ordinary messages and 30 look-alikes), read once for the detector trained with that round;
* ``scenarios``: ``data/safety/crisis_scenarios.jsonl``, the regression set written with the rules;
* ``twitter_test`` and ``sdcnl_test``: the research sets' test splits (see ``finetune.train_crisis``;
  when the datasets folder is given).

Per set: recall (a crisis message flagged: an alarm, or a check-in where the bot asks directly) and
``recall_as_alarm``; category recall (flagged as its own category) per category; the false-alarm rate
on non-crisis messages, at either level and as an alarm; recall of imminent messages; by phrasing kind
where the set has one; with 95% bootstrap intervals.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .metrics import mean_ci

PROJECT_DATA = Path(__file__).resolve().parent.parent / "data" / "safety"


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_sets(data_dir: str | None) -> dict[str, list[dict]]:
    """``{name: [{"text", "category" (or "none"), "degree", "kind"}]}``."""
    from finetune.dialogue_data import data_root
    from finetune.train_crisis import read_sdcnl, read_twitter

    names = ("heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7")
    sets = {name: _read_jsonl(PROJECT_DATA / f"crisis_{name}.jsonl") for name in names
            if (PROJECT_DATA / f"crisis_{name}.jsonl").is_file()}
    scen = _read_jsonl(PROJECT_DATA / "crisis_scenarios.jsonl")
    sets["scenarios"] = [{**r, "category": r.get("category") or "none"} for r in scen]
    root = data_root(data_dir)
    if root is not None and (root / "crisis").is_dir():
        sets["twitter_test"] = read_twitter(root)["test"]
        sets["sdcnl_test"] = read_sdcnl(root, "test")
    return sets


def predictions(rows: list[dict], detector) -> list[tuple[str | None, str | None, str | None]]:
    """(category, degree, level) per row, or (None, None, None)."""
    out = []
    for r in rows:
        reading = detector.read(r["text"])
        out.append((reading.category, reading.degree, getattr(reading, "level", "alarm")) if reading
                   else (None, None, None))
    return out


def everyday_conversations(root: Path, split: str = "valid", limit: int | None = None,
                           seed: int = 0) -> list[list[str]]:
    """The user turns of EmpatheticDialogues and ESConv conversations of ``split`` (people upset, not in
    danger), for reading turn by turn as the bot does. Conversations where the rules flag any user turn
    are left out: they may hold a real disclosure. ``limit``: at most this many from each dataset."""
    import random

    from bot.crisis import detect_crisis
    from finetune.dialogue_data import read_empathetic_dialogues, read_esconv

    out = []
    for name, reader in (("empatheticdialogues", read_empathetic_dialogues), ("esconv", read_esconv)):
        if not (root / name).is_dir():
            continue
        convs = [[m["content"] for m in c.messages if m["role"] == "user"] for c in reader(root / name)
                 if c.split == split]
        convs = [c for c in convs if c and not any(detect_crisis(t) for t in c)]
        random.Random(seed).shuffle(convs)
        out += convs[:limit] if limit else convs
    return out


def conversation_false_alarms(conversations: list[list[str]], detector) -> dict:
    """Each user turn read with the turns before it, as in a session: the share of turns flagged (either
    level, and as an alarm) and of conversations with at least one flag, with 95% intervals."""
    turn_flag, turn_alarm, conv_flag = [], [], []
    for turns in conversations:
        any_flag = False
        for i, text in enumerate(turns):
            reading = detector.read(text, turns[:i])
            turn_flag.append(float(reading is not None))
            turn_alarm.append(float(reading is not None and getattr(reading, "level", "alarm") == "alarm"))
            any_flag = any_flag or reading is not None
        conv_flag.append(float(any_flag))
    return {"turns": len(turn_flag), "conversations": len(conv_flag), "turns_flagged": mean_ci(turn_flag),
            "turns_as_alarm": mean_ci(turn_alarm), "conversations_flagged": mean_ci(conv_flag)}


def own_conversations(split: str | None = None) -> list[dict]:
    """``data/safety/crisis_conversations.jsonl``: conversations written for the project (user turns
    only), everyday ones and ones where danger comes out at ``crisis_turn``; ``split`` "dev" or "test"
    (fixed in the file) or None for all."""
    path = PROJECT_DATA / "crisis_conversations.jsonl"
    rows = _read_jsonl(path) if path.is_file() else []
    return [r for r in rows if split is None or r.get("split") == split]


def outside_conversations(split: str | None = None) -> list[dict]:
    """``data/safety/everyday_conversations.jsonl``: ordinary conversations (``turns``: the person's
    messages) written apart from the project; ``split`` "dev" or "test", or None for all."""
    path = PROJECT_DATA / "everyday_conversations.jsonl"
    rows = _read_jsonl(path) if path.is_file() else []
    return [r for r in rows if split is None or r.get("split") == split]


def _as_turns(conversations: list[dict]) -> list[dict]:
    """Ordinary conversations (``outside_conversations``) in the form ``own_conversation_figures`` reads."""
    return [{"kind": "everyday", "user_turns": c["turns"]} for c in conversations]


def own_conversation_figures(conversations: list[dict], detector) -> dict:
    """Everyday conversations: the share of turns and of conversations flagged. Conversations with a
    crisis: the share caught at the turn where the danger comes out, and by the end; the share flagged
    before it (a question asked too early)."""
    everyday = [c["user_turns"] for c in conversations if c["kind"] == "everyday"]
    out = conversation_false_alarms(everyday, detector) if everyday else {}
    caught_at, caught_by, early = [], [], []
    for c in conversations:
        if c["kind"] != "crisis":
            continue
        turns, k = c["user_turns"], c["crisis_turn"]
        readings = [detector.read(t, turns[:i]) for i, t in enumerate(turns)]
        caught_at.append(float(readings[k] is not None))
        caught_by.append(float(any(r is not None for r in readings[k:])))
        early.append(float(any(r is not None for r in readings[:k])))
    if caught_at:
        out.update(crisis_conversations=len(caught_at), caught_at_disclosure=mean_ci(caught_at),
                   caught_by_end=mean_ci(caught_by), flagged_before_disclosure=mean_ci(early))
    return out


def figures(rows: list[dict], preds: list[tuple[str | None, str | None]]) -> dict:
    cats = sorted({r["category"] for r in rows} - {"none"})
    out: dict = {}
    flagged = np.array([p[0] is not None for p in preds])
    alarm = np.array([p[2] == "alarm" for p in preds])
    is_crisis = np.array([r["category"] != "none" for r in rows])
    if is_crisis.any():
        out["recall"] = mean_ci(flagged[is_crisis].astype(float))
        out["recall_as_alarm"] = mean_ci(alarm[is_crisis].astype(float))
    if (~is_crisis).any():
        out["false_alarms"] = mean_ci(flagged[~is_crisis].astype(float))
        out["false_alarms_as_alarm"] = mean_ci(alarm[~is_crisis].astype(float))
    for c in cats:
        idx = [i for i, r in enumerate(rows) if r["category"] == c]
        out[f"recall:{c}"] = mean_ci(flagged[idx].astype(float))
        out[f"category_recall:{c}"] = mean_ci([float(preds[i][0] == c) for i in idx])
    imminent = [i for i, r in enumerate(rows) if r.get("degree") == "imminent"]
    if imminent:
        out["recall:imminent"] = mean_ci(flagged[imminent].astype(float))
        out["imminent_read_as_imminent"] = mean_ci([float(preds[i][1] == "imminent") for i in imminent])
    kinds = sorted({r.get("kind", "") for r in rows} - {""})
    by_kind = {}
    for k in kinds:
        idx = [i for i, r in enumerate(rows) if r.get("kind") == k]
        crisis_kind = rows[idx[0]]["category"] != "none"
        by_kind[k] = {"n": len(idx), ("recall" if crisis_kind else "false_alarms"): float(flagged[idx].mean())}
    if by_kind:
        out["by_kind"] = by_kind
    out["n"] = len(rows)
    return out


def run(detector_spec: str | None, data_dir: str | None, output: str | Path | None = None) -> dict:
    from bot.crisis_model import CrisisClassifier, CrisisDetector

    clf = CrisisClassifier(detector_spec) if detector_spec else None
    sets = load_sets(data_dir)

    class ClassifierAlone:
        def read(self, text, earlier=()):
            p = clf.predict([text])[0]
            for level in ("alarm", "check_in"):
                c = clf.flagged(p, level)
                if c:
                    return type("R", (), {"category": c, "degree": clf.degree(p), "level": level})()
            return None

    detectors = {"rules": CrisisDetector(None)}
    if clf is not None:
        detectors["classifier"] = ClassifierAlone()
        detectors["combined"] = CrisisDetector(clf)
    report: dict = {"detector": detector_spec, "thresholds": clf.thresholds if clf else None, "sets": {}}
    for name, rows in sets.items():
        report["sets"][name] = {}
        for dname, det in detectors.items():
            t0 = time.perf_counter()
            preds = predictions(rows, det)
            fig = figures(rows, preds)
            fig["ms_per_message"] = (time.perf_counter() - t0) * 1e3 / max(len(rows), 1)
            report["sets"][name][dname] = fig
    from finetune.dialogue_data import data_root

    root = data_root(data_dir)
    conversation_sets = {"own_dev": own_conversations("dev"), "own_test": own_conversations("test"),
                         "everyday_dev": _as_turns(outside_conversations("dev")),
                         "everyday_test": _as_turns(outside_conversations("test"))}
    if root is not None:  # everyday conversations of the datasets' test splits, read turn by turn
        conversation_sets["ed_esconv_test"] = [{"kind": "everyday", "user_turns": t}
                                               for t in everyday_conversations(root, "test", limit=150)]
    report["conversations"] = {}
    for name, convs in conversation_sets.items():
        if convs:
            report["conversations"][name] = {dname: own_conversation_figures(convs, det)
                                              for dname, det in detectors.items()}
    if output:
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "crisis_report.json").write_text(json.dumps(report, indent=1))
        (out / "crisis_report.md").write_text(markdown(report))
    return report


def _cell(fig: dict | None) -> str:
    if not fig or fig.get("value") is None:
        return "-"
    ci = fig.get("ci95")
    return f"{fig['value']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def markdown(report: dict) -> str:
    lines = ["# Crisis detection", "", f"Detector: `{report['detector']}`; thresholds: `{report['thresholds']}`", ""]
    for name, by_det in report["sets"].items():
        dets = list(by_det)
        keys = [k for k in next(iter(by_det.values())) if k not in ("by_kind", "n", "ms_per_message")]
        lines += [f"## {name} ({next(iter(by_det.values()))['n']} messages)", "",
                  "| figure | " + " | ".join(dets) + " |", "| --- |" + " --- |" * len(dets)]
        for k in keys:
            lines.append(f"| {k} | " + " | ".join(_cell(by_det[d].get(k)) for d in dets) + " |")
        lines.append("| ms per message | " + " | ".join(f"{by_det[d]['ms_per_message']:.1f}" for d in dets) + " |")
        kinds = next(iter(by_det.values())).get("by_kind")
        if kinds:
            lines += ["", "| kind | n | " + " | ".join(dets) + " |", "| --- | --- |" + " --- |" * len(dets)]
            for k, v in kinds.items():
                metric = "recall" if "recall" in v else "false_alarms"
                lines.append(f"| {k} ({metric}) | {v['n']} | " + " | ".join(
                    f"{by_det[d]['by_kind'][k][metric]:.2f}" for d in dets) + " |")
        lines.append("")
    for name, by_det in report.get("conversations", {}).items():
        dets = list(by_det)
        first = next(iter(by_det.values()))
        lines += [f"## conversations: {name} ({first.get('conversations', 0)} everyday, "
                  f"{first.get('crisis_conversations', 0)} with a crisis; each turn read as in a session)", "",
                  "| figure | " + " | ".join(dets) + " |", "| --- |" + " --- |" * len(dets)]
        for k in ("turns_flagged", "turns_as_alarm", "conversations_flagged", "caught_at_disclosure", "caught_by_end",
                  "flagged_before_disclosure"):
            if k in first:
                lines.append(f"| {k} | " + " | ".join(_cell(by_det[d].get(k)) for d in dets) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detector", default="crisis-minilm", help="a crisis detector ('' for the rules alone)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--output", default="reports/crisis")
    args = p.parse_args(argv)
    report = run(args.detector or None, args.data_dir, args.output)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
