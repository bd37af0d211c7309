"""Training the emotion classifier end to end on a tiny fixture, on CPU."""

import json
from pathlib import Path

import numpy as np
import pytest

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "fixtures" / "goemotions"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from finetune.train_classifier import TrainConfig, train

    out = tmp_path_factory.mktemp("clf")
    cfg = TrainConfig(data_dir=str(FIXTURE), output=str(out), epochs=4, lr=1e-3, batch_size=8, warmup=0.0,
                      max_length=32, threads=2, group_loss_weight=0.5)
    return out, train(cfg)


def test_loss_goes_down(trained):
    _, summary = trained
    h = summary["history"]
    assert h[-1]["last_loss"] < h[0]["first_loss"] * 0.8


def test_artifact_files_and_summary(trained):
    out, summary = trained
    for name in ("config.json", "model.safetensors", "tokenizer.json", "thresholds.json", "group_thresholds.json",
                 "run_summary.json", "emotion_model.py", "per_label_f1.png"):
        assert (out / name).is_file(), name
    assert summary["data_files"]["train"][1] and summary["best"]["epoch"] >= 1
    assert set(summary["metrics"]) == {"dev", "test_tuned", "test_at_0.5"}
    assert json.loads((out / "config.json").read_text())["architectures"] == [
        "BertMeanPoolForSequenceClassification"]


def test_reload_gives_the_reported_predictions(trained):
    """The saved artifact, reloaded, reproduces the dev figures the trainer computed in memory."""
    from bot.emotion import EmotionClassifier
    from eval.classifier import classifier_metrics
    from eval.classifier_suite import classifier_probabilities
    from finetune.goemotions import load_split

    out, summary = trained
    clf = EmotionClassifier(str(out))
    dev = load_split(FIXTURE, "dev")
    probs = classifier_probabilities(clf, dev.texts, dev.label_names)
    thresholds = np.array([clf.thresholds[n] for n in dev.label_names])
    assert set(clf.group_thresholds) == {"rule", "ekman", "sentiment"}
    again = classifier_metrics(dev.labels, probs, dev.label_names, thresholds, clf.group_thresholds)
    assert again["macro_f1"] == pytest.approx(summary["metrics"]["dev"]["macro_f1"], abs=1e-9)
    assert again["ekman_direct"]["macro_f1"] == pytest.approx(summary["metrics"]["dev"]["ekman_direct"]["macro_f1"], abs=1e-9)
    reading = clf.predict([dev.texts[0]])[0]
    assert clf.group_rule == summary["config"]["group_rule"] == "noisy-or"
    joy = ("joy", "love", "gratitude", "amusement", "approval", "excitement", "optimism", "relief", "pride",
           "admiration", "desire", "caring")
    assert clf.groups(reading)["joy"] == pytest.approx(1 - np.prod([1 - reading[n] for n in joy]), abs=1e-6)
    assert set(clf.detected_groups(reading)) <= set(clf.group_thresholds["ekman"])
    reported = summary["metrics"]["dev"]["per_label"]
    for label, m in again["per_label"].items():
        assert (m["precision"], m["recall"], m["f1"]) == pytest.approx(
            (reported[label]["precision"], reported[label]["recall"], reported[label]["f1"]), abs=1e-9), label


def test_pipeline_loads_the_artifact_with_the_same_probabilities(trained):
    from transformers import pipeline

    from bot.emotion import EmotionClassifier

    out, _ = trained
    text = "I am so happy and thankful today"
    pipe = pipeline("text-classification", model=str(out), trust_remote_code=True, top_k=None,
                    dtype="float32")  # the weights are stored in float16; the figures are for float32 compute
    from_pipe = {d["label"]: d["score"] for d in pipe([text])[0]}
    ours = EmotionClassifier(str(out)).predict([text])[0]
    assert from_pipe.keys() == ours.keys()
    assert max(abs(from_pipe[k] - ours[k]) for k in ours) < 1e-6


def test_group_loss_is_bce_on_the_smooth_any_of_a_groups_labels():
    import math

    import torch

    from finetune.train_classifier import group_loss

    assert group_loss(["joy", "anger"], 0.0) is None
    loss = group_loss(["joy", "love", "anger"], 2.0)  # groups present: joy (joy, love) and anger (anger)
    logits = torch.tensor([[0.0, math.log(3.0), -1.0]])
    target = torch.tensor([[0.0, 1.0, 0.0]])
    joy_logit = math.log(1.0 + 3.0)  # logsumexp(0, log 3)
    expected = 2.0 * (-math.log(1 / (1 + math.exp(-joy_logit))) - math.log(1 - 1 / (1 + math.exp(1.0)))) / 2
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def trained_lora(tmp_path_factory):
    from finetune.train_classifier import TrainConfig, train

    out = tmp_path_factory.mktemp("clf-lora")
    cfg = TrainConfig(data_dir=str(FIXTURE), output=str(out), epochs=3, lr=3e-3, batch_size=8, warmup=0.0,
                      max_length=32, threads=2, lora_r=4, lora_alpha=8)
    return out, train(cfg)


