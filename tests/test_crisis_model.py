"""The learned crisis detector: a short training run on a fixture, and the shipped detector's figures."""

import csv
import json
import os
from pathlib import Path

import pytest

from bot.crisis_model import SHIPPED_DETECTOR, CrisisDetector, shipped_detector_dir

SHIPPED = (shipped_detector_dir() / "classifier.json").is_file()


def _write_research_sets(root: Path):
    tw = root / "crisis" / "twitter_suicidal"
    tw.mkdir(parents=True)
    with open(tw / "twitter-suicidal_data.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tweet", "intention"])
        for i in range(30):
            w.writerow([f"i cant do this anymore i want to die {i}", 1])
            w.writerow([f"this homework is killing me lol {i}", 0])
    sd = root / "crisis" / "sdcnl"
    sd.mkdir(parents=True)
    for name in ("training-set.csv", "testing-set.csv"):
        with open(sd / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["title", "selftext", "is_suicide"])
            for i in range(10):
                w.writerow(["goodbye", f"I have decided to end my life tonight {i}", 1])
                w.writerow(["tired", f"I feel low and flat most days {i}", 0])


def test_a_short_training_run_saves_a_detector_the_bot_loads(tmp_path):
    from bot.crisis_model import CrisisClassifier
    from finetune.train_crisis import LABELS, main

    _write_research_sets(tmp_path / "data")
    out = tmp_path / "crisis"
    assert main(["--data-dir", str(tmp_path / "data"), "--output", str(out), "--epochs", "1", "--own-repeat", "1",
                 "--negatives", "0", "--threads", "2"]) == 0
    thresholds = json.loads((out / "thresholds.json").read_text())
    assert set(thresholds) == {*LABELS, "check_in"} and all(0 < t < 1 for k, t in thresholds.items() if k != "check_in")
    assert set(thresholds["check_in"]) == set(LABELS[:4])
    clf = CrisisClassifier(str(out))
    probs = clf.predict(["I want to kill myself tonight", "what a lovely day"])
    assert set(probs[0]) == set(LABELS) and all(0 <= p <= 1 for p in probs[0].values())
    reading = CrisisDetector(clf).read("I want to kill myself")  # the rules are the floor whatever the model says
    assert reading.category == "self_harm" and reading.source == "rules"


def test_rules_alone_still_work_without_a_classifier():
    det = CrisisDetector(None)
    assert det.read("I want to kill myself").category == "self_harm"
    assert det.read("what a lovely day") is None
    assert det.harmful_replies(["anything"]) == [False]


@pytest.mark.parametrize("text, earlier, flagged", [
    ("he had a heart attack at work. no warning, he was 61. i didn't get to say anything to him",
     ["my dad died three weeks ago and everyone has gone back to normal"], False),
    ("my dad had a heart attack and died last year", [], False),
    ("my dad had a heart attack and died last year", ["my mum is having chest pains right now"], False),
    ("my dad is having a heart attack", [], True),
    ("he had a heart attack, he's in the hospital now", ["my grandad died when I was ten"], True),
    ("my husband just collapsed, I think he had a heart attack, he isn't breathing", ["my mum died last year"], True),
    ("my mum just collapsed and she's not breathing", ["my dad passed away last year"], True),
    ("my wife is unconscious on the floor", ["my dad passed away last year"], True),
    ("I took a whole bottle of pills an hour ago", ["my dad passed away last year"], True),
    ("I overdosed on my meds", ["my dad passed away last year, the funeral was awful"], True),
    ("she had a stroke an hour ago", ["my grandad died in march"], True),
])
def test_a_death_told_is_not_a_medical_emergency_unless_something_is_happening_now(text, earlier, flagged):
    reading = CrisisDetector(None).read(text, earlier)
    assert (reading is not None and reading.category == "medical_emergency") is flagged


@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED:
        pytest.skip("the shipped crisis detector is not built")
    from bot.crisis_model import CrisisClassifier

    return CrisisDetector(CrisisClassifier(SHIPPED_DETECTOR))


@pytest.mark.parametrize("text, category", [
    ("I've written notes for everyone and I've decided on Saturday", "self_harm"),
    ("I'm so tired, I wish I could just not wake up tomorrow", "self_harm"),
    ("I've been saving up my pills for weeks now", "self_harm"),
    ("nobody would even notice if I was gone", "self_harm"),
    ("my uncle makes me keep secrets about what he does to me when mom is at work", "abuse"),
    ("I'm going to make him pay for what he did, I know where he lives and I have a gun", "harm_to_others"),
])
def test_the_shipped_detector_catches_what_the_rules_missed(shipped, text, category):
    reading = shipped.read(text)
    assert reading is not None and reading.category == category


