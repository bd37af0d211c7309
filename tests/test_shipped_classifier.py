"""The emotion classifier shipped with the package: size, obvious cases, the pipeline, its reported figures."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bot.emotion import LABEL_TO_EKMAN, EmotionClassifier
from bot.resolve import shipped_classifier_dir
from finetune.goemotions import find_goemotions_dir

ROOT = Path(__file__).resolve().parent.parent
DATA = os.environ.get("EMPATHETIC_BOT_DATA")


@pytest.fixture(scope="module")
def clf():
    return EmotionClassifier("goemotions-minilm")


def test_artifact_is_small_and_documented():
    folder = shipped_classifier_dir()
    weights = sum(f.stat().st_size for f in folder.rglob("*.safetensors"))  # an ensemble: one per member folder
    assert 0 < weights <= 50 * 2**20
    card = (folder / "README.md").read_text()
    assert "macro-F1" in card and "Apache-2.0" in card and "thresholds" in card
    assert json.loads((folder / "thresholds.json").read_text()).keys() >= {"joy", "grief", "neutral"}


def test_obvious_sentences_land_in_the_right_ekman_group(clf):
    rows = [line.split("\t") for line in (ROOT / "data" / "emotion_obvious.tsv").read_text().splitlines()
            if line and not line.startswith("#")]
    right = []
    for text, group in rows:
        probs = clf.predict([text])[0]
        top = max(probs, key=probs.get)
        right.append(LABEL_TO_EKMAN[top] == group.strip())
    wrong = [r[0] for r, ok in zip(rows, right) if not ok]
    assert np.mean(right) >= 0.8, wrong


def test_transformers_pipeline_loads_it(clf, tmp_path):
    from transformers import pipeline

    from finetune.export_classifier import export

    folder = shipped_classifier_dir()
    if not (folder / "config.json").is_file():  # an adapter: the export is what pipeline reads
        folder = export("goemotions-minilm", str(tmp_path / "export"))
    pipe = pipeline("text-classification", model=str(folder), trust_remote_code=True, top_k=None,
                    dtype="float32")  # the figures are for float32 compute
    text = "I'm so grateful for your help, thank you!"
    scores = {d["label"]: d["score"] for d in pipe([text])[0]}
    ours = clf.predict([text])[0]
    assert max(scores, key=scores.get) == max(ours, key=ours.get) == "gratitude"
    assert max(abs(scores[k] - ours[k]) for k in ours) < 1e-6


@pytest.mark.slow
@pytest.mark.skipif(find_goemotions_dir(DATA) is None, reason="set EMPATHETIC_BOT_DATA to the datasets folder")
def test_eval_suite_reproduces_the_reported_test_figures(tmp_path):
    """The classifier suite, on the real GoEmotions test set, gives the figures in run_summary.json."""
    from eval.classifier_suite import run

    report = run("goemotions-minilm", DATA, str(tmp_path), latency_samples=20)
    shipped = json.loads((shipped_classifier_dir() / "run_summary.json").read_text())["metrics"]["test_tuned"]
    assert report["tuned_thresholds"]["macro_f1"] == pytest.approx(shipped["macro_f1"], abs=0.002)
    assert report["tuned_thresholds"]["ekman"]["macro_f1"] == pytest.approx(shipped["ekman"]["macro_f1"], abs=0.002)
    if "ekman_direct" in shipped:
        assert report["tuned_thresholds"]["ekman_direct"]["macro_f1"] == pytest.approx(
            shipped["ekman_direct"]["macro_f1"], abs=0.002)
    assert report["tuned_thresholds"]["macro_f1"] >= 0.46  # at least BERT-base's published 0.46
    assert (tmp_path / "classifier.md").is_file() and (tmp_path / "per_label_f1.png").is_file()


def test_explanation_names_words_without_their_punctuation(clf):
    why = clf.explain("I'm so angry, my landlord kept my deposit!", labels=["anger"])
    words = [w for w, _ in why["anger"]]
    assert words[0] == "angry" and not any(w[-1] in ",.!?" for w in words), why
