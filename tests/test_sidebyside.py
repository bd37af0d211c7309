"""The side-by-side sheet round-trips: written blind, filled in, read back into a win rate."""

import csv
import json

import pytest

from bot.cli import main
from eval.sidebyside import play, score, write_sheet


def _run(path, prefix):
    with open(path, "w") as f:
        for i in range(12):
            f.write(json.dumps({"id": f"c{i}", "context": [{"role": "user", "content": f"message {i}"}],
                                "response": f"{prefix} reply {i}"}) + "\n")


def test_sheet_is_blind_and_scores_back(tmp_path):
    _run(tmp_path / "a.jsonl", "old")
    _run(tmp_path / "b.jsonl", "new")
    assert main(["eval", "sidebyside", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"),
                 "--output", str(tmp_path / "sheet")]) == 0
    sheet = (tmp_path / "sheet" / "sheet.html").read_text()
    assert sheet.count('class="card"') == 12 and "a.jsonl" not in sheet and "b.jsonl" not in sheet
    key = json.loads((tmp_path / "sheet" / "key.json").read_text())
    assert {c["reply_1"] for c in key["cards"].values()} == {"A", "B"}  # the order is drawn per card
    # a rater who always prefers the "new" reply, and rates it 4 and the other 1
    md = (tmp_path / "sheet" / "sheet.md").read_text()
    rows = []
    for card in range(1, 13):
        block = md.split(f"## Card {card}\n")[1].split("## Card")[0]
        first_new = "Reply 1: new" in block
        rows.append([card, "1" if first_new else "2", "4" if first_new else "1", "1" if first_new else "4"])
    rows[0][1] = "tie"
    with open(tmp_path / "sheet" / "choices.csv", "w", newline="") as f:
        csv.writer(f).writerows([["card", "choice", "rating_1", "rating_2"], *rows])
    result = score(tmp_path / "sheet")
    assert result["cards"] == 12 and result["b_wins"] == 11 and result["ties"] == 1
    assert result["b_win_rate"]["value"] == pytest.approx(11.5 / 12)
    assert result["rating_B"]["value"] == 4 and result["hurtful_A"] == 1.0 and result["acceptable_B"] == 1.0


def test_an_unfilled_sheet_says_so(tmp_path):
    _run(tmp_path / "a.jsonl", "old")
    _run(tmp_path / "b.jsonl", "new")
    write_sheet(tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "s")
    with pytest.raises(ValueError, match="no filled-in choices"):
        score(tmp_path / "s")


def test_identical_replies_can_be_left_off_the_sheet_and_count_as_ties(tmp_path):
    _run(tmp_path / "a.jsonl", "old")
    rows = [json.loads(line) for line in open(tmp_path / "a.jsonl")]
    for r in rows[:4]:
        r["response"] = r["response"].replace("old", "new")  # four replies differ, eight are the same
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert write_sheet(tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "s", skip_identical=True) == 4
    md = (tmp_path / "s" / "sheet.md").read_text()
    choices = [[card, "1" if "Reply 1: new" in md.split(f"## Card {card}\n")[1].split("## Card")[0] else "2", "", ""]
               for card in range(1, 5)]  # the new reply wins every card shown
    with open(tmp_path / "s" / "choices.csv", "w", newline="") as f:
        csv.writer(f).writerows([["card", "choice", "rating_1", "rating_2"], *choices])
    result = score(tmp_path / "s")
    assert result["b_win_rate"]["value"] == 1.0 and result["identical_left_out"] == 8
    assert result["b_win_rate_with_identical"]["value"] == pytest.approx((4 + 8 * 0.5) / 12)


def test_scripted_conversations_are_played_in_sessions_and_rated_one_reply_a_card(tmp_path):
    from fakes import FakeReplyModel, KeywordClassifier

    from bot import BotConfig, EmpatheticBot

    (tmp_path / "convs.jsonl").write_text(
        json.dumps({"id": "x1", "kind": "work", "turns": ["My boss shouted at me today.", "He does it every week."]})
        + "\n" + json.dumps({"id": "x2", "turns": ["I passed my driving test!"]}) + "\n")
    config = BotConfig()
    config.model.emotion_classifier = None
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(["That sounds awful.", "Every week? That's a lot.",
                                                                  "Congratulations!"]),
                        emotion_classifier=KeywordClassifier())

    assert play(bot, tmp_path / "convs.jsonl", tmp_path / "run.jsonl") == 3
    rows = [json.loads(line) for line in open(tmp_path / "run.jsonl")]
    assert [r["id"] for r in rows] == ["x1#1", "x1#2", "x2#1"]
    # the second turn's context holds the bot's own first reply, and the sessions were reset after
    assert rows[1]["context"] == [{"role": "user", "content": "My boss shouted at me today."},
                                  {"role": "assistant", "content": rows[0]["response"]},
                                  {"role": "user", "content": "He does it every week."}]
    assert rows[0]["kind"] == "work" and bot.sessions() == []

    assert main(["eval", "sidebyside", str(tmp_path / "run.jsonl"), "--output", str(tmp_path / "rate")]) == 0
    md = (tmp_path / "rate" / "sheet.md").read_text()
    assert md.count("## Card") == 3 and "Reply 1" not in md and "run.jsonl" not in md
    key = json.loads((tmp_path / "rate" / "key.json").read_text())
    # rate the driving-test reply 1 (hurtful), the others 4
    rows = [[n, "1" if card["id"] == "x2#1" else "4", "note"] for n, card in key["cards"].items()]
    with open(tmp_path / "rate" / "choices.csv", "w", newline="") as f:
        csv.writer(f).writerows([["card", "rating", "note"], *rows])
    result = score(tmp_path / "rate")
    assert result["cards"] == 3 and result["hurtful"] == pytest.approx(1 / 3)
    assert result["acceptable"] == pytest.approx(2 / 3) and result["hurtful_ids"] == ["x2#1"]
    assert result["rating"]["value"] == pytest.approx(3.0)
