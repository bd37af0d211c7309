"""The response ranker: selection metrics, and a short training run on a fixture that saves, reloads and
orders the true reply above others."""

import csv
import random

import numpy as np
import pytest

from eval.ranking import ranks, selection_figures, selection_sets

TOPICS = ["dog", "exam", "landlord", "storm", "job", "wedding", "car", "sister", "garden", "piano", "flight",
          "surgery", "concert", "puppy", "divorce", "marathon", "promotion", "burglary", "baby", "move"]


def _examples(n=40):
    return [{"context": f"Person: something happened with my {TOPICS[i % 20]} today ({i})", "reply": f"Tell me about the {TOPICS[i % 20]} {i}",
             "conv": f"c{i}"} for i in range(n)]


def test_an_oracle_ranks_first_and_a_constant_scorer_never_does():
    sets = selection_sets(_examples(), 10, 30, seed=1)
    truth = {(s["context"], s["candidates"][0]) for s in sets}
    oracle = lambda c, r: [float((x, y) in truth) for x, y in zip(c, r)]  # noqa: E731
    assert (ranks(sets, oracle, 10) == 1).all()
    assert (ranks(sets, lambda c, r: [0.0] * len(c), 10) == 10).all()  # ties count against the true reply
    fig = selection_figures(sets, oracle, samples=50)
    assert fig["recall@1/10"]["value"] == 1.0 and fig["mrr/10"]["value"] == 1.0 and fig["contexts"] == 30


def test_candidates_come_from_other_conversations_and_are_distinct():
    sets = selection_sets(_examples(), 100, 5)  # more than the split holds: capped, no endless draw
    for s in sets:
        assert len(s["candidates"]) == len(set(s["candidates"])) <= 39


def _write_ed(root, n=60):
    ed = root / "empatheticdialogues"
    (ed / "by_emotion_annotated").mkdir(parents=True)
    (ed / "splits_valid_test").mkdir()
    rng = random.Random(0)
    valid = []
    with open(ed / "by_emotion_annotated" / "sad.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Dialog_ID", "Type", "Actor", "Text"])
        for i in range(n):
            t = TOPICS[i % len(TOPICS)]
            cid = f"hit:{i}_conv:{i}"
            w.writerow([cid, "situation", "", f"about the {t}"])
            w.writerow([cid, "utterance", "speaker", f"I keep thinking about the {t}, it went badly {rng.random():.3f}"])
            w.writerow([cid, "utterance", "listener", f"Oh no, what happened with the {t}?"])
            if i % 5 == 0:
                valid.append(cid)
    for name, ids in (("fixed_valid.csv", valid), ("fixed_test.csv", [])):
        with open(ed / "splits_valid_test" / name, "w", newline="") as f:
            csv.writer(f).writerows([["conv_id"], *[[i] for i in ids]])


def test_a_short_training_run_saves_a_ranker_that_reloads_and_orders_true_replies_first(tmp_path):
    from bot.ranker import ResponseRanker
    from finetune.train_ranker import main

    _write_ed(tmp_path / "data")
    out = tmp_path / "ranker"
    assert main(["--data-dir", str(tmp_path / "data"), "--sources", "empatheticdialogues", "--output", str(out),
                 "--batch-size", "4", "--epochs", "1", "--eval-every", "5", "--dev-contexts", "8",
                 "--test-contexts", "8", "--threads", "2"]) == 0
    assert (out / "ranker.json").is_file() and (out / "adapter_model.safetensors").is_file()
    ranker = ResponseRanker(str(out))
    conv = [{"role": "user", "content": "I keep thinking about the piano, it went badly"}]
    scores = ranker.score(conv, ["Oh no, what happened with the piano?", "Oh no, what happened with the storm?",
                                 "Oh no, what happened with the marathon?"])
    assert np.argmax(scores) == 0
    import json
    summary = json.loads((out / "run_summary.json").read_text())
    assert {"ranker", "tfidf", "minilm_cosine"} <= set(summary["ed_valid"])


def test_a_folder_that_is_not_a_ranker_is_refused(tmp_path):
    from bot.errors import ModelNotFoundError
    from bot.ranker import ResponseRanker

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="ranker.json"):
        ResponseRanker(str(tmp_path))


def test_emotion_fit_prefers_replies_with_the_emotions_listeners_answer_with(tmp_path):
    from bot.ranker import ResponseRanker

    labels = ["grief", "joy", "caring"]
    ranker = ResponseRanker.__new__(ResponseRanker)  # the profile alone: no encoder needed for this check
    ranker.emotion_profile = {"labels": labels, "weight": 3.0,
                              "profile": [[0.1, 0.0, 0.9], [0.0, 0.9, 0.1], [0.2, 0.1, 0.7]]}
    fits = ranker.emotion_fit({"grief": 0.9, "joy": 0.0, "caring": 0.1},
                              [{"grief": 0.1, "joy": 0.0, "caring": 0.8}, {"grief": 0.0, "joy": 0.9, "caring": 0.0}])
    assert fits[0] > 0.9 > 0.2 > fits[1] and ranker.emotion_weight == 3.0
    ranker.emotion_profile = None
    assert ranker.emotion_fit({"grief": 1.0}, [{"grief": 1.0}]) == [] and ranker.emotion_weight == 0.0


