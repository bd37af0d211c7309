"""A tiny datasets folder in the layout of ../shared/data, written by the tests that need one."""

from __future__ import annotations

import csv
import json
from pathlib import Path

ED_DIALOGS = [
    ("hit:1_conv:1", "sad", "My dog died last week.",
     [("speaker", "My dog died last week and the house feels empty."),
      ("listener", "I'm so sorry. Losing a dog is like losing family. How are you holding up?"),
      ("speaker", "Not great. I keep expecting him at the door."),
      ("listener", "That sounds so painful. You could try writing him a letter.")]),
    ("hit:2_conv:3", "furious", "My landlord kept my deposit.",
     [("speaker", "My landlord kept my whole deposit for no reason!"),
      ("listener", "That's so unfair, no wonder you're angry. Did he give any explanation?")]),
    ("hit:3_conv:5", "afraid", "A storm is coming.",
     [("speaker", "A huge storm is coming tonight and I'm scared of the trees falling."),
      ("listener", "That sounds frightening. Is there somewhere safer you can stay?")]),
    ("hit:4_conv:7", "joyful", "I got the job.",
     [("speaker", "I got the job I wanted, I'm so happy!"),
      ("listener", "Congratulations! You must be thrilled. What will you do first?")]),
    ("hit:5_conv:9", "nostalgic", "Old photos.",
     [("speaker", "I found old photos of my grandparents today."),
      ("listener", "What a lovely find. What memories came back?")]),
]


def write_empatheticdialogues(root: Path) -> None:
    ed = root / "empatheticdialogues"
    (ed / "by_emotion_annotated").mkdir(parents=True)
    (ed / "splits_valid_test").mkdir()
    by_label: dict[str, list] = {}
    for conv_id, label, situation, turns in ED_DIALOGS:
        by_label.setdefault(label, []).append((conv_id, situation, turns))
    for label, convs in by_label.items():
        with open(ed / "by_emotion_annotated" / f"{label}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Dialog_ID", "Type", "Actor", "Text"])
            for conv_id, situation, turns in convs:
                w.writerow([conv_id, "situation", "", situation])
                for actor, text in turns:
                    w.writerow([conv_id, "utterance", actor, text.replace(",", "_comma_")])
    for name, ids in (("fixed_valid.csv", []), ("fixed_test.csv", [d[0] for d in ED_DIALOGS])):
        with open(ed / "splits_valid_test" / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["conv_id"])
            w.writerows([[i] for i in ids])


EPITOME_RESPONSES = [
    ("I'm so sorry you're going through this, that sounds heartbreaking.", (2, 0, 0)),
    ("It sounds like you feel abandoned by everyone around you.", (0, 2, 0)),
    ("What happened after you told your family?", (0, 0, 2)),
    ("Just get over it.", (0, 0, 0)),
    ("That is awful. I understand feeling like nothing matters. What has helped before?", (1, 2, 2)),
    ("lol same", (0, 0, 0)),
]


def write_epitome(root: Path, copies: int = 6) -> None:
    folder = root / "epitome"
    folder.mkdir(parents=True)
    files = ("emotional-reactions-reddit.csv", "interpretations-reddit.csv", "explorations-reddit.csv")
    writers = [csv.writer(open(folder / f, "w", newline="")) for f in files]  # noqa: SIM115
    for w in writers:
        w.writerow(["sp_id", "rp_id", "seeker_post", "response_post", "level", "rationales"])
    for k in range(copies):
        for j, (text, levels) in enumerate(EPITOME_RESPONSES):
            sp, rp = f"sp{k}x{j}", f"rp{k}x{j}"
            for w, level in zip(writers, levels):
                w.writerow([sp, rp, f"I feel so alone lately, post {k}", text, level, ""])


def write_esconv(root: Path) -> None:
    folder = root / "esconv"
    folder.mkdir(parents=True)
    dialog = [{"speaker": "usr", "text": "I lost my job."},
              {"speaker": "sys", "text": "That sounds really hard.", "strategy": "Reflection of feelings"},
              {"speaker": "usr", "text": "I don't know what to do."},
              {"speaker": "sys", "text": "You could try updating your CV this week.", "strategy": "Providing Suggestions"},
              {"speaker": "sys", "text": "What kind of work do you enjoy?", "strategy": "Question"}]
    for split in ("train", "valid"):
        (folder / f"{split}.txt").write_text(json.dumps({"emotion_type": "sadness", "dialog": dialog}) + "\n")


def write_all(root: Path) -> Path:
    write_empatheticdialogues(root)
    write_epitome(root)
    write_esconv(root)
    return root
