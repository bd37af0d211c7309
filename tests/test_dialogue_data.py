"""Supervised examples for the reply adapter: fixtures always, the real datasets where present."""

import json
import os
from pathlib import Path

import pytest

from finetune.dialogue_data import (find_sources, prepare, read_empathetic_dialogues, read_esconv, read_jsonl)
from fakes import KeywordClassifier

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "data" / "fixtures" / "conversations.jsonl"
DATA = os.environ.get("EMPATHETIC_BOT_DATA")
has = lambda name: bool(DATA) and (Path(DATA) / name).is_dir()  # noqa: E731


def test_jsonl_reader_skips_broken_lines():
    convs = list(read_jsonl(FIXTURE))
    assert len(convs) == 8  # two broken lines skipped
    assert {c.split for c in convs} == {"train", "valid"}
    assert all(m["role"] in ("user", "assistant") for c in convs for m in c.messages)


def test_examples_use_the_bot_templates_and_the_emotion_state(tmp_path):
    counts = prepare([read_jsonl(FIXTURE)], tmp_path, classifier=KeywordClassifier(), progress=False)
    assert counts.examples == {"jsonl/train": 9, "jsonl/valid": 2}
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    first = rows[0]
    assert first["messages"][0]["role"] == "system" and "You are Sol" in first["messages"][0]["content"]
    assert first["messages"][-1] == {"role": "user", "content": "I failed my driving test for the third time today."}
    assert first["reply"].startswith("Oh no, I'm sorry.")
    # the second reply of the same conversation sees the first exchange as history
    second = rows[1]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    cat = next(r for r in rows if "cat died" in r["messages"][-1]["content"])
    assert cat["guidance"] == "sadness" and "sadness" in cat["messages"][0]["content"]  # state -> guidance


def test_duplicates_are_kept_once(tmp_path):
    counts = prepare([read_jsonl(FIXTURE), read_jsonl(FIXTURE)], tmp_path, progress=False)
    assert counts.duplicates == 11 and sum(counts.examples.values()) == 11


def test_no_source_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("EMPATHETIC_BOT_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="give --data-dir"):
        find_sources(None, None)
    with pytest.raises(FileNotFoundError, match="no empatheticdialogues"):
        find_sources(str(tmp_path), None)


@pytest.mark.skipif(not has("empatheticdialogues"), reason="set EMPATHETIC_BOT_DATA to the datasets folder")
def test_real_empathetic_dialogues_splits():
    convs = list(read_empathetic_dialogues(Path(DATA) / "empatheticdialogues"))
    by_split = {}
    for c in convs:
        by_split[c.split] = by_split.get(c.split, 0) + 1
    # the official valid/test membership, less the two conversations missing from the annotated copy
    assert by_split["valid"] == 2769 and by_split["test"] == 2546 and by_split["train"] == 19541
    assert all("_comma_" not in m["content"] for c in convs[:2000] for m in c.messages)
    assert len({c.emotion for c in convs}) == 32


@pytest.mark.skipif(not has("esconv"), reason="set EMPATHETIC_BOT_DATA to the datasets folder")
def test_real_esconv_alternates_roles():
    convs = list(read_esconv(Path(DATA) / "esconv"))
    assert sum(c.split == "train" for c in convs) == 910 and sum(c.split == "valid" for c in convs) == 195
    for c in convs:
        assert all(a["role"] != b["role"] for a, b in zip(c.messages, c.messages[1:]))


def test_fraction_keeps_a_fixed_hashed_share_of_conversations(tmp_path):
    from finetune.dialogue_data import in_fraction

    ids = [f"conv-{i}" for i in range(2000)]
    kept = [i for i in ids if in_fraction(i, 0.25)]
    assert 400 < len(kept) < 600 and kept == [i for i in ids if in_fraction(i, 0.25)]
    assert all(in_fraction(i, 1.0) for i in ids[:50]) and not any(in_fraction(i, 0.0) for i in ids[:50])
    counts = prepare([read_jsonl(FIXTURE)], tmp_path, classifier=KeywordClassifier(), progress=False, fraction=0.0)
    assert counts.examples == {}


def test_gold_weight_moves_train_states_towards_the_dataset_label_and_leaves_valid_as_served(tmp_path):
    from finetune.dialogue_data import Conversation, with_gold

    assert with_gold({"sadness": 0.5, "neutral": 0.5}, "devastated", 0.6) == pytest.approx(
        {"sadness": 0.2, "neutral": 0.2, "grief": 0.6})
    assert with_gold({"joy": 0.9}, "no such label", 0.6) == {"joy": 0.9}  # the classifier alone
    assert with_gold({"joy": 0.9}, "Joyful", 0.0) == {"joy": 0.9}
    messages = [{"role": "user", "content": "My grandfather passed away"}, {"role": "assistant", "content": "I'm so sorry."}]
    convs = [Conversation("a", "ed", "train", messages, emotion="devastated"),
             Conversation("b", "ed", "valid", [dict(m, content=m["content"] + ".") for m in messages],
                          emotion="devastated")]  # (not a duplicate of the first)
    prepare([iter(convs)], tmp_path, classifier=KeywordClassifier(), progress=False, gold_weight=0.6)
    train = json.loads((tmp_path / "train.jsonl").read_text())
    valid = json.loads((tmp_path / "valid.jsonl").read_text())
    assert train["emotion_state"].startswith("grief 60%") and train["guidance"] == "grief"
    assert "grief" in train["messages"][0]["content"]
    assert "grief" not in valid["emotion_state"]  # validation keeps what the bot will see
