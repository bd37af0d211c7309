"""Classifier metrics and GoEmotions loading on tiny inputs with known answers."""

import os
from pathlib import Path

import numpy as np
import pytest

from bot.emotion import EKMAN_GROUPS, GOEMOTIONS_LABELS
from eval.classifier import (classifier_metrics, collapse, expected_calibration_error, group_probability_matrix,
                             tune_group_thresholds, tune_thresholds)
from finetune.goemotions import find_goemotions_dir, load_split

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "fixtures" / "goemotions"
DATA = os.environ.get("EMPATHETIC_BOT_DATA")
needs_data = pytest.mark.skipif(find_goemotions_dir(DATA) is None, reason="set EMPATHETIC_BOT_DATA to the datasets folder")


def test_perfect_and_empty_predictions():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    m = classifier_metrics(y, y.astype(float), ["a", "b"])
    assert m["macro_f1"] == 1.0 and m["micro_f1"] == 1.0 and m["ece"] == 0.0
    m = classifier_metrics(y, np.zeros((3, 2)), ["a", "b"])
    assert m["macro_f1"] == 0.0 and m["per_label"]["a"]["recall"] == 0.0 and m["per_label"]["a"]["support"] == 2


def test_macro_f1_known_value():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    p = np.array([[0.9, 0.1], [0.2, 0.1], [0.1, 0.8], [0.7, 0.9]])
    m = classifier_metrics(y, p, ["a", "b"], 0.5)
    # a: tp1 fp1 fn1 -> F1 0.5;  b: tp1 fp1 fn0 -> F1 2/3
    assert m["per_label"]["a"]["f1"] == pytest.approx(0.5)
    assert m["per_label"]["b"]["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert m["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))


def test_thresholds_are_tuned_per_label():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    p = np.array([[0.30, 0.9], [0.25, 0.8], [0.05, 0.95], [0.1, 0.85]])
    t = tune_thresholds(y, p)
    assert 0.10 < t[0] <= 0.25  # label a: everything above 0.1 and up to 0.25 separates perfectly
    assert 0.85 < t[1] <= 0.95


def test_ece_known_value():
    # all predictions 0.8 in one bin; half are right -> |0.5 - 0.8| = 0.3
    assert expected_calibration_error(np.array([[1], [0]]), np.array([[0.8], [0.8]])) == pytest.approx(0.3)


def test_collapse_to_groups():
    names = ["joy", "love", "anger", "neutral"]
    m = np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    out, groups = collapse(m, names, EKMAN_GROUPS)
    assert out[0, groups.index("joy")] and not out[0, groups.index("anger")]
    assert out[1, groups.index("anger")] and out[2, groups.index("neutral")]


def test_group_probability_rules():
    names = ["joy", "love", "anger", "annoyance", "neutral"]
    p = np.array([[0.2, 0.7, 0.1, 0.3, 0.05]])
    gp, groups = group_probability_matrix(p, names, EKMAN_GROUPS, "max")
    assert gp[0, groups.index("joy")] == pytest.approx(0.7) and gp[0, groups.index("anger")] == pytest.approx(0.3)
    assert gp[0, groups.index("disgust")] == 0.0  # no member among the labels
    gp, groups = group_probability_matrix(p, names, EKMAN_GROUPS)  # noisy-or: at least one member present
    assert gp[0, groups.index("joy")] == pytest.approx(1 - 0.8 * 0.3)
    assert gp[0, groups.index("anger")] == pytest.approx(1 - 0.9 * 0.7)
    assert gp[0, groups.index("neutral")] == pytest.approx(0.05) and gp[0, groups.index("disgust")] == 0.0
    with pytest.raises(ValueError, match="unknown group rule"):
        group_probability_matrix(p, names, EKMAN_GROUPS, "mean")


def test_dict_and_matrix_group_rules_agree():
    from bot.emotion import GROUP_RULES, SENTIMENT_GROUPS, group_probabilities

    rng = np.random.default_rng(0)
    row = rng.random(len(GOEMOTIONS_LABELS))
    reading = dict(zip(GOEMOTIONS_LABELS, row))
    for rule in GROUP_RULES:
        for groups in (EKMAN_GROUPS, SENTIMENT_GROUPS):
            gp, names = group_probability_matrix(row[None, :], list(GOEMOTIONS_LABELS), groups, rule)
            assert group_probabilities(reading, groups, rule) == pytest.approx(dict(zip(names, gp[0])), abs=1e-6)


def test_direct_group_decisions_use_group_thresholds():
    # anger group: annoyance alone is never sure (0.3 / 0.35) but always right; a label threshold of 0.5
    # misses it, a group threshold tuned on the group probability catches it
    names = ["anger", "annoyance", "joy"]
    y = np.array([[0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])
    p = np.array([[0.1, 0.3, 0.1], [0.1, 0.35, 0.1], [0.1, 0.1, 0.9], [0.1, 0.05, 0.8]])
    cuts = tune_group_thresholds(y, p, names, "max")
    assert cuts["rule"] == "max" and 0.1 < cuts["ekman"]["anger"] <= 0.3
    m = classifier_metrics(y, p, names, 0.5, cuts)
    assert m["ekman"]["per_label"]["anger"]["f1"] == 0.0
    assert m["ekman_direct"]["per_label"]["anger"]["f1"] == 1.0 and m["ekman_direct"]["per_label"]["joy"]["f1"] == 1.0
    assert "ekman_direct" not in classifier_metrics(y, p, names, 0.5)


def test_fixture_loads():
    s = load_split(FIXTURE, "train")
    assert s.label_names == list(GOEMOTIONS_LABELS) and len(s.texts) == 30
    assert s.labels.shape == (30, 28) and s.labels.sum(1).min() >= 1 and s.sha256


def test_missing_folder_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="no GoEmotions TSVs"):
        load_split(tmp_path, "train")


@needs_data
def test_real_goemotions_row_counts():
    for split, n in (("train", 43410), ("dev", 5426), ("test", 5427)):
        s = load_split(DATA, split)
        assert len(s.texts) == n and s.labels.shape == (n, 28)


@needs_data
def test_ekman_mapping_matches_the_published_ekman_relabelling():
    """Collapsing the 28 gold labels with our Ekman mapping reproduces the dataset's own ekman/ labels."""
    root = find_goemotions_dir(DATA).parent / "ekman"
    orig = load_split(DATA, "dev")
    ekman = load_split(root, "dev")
    mapped, groups = collapse(orig.labels, orig.label_names, EKMAN_GROUPS)
    ours = mapped[:, [groups.index(n) for n in ekman.label_names]]
    agreement = (ours == ekman.labels.astype(bool)).all(axis=1).mean()
    assert agreement > 0.99, agreement
