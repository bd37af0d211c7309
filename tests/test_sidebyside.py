"""The side-by-side sheet round-trips: written blind, filled in, read back into a win rate."""

import csv
import json

import pytest

from bot.cli import main
from eval.sidebyside import score, write_sheet


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