def _write_valence_ed(root, n=48):
    """Conversations that differ in valence (good news / bad news about the same kinds of things),
    each answered in kind; every fifth conversation is validation."""
    ed = root / "empatheticdialogues"
    (ed / "by_emotion_annotated").mkdir(parents=True)
    (ed / "splits_valid_test").mkdir()
    valid = []
    for emotion, said, answer in (("sad", "I failed my {t} test today and I feel awful", "I'm so sorry about the {t}, that hurts."),
                                  ("joyful", "I passed my {t} test today and I am thrilled", "Congratulations on the {t}, well done!")):
        with open(ed / "by_emotion_annotated" / f"{emotion}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Dialog_ID", "Type", "Actor", "Text"])
            for i in range(n // 2):
                t = TOPICS[i % len(TOPICS)]
                cid = f"hit:{emotion}{i}_conv:{emotion}{i}"
                w.writerow([cid, "situation", "", said.format(t=t)])
                w.writerow([cid, "utterance", "speaker", said.format(t=t)])
                w.writerow([cid, "utterance", "listener", answer.format(t=t)])
                if i % 5 == 0:
                    valid.append(cid)
    for name, ids in (("fixed_valid.csv", valid), ("fixed_test.csv", [])):
        with open(ed / "splits_valid_test" / name, "w", newline="") as f:
            csv.writer(f).writerows([["conv_id"], *[[i] for i in ids]])


def test_the_cross_encoder_trains_as_a_correction_of_the_bi_encoder_and_reloads_with_it(tmp_path):
    """A short run on a fixture: the cross-encoder starts at zero (the ranker's scores unchanged), learns
    a correction, and is saved inside a copy of the ranker that reloads with it (the fit is the
    bi-encoder's plus the correction, and still prefers the reply in kind) and without it when asked."""
    import json

    import torch

    from bot.ranker import ResponseRanker, cross_scores
    from bot.retrieval import build_pool
    from finetune.train_cross_ranker import main, valence

    assert valence("empatheticdialogues", "devastated") == -1 and valence("empatheticdialogues", "proud") == 1
    assert valence("esconv", "anxiety") == -1 and valence("empatheticdialogues", "surprised") == 0
    _write_valence_ed(tmp_path / "data")
    bi = ResponseRanker()
    pool = build_pool(str(tmp_path / "data"), bi, tmp_path / "pool", progress=lambda *_: None)


    out = tmp_path / "ranker"
    assert main(["--data-dir", str(tmp_path / "data"), "--pool", str(pool), "--output", str(out), "--batch-size", "4",
                 "--opposite", "2", "--random-negatives", "1", "--lr", "2e-3", "--head-lr", "2e-2", "--eval-every", "4",
                 "--dev-contexts", "8", "--threads", "2", "--bf16", "false"]) == 0
    summary = json.loads((out / "cross" / "run_summary.json").read_text())
    assert summary["negatives"]["opposite"] > 0 and summary["steps"] >= 8
    before = summary["ed_valid"]["bi_encoder"]["random"]["recall@1/10"]["value"]
    assert summary["history"][0]["dev_random_recall@1/10"] == pytest.approx(before)  # starts as the bi-encoder
    ranker, plain = ResponseRanker(str(out)), ResponseRanker(str(out), cross=False)
    assert ranker.has_cross and not plain.has_cross
    conv = [{"role": "user", "content": "I failed my garden test today and I feel awful"}]
    good, bad = "I'm so sorry about the garden, that hurts.", "Congratulations on the garden, well done!"
    with torch.inference_mode():
        correction = cross_scores(ranker.cross_model, ranker.cross_tokenizer, ["Person: " + conv[0]["content"]] * 2,
                                  [good, bad])
    assert any(abs(c) > 1e-4 for c in correction)  # it learned something: no longer the zero it started as
    both, alone = ranker.score(conv, [good, bad]), plain.score(conv, [good, bad])
    assert both[0] > both[1] and both == pytest.approx([a + c for a, c in zip(alone, correction)], abs=1e-3)


def test_the_shipped_ranker_reads_a_bad_situation_that_voices_no_feeling():
    from bot.ranker import ResponseRanker

    ranker = ResponseRanker()
    assert ranker.situation_model and 0.5 <= ranker.situation_model["threshold"] < 1

    def bad(text):
        return ranker.bad_situation(ranker.context_vector([{"role": "user", "content": text}]))

    assert bad("we had to put our dog down this morning. 14 years. the house is so quiet")
    assert bad("I shouted at my son this morning because we were late. He cried all the way to school.")
    assert not bad("I passed my driving test today, first try!")
    assert not bad("We had our baby girl on Tuesday night! She's perfect.")


def test_a_situation_reader_beside_a_ranker_changes_neither_its_pool_key_nor_its_fast_copy(tmp_path):
    from bot.ranker import ResponseRanker
    import shutil

    from pathlib import Path

    import bot.ranker
    from bot.fast_encoder import copy_folder
    from bot.retrieval import ranker_key

    def shipped_ranker_dir():
        return Path(bot.ranker.__file__).parent / "models" / "empathy-ranker"

    folder = tmp_path / "r"
    shutil.copytree(shipped_ranker_dir(), folder, ignore=shutil.ignore_patterns("situation.json"))
    before = (ranker_key(ResponseRanker(str(folder), cache_dir="")), copy_folder("ranker", [folder], str(tmp_path)))
    shutil.copy(shipped_ranker_dir() / "situation.json", folder)
    ranker = ResponseRanker(str(folder), cache_dir="")
    assert ranker.situation_model is not None
    assert (ranker_key(ranker), copy_folder("ranker", [folder], str(tmp_path))) == before