@pytest.mark.parametrize("text", [
    "This exam is killing me, I swear.",
    "My friend told me she wants to die. How can I help her?",
    "I'm a nurse and we lost a patient to an overdose on my shift.",
    "I felt suicidal years ago, but I'm in a good place now.",
    "I got a promotion today!",
])
def test_the_shipped_detector_raises_no_alarm_for_look_alikes(shipped, text):
    reading = shipped.read(text)  # at most a direct question ("are you having thoughts of...?")
    assert reading is None or reading.level == "check_in"


@pytest.mark.parametrize("name", ["heldout", "heldout3", "heldout5", "heldout6"])
def test_the_shipped_detector_reproduces_its_reported_heldout_figures(shipped, name):
    from eval.crisis_suite import figures, load_sets, predictions

    card = json.loads((shipped_detector_dir() / "run_summary.json").read_text())["report"]["sets"][name]["combined"]
    rows = load_sets(None)[name]
    fig = figures(rows, predictions(rows, shipped))
    assert fig["recall"]["value"] == pytest.approx(card["recall"]["value"], abs=1e-9)
    assert fig["false_alarms"]["value"] == pytest.approx(card["false_alarms"]["value"], abs=1e-9)
    assert fig["recall_as_alarm"]["value"] == pytest.approx(card["recall_as_alarm"]["value"], abs=1e-9)


def test_the_shipped_detector_reproduces_the_seventh_heldout_reading_in_the_docs(shipped):
    """docs/crisis.md, "The sixth round": the seventh set was read after the shipped detector's card was
    written, so its figures live in the docs (136 of 150 crises flagged, 115 as an alarm, 10 of 150
    messages that are no crisis asked about, none as an alarm)."""
    from eval.crisis_suite import figures, load_sets, predictions

    rows = load_sets(None)["heldout7"]
    fig = figures(rows, predictions(rows, shipped))
    assert round(fig["recall"]["value"] * 150) == 136 and round(fig["recall_as_alarm"]["value"] * 150) == 115
    assert round(fig["false_alarms"]["value"] * 150) == 10 and fig["false_alarms_as_alarm"]["value"] == 0.0


@pytest.mark.skipif(not os.environ.get("EMPATHETIC_BOT_DATA"), reason="set EMPATHETIC_BOT_DATA to the datasets folder")
def test_the_shipped_detector_reproduces_its_research_set_figures(shipped):
    from eval.crisis_suite import figures, load_sets, predictions

    card = json.loads((shipped_detector_dir() / "run_summary.json").read_text())["report"]["sets"]
    sets = load_sets(os.environ["EMPATHETIC_BOT_DATA"])
    for name in ("twitter_test", "sdcnl_test"):
        fig = figures(sets[name], predictions(sets[name], shipped))
        assert fig["recall"]["value"] == pytest.approx(card[name]["combined"]["recall"]["value"], abs=1e-9)


@pytest.mark.parametrize("text", [
    "My instructor says I panic at roundabouts, and everyone else I know passed first time.",
    "I'll try to sleep early tonight.",
    "My partner says I'm overthinking it.",
    "My sister didn't invite me to her wedding and I only found out from a cousin.",
])
def test_everyday_messages_that_were_false_alarms_are_left_alone(shipped, text):
    assert shipped.read(text) is None


def test_everyday_conversations_are_read_turn_by_turn_with_few_questions(shipped):
    from bot.benchmark import CONVERSATION
    from bot.loadtest import CONVERSATIONS

    flagged = [t for conv in (*CONVERSATIONS, CONVERSATION) for i, t in enumerate(conv) if shipped.read(t, conv[:i])]
    # 23 turns of everyday trouble: the first learned detector asked about 10 of them, the second round 4,
    # this one 5 ("how quiet the house would be without her", "terrified I'll mess it up", ...: the list
    # is in docs/crisis.md, Known false alarms)
    assert len(flagged) <= 5, flagged


def test_the_shipped_detector_reproduces_its_reported_second_heldout_and_conversation_figures(shipped):
    from eval.crisis_suite import figures, load_sets, own_conversation_figures, own_conversations, predictions

    report = json.loads((shipped_detector_dir() / "run_summary.json").read_text())["report"]
    rows = load_sets(None)["heldout2"]
    fig = figures(rows, predictions(rows, shipped))
    assert fig["recall"]["value"] == pytest.approx(report["sets"]["heldout2"]["combined"]["recall"]["value"], abs=1e-9)
    conv = own_conversation_figures(own_conversations("test"), shipped)
    card = report["conversations"]["own_test"]["combined"]
    assert conv["turns_flagged"]["value"] == pytest.approx(card["turns_flagged"]["value"], abs=1e-9)
    assert conv["caught_at_disclosure"]["value"] == pytest.approx(card["caught_at_disclosure"]["value"], abs=1e-9)


@pytest.mark.parametrize("text", ["привет", "こんにちは", "नमस्ते", "ciao Sol", "hey"])
def test_a_hello_in_any_script_is_never_read_as_danger(shipped, text):
    assert shipped.read(text) is None
    assert shipped.read("hi, I want to die") is not None  # a greeting with a disclosure still is