def test_lora_run_saves_the_adapter_form_and_reloads_to_the_reported_figures(trained_lora):
    from bot.emotion import EmotionClassifier
    from eval.classifier import classifier_metrics
    from eval.classifier_suite import classifier_probabilities
    from finetune.goemotions import load_split

    out, summary = trained_lora
    assert summary["history"][-1]["last_loss"] < summary["history"][0]["first_loss"]
    assert not (out / "model.safetensors").exists() and (out / "adapter_model.safetensors").is_file()
    meta = json.loads((out / "classifier.json").read_text())
    assert meta["encoder"] == "all-minilm-l6-v2" and len(meta["labels"]) == 28
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "all-minilm-l6-v2"
    assert summary["form"] == "lora-adapter" and summary["artifact_bytes"] < 5 * 2**20
    clf = EmotionClassifier(str(out))
    dev = load_split(FIXTURE, "dev")
    probs = classifier_probabilities(clf, dev.texts, dev.label_names)
    again = classifier_metrics(dev.labels, probs, dev.label_names,
                               np.array([clf.thresholds[n] for n in dev.label_names]), clf.group_thresholds)
    reported = summary["metrics"]["dev"]
    assert again["macro_f1"] == pytest.approx(reported["macro_f1"], abs=1e-9)
    assert again["ekman_direct"]["macro_f1"] == pytest.approx(reported["ekman_direct"]["macro_f1"], abs=1e-9)


def test_export_makes_a_folder_the_pipeline_loads_with_the_same_probabilities(trained_lora, tmp_path):
    from transformers import pipeline

    from bot.emotion import EmotionClassifier
    from finetune.export_classifier import main

    out, _ = trained_lora
    assert main([str(out), str(tmp_path / "export")]) == 0
    assert (tmp_path / "export" / "emotion_model.py").is_file() and (tmp_path / "export" / "thresholds.json").is_file()
    text = "I am so happy and thankful today"
    pipe = pipeline("text-classification", model=str(tmp_path / "export"), trust_remote_code=True, top_k=None,
                    dtype="float32")
    from_pipe = {d["label"]: d["score"] for d in pipe([text])[0]}
    ours = EmotionClassifier(str(out)).predict([text])[0]
    assert from_pipe.keys() == ours.keys()
    assert max(abs(from_pipe[k] - ours[k]) for k in ours) < 1e-5


def test_model_card_describes_the_adapter_and_compares_runs(trained, trained_lora):
    from finetune.model_card import main

    full, _ = trained
    lora, summary = trained_lora
    assert main([str(lora), "--compare", f"full={full / 'run_summary.json'}"]) == 0
    card = (lora / "README.md").read_text()
    assert "adapted with LoRA (rank 4" in card and "finetune.export_classifier" in card
    assert f"| {summary['metrics']['test_tuned']['macro_f1']:.3f} |" in card
    table = card[card.index("## Compared runs"):card.index("## License")]
    assert "| this classifier | LoRA r4 |" in table
    assert "| full | full fine-tuning (float16) + Ekman-group loss 0.5 |" in table
    assert "Same for every run: data files, seed, batch size, max length, device." in table
    assert "macro-F1, Ekman groups (each group's probability, noisy-or: 1 - prod(1 - p)" in card


