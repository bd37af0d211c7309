"""The fast copies of the MiniLM models (bot.fast_encoder): the same numbers as the transformers path,
written once, rebuilt when damaged, and a later start that never imports transformers."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.crisis_model import CrisisClassifier
from bot.emotion import EmotionClassifier
from bot.ranker import ResponseRanker

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["I failed my driving test again.", "my dog died 😢", "", "so " * 300 + "and then I took the pills",
         "Ça va? Je suis très fatigué… 今日はつらい", "I'm going to keep it. Maybe frame it.", "ok"]


@pytest.mark.parametrize("cls, spec", [(EmotionClassifier, "goemotions-minilm"), (CrisisClassifier, "crisis-minilm")])
def test_a_fast_copy_reads_messages_as_the_full_model_does(tmp_path, cls, spec):
    full = cls(spec, cache_dir="")
    assert type(full.model).__module__.startswith("bot.emotion_model")  # the transformers path, no copy
    cls(spec, cache_dir=str(tmp_path))  # the first load writes the copy
    copies = list((tmp_path / "encoders").iterdir())
    assert len(copies) == 1 and (copies[0] / "weights.safetensors").is_file()
    fast = cls(spec, cache_dir=str(tmp_path))
    assert type(fast.model).__name__ == "MeanPoolClassifier" and type(fast.tokenizer).__name__ == "FastTokenizer"
    import torch

    before = torch.get_num_threads()
    try:
        for threads in (1, 2):  # the members one after the other, and side by side on their own threads
            torch.set_num_threads(threads)
            for a, b in zip(full.predict(TEXTS), fast.predict(TEXTS)):
                assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) < 1e-5
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    want = full.tokenizer(TEXTS, truncation=True, max_length=96, padding=True, return_tensors="pt")
    got = fast.tokenizer(TEXTS, truncation=True, max_length=96, padding=True, return_tensors="pt")
    assert want["input_ids"].tolist() == got["input_ids"].tolist()
    assert want["attention_mask"].tolist() == got["attention_mask"].tolist()


def test_the_ranker_copy_scores_and_embeds_as_the_full_one(tmp_path):
    full = ResponseRanker(cache_dir="")
    ResponseRanker(cache_dir=str(tmp_path))
    fast = ResponseRanker(cache_dir=str(tmp_path))
    assert type(fast.model).__name__ == "Encoder"
    messages = [{"role": "user", "content": "My dog died this morning."}]
    replies = ["I'm so sorry about your dog.", "Congratulations!", "word " * 200]
    assert fast.score(messages, replies) == pytest.approx(full.score(messages, replies), abs=1e-4)
    assert abs(fast.context_vector(messages) - full.context_vector(messages)).max() < 1e-5


def test_a_damaged_copy_is_ignored_and_the_full_model_loads(tmp_path, caplog):
    CrisisClassifier("crisis-minilm", cache_dir=str(tmp_path))
    copy = next((tmp_path / "encoders").iterdir())
    (copy / "weights.safetensors").write_bytes(b"not weights")
    clf = CrisisClassifier("crisis-minilm", cache_dir=str(tmp_path))
    assert type(clf.model).__module__.startswith("bot.emotion_model")
    assert "could not be read" in caplog.text
    assert clf.predict(["I want to end it all tonight"])[0]["self_harm"] > 0.5


def test_a_retrained_model_gets_its_own_copy(tmp_path):
    import shutil

    from bot.crisis_model import shipped_detector_dir

    folder = tmp_path / "detector"
    shutil.copytree(shipped_detector_dir(), folder)
    CrisisClassifier(str(folder), cache_dir=str(tmp_path / "cache"))
    thresholds = json.loads((folder / "thresholds.json").read_text())
    (folder / "thresholds.json").write_text(json.dumps({**thresholds, "self_harm": 0.5}))
    CrisisClassifier(str(folder), cache_dir=str(tmp_path / "cache"))
    assert len(list((tmp_path / "cache" / "encoders").iterdir())) == 2


@pytest.mark.slow
def test_a_second_start_never_imports_transformers(tmp_path):
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from bot.emotion import EmotionClassifier; "
            "from bot.crisis_model import CrisisClassifier; from bot.ranker import ResponseRanker; "
            "e = EmotionClassifier('goemotions-minilm'); c = CrisisClassifier(); r = ResponseRanker(); "
            "e.predict(['hello']); c.predict(['hello']); r.score([{'role': 'user', 'content': 'hi'}], ['hello']); "
            "print('transformers' in sys.modules, 'peft' in sys.modules)")
    env = {"EMPATHETIC_BOT_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.split()[-2:] == ["True", "True"]  # the first start builds the copies
    second = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.split()[-2:] == ["False", "False"]


def test_a_fast_copy_made_from_a_changed_or_removed_model_is_stale(tmp_path):
    import json

    from bot.fast_encoder import copy_folder, stale_copy

    model = tmp_path / "model"
    model.mkdir()
    (model / "adapter_model.safetensors").write_bytes(b"weights")
    entry = copy_folder("crisis", [model], str(tmp_path / "cache"))
    entry.mkdir(parents=True)
    (entry / "fast.json").write_text(json.dumps({"sources": [str(model)]}))
    assert stale_copy(entry) is False
    (model / "adapter_model.safetensors").write_bytes(b"retrained")
    assert stale_copy(entry) is True
    (model / "adapter_model.safetensors").unlink()
    model.rmdir()
    assert stale_copy(entry) is True
    (entry / "fast.json").write_text(json.dumps({}))  # written before copies named their sources
    assert stale_copy(entry) is None