def test_ensemble_of_two_runs_reads_their_mean_and_reloads_to_the_reported_figures(trained, trained_lora, tmp_path):
    from bot.emotion import EmotionClassifier
    from eval.classifier import classifier_metrics
    from eval.classifier_suite import classifier_probabilities
    from finetune.ensemble_classifier import build
    from finetune.goemotions import load_split

    full, lora = trained[0], trained_lora[0]
    out = tmp_path / "ensemble"
    summary = build(str(out), [str(full), str(lora)], str(FIXTURE), latency_samples=3)
    meta = json.loads((out / "classifier.json").read_text())
    assert meta["form"] == "ensemble" and meta["members"] == [full.name, lora.name]
    assert (out / lora.name / "adapter_model.safetensors").is_file() and (out / full.name / "model.safetensors").is_file()
    assert set(summary["members"]) == {full.name, lora.name} and summary["latency"]["samples"] == 3
    assert summary["max_member_mean_difference"] < 1e-5
    text = "I am so happy and thankful today"
    members = [EmotionClassifier(str(m)).predict([text])[0] for m in (full, lora)]
    ensemble = EmotionClassifier(str(out))
    ours = ensemble.predict([text])[0]
    assert max(abs(ours[k] - (members[0][k] + members[1][k]) / 2) for k in ours) < 1e-5
    dev = load_split(FIXTURE, "dev")
    probs = classifier_probabilities(ensemble, dev.texts, dev.label_names)
    again = classifier_metrics(dev.labels, probs, dev.label_names,
                               np.array([ensemble.thresholds[n] for n in dev.label_names]), ensemble.group_thresholds)
    assert again["macro_f1"] == pytest.approx(summary["metrics"]["dev"]["macro_f1"], abs=1e-6)
    assert again["ekman_direct"]["macro_f1"] == pytest.approx(summary["metrics"]["dev"]["ekman_direct"]["macro_f1"], abs=1e-6)
    assert set(ensemble.explain(text, top_words=2)) and ensemble.group_rule == "noisy-or"

    from finetune.model_card import main as card_main

    assert card_main([str(out)]) == 0
    card = (out / "README.md").read_text()
    table = card[card.index("## Members and the ensemble"):card.index("## Training")]
    assert f"| {full.name} | fully fine-tuned, binary cross-entropy plus 0.5 x" in table
    assert f"| {lora.name} | adapted with LoRA (rank 4" in table
    assert f"| {summary['metrics']['test_tuned']['macro_f1']:.3f} |" in table.splitlines()[-2]
    assert "python -m finetune.ensemble_classifier <folder>" in card

    # exported, transformers.pipeline reads the same probabilities without the project
    from transformers import pipeline

    from finetune.export_classifier import main

    assert main([str(out), str(tmp_path / "export")]) == 0
    pipe = pipeline("text-classification", model=str(tmp_path / "export"), trust_remote_code=True, top_k=None,
                    dtype="float32")
    from_pipe = {d["label"]: d["score"] for d in pipe([text])[0]}
    assert max(abs(from_pipe[k] - ours[k]) for k in ours) < 1e-5


def test_ensemble_refuses_bad_members(trained, tmp_path, capsys):
    from finetune.ensemble_classifier import build, main

    full = trained[0]
    with pytest.raises(ValueError, match="at least two"):
        build(str(tmp_path / "e"), [str(full)], str(FIXTURE))
    with pytest.raises(ValueError, match="distinct names"):
        build(str(tmp_path / "e"), [str(full), str(full)], str(FIXTURE))
    with pytest.raises(ValueError, match="cannot be one of the members"):
        build(str(full), [str(full), str(tmp_path)], str(FIXTURE))
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "e"), str(full), str(tmp_path / "missing"), "--data-dir", str(FIXTURE)])
    assert stop.value.code == 2 and "missing" in capsys.readouterr().err


def test_an_ensemble_folder_with_bad_members_is_explained(tmp_path):
    from bot.emotion import EmotionClassifier
    from bot.errors import ModelNotFoundError

    shipped = Path(__file__).resolve().parent.parent / "bot" / "models" / "goemotions-minilm"
    (tmp_path / "tokenizer.json").write_bytes((shipped / "tokenizer.json").read_bytes())
    (tmp_path / "tokenizer_config.json").write_bytes((shipped / "tokenizer_config.json").read_bytes())
    for members in (["../escape"], [".."], [], "lora"):
        (tmp_path / "classifier.json").write_text(json.dumps({"form": "ensemble", "members": members}))
        with pytest.raises(ModelNotFoundError, match="no valid members"):
            EmotionClassifier(str(tmp_path))


def test_undo_class_weights_makes_a_weighted_head_calibrated_again():
    import torch

    from finetune.train_classifier import undo_class_weights

    torch.manual_seed(0)
    n, rate = 4000, torch.tensor([0.05, 0.3])
    x = torch.randn(n, 3)
    y = (torch.rand(n, 2) < rate).float()  # labels independent of x: the best reading is the base rate
    weight = torch.tensor([4.0, 1.5])

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier = torch.nn.Linear(3, 2)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net.classifier(x), y, pos_weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    before = torch.sigmoid(net.classifier(x)).mean(0).detach()
    assert before[0] > 0.12  # odds read about 4 times too high
    undo_class_weights(net, weight)
    after = torch.sigmoid(net.classifier(x)).mean(0).detach()
    assert torch.allclose(after, y.mean(0), atol=0.01), (before, after, y.mean(0))
