"""Each evaluation metric on tiny hand-made inputs with known answers."""

import math

import numpy as np
import pytest

from eval.advice import is_acknowledgement, is_advice, read_reply, sentences
from eval.metrics import bleu, bootstrap, distinct_n, mean_ci, perplexity, repetition, words


def test_words_lowercase_and_keep_apostrophes():
    assert words("I'm SO tired, aren't you?") == ["i'm", "so", "tired", "aren't", "you"]
    assert words("") == []


def test_distinct_n_counts_unique_ngrams_over_all_replies():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b) (b a) (a b)
    assert distinct_n(["a b", "a b"], 2) == pytest.approx(1 / 2)
    assert distinct_n(["one"], 2) == 0.0


def test_repetition_is_the_share_of_repeated_ngrams_inside_a_reply():
    assert repetition("a b c a b c", 3) == pytest.approx(1 - 3 / 4)  # abc bca cab abc
    assert repetition("a b c d", 3) == 0.0
    assert repetition("hi", 3) == 0.0


def test_bleu_is_100_for_identical_text_and_0_for_disjoint_text():
    assert bleu(["the cat sat on the mat today"], ["the cat sat on the mat today"]) == pytest.approx(100.0)
    assert bleu(["completely different words here now"], ["the cat sat on the mat"]) == pytest.approx(0.0, abs=1e-6)


def test_perplexity_pools_tokens():
    assert perplexity([3 * math.log(2)], [3]) == pytest.approx(2.0)
    # pooled, not averaged per example: (ln2*1 + ln4*3) / 4 tokens
    assert perplexity([math.log(2), 3 * math.log(4)], [1, 3]) == pytest.approx(math.exp((math.log(2) + 3 * math.log(4)) / 4))


def test_bootstrap_interval_brackets_the_mean_and_is_tight_for_constants():
    const = mean_ci([0.5] * 20, samples=200)
    assert const["value"] == 0.5 and const["ci95"] == (0.5, 0.5)
    rng = np.random.default_rng(1)
    data = rng.normal(10, 2, 400)
    fig = mean_ci(data, samples=500)
    lo, hi = fig["ci95"]
    assert lo < data.mean() < hi and hi - lo < 1.0  # about 4 * 2 / sqrt(400) = 0.4 wide
    assert bootstrap(lambda idx: 1.0, 1) is None
    assert mean_ci([])["value"] is None


def test_sentences_split_on_end_punctuation_and_newlines():
    assert sentences("Hi there. How are you?\nI'm fine!") == ["Hi there.", "How are you?", "I'm fine!"]


@pytest.mark.parametrize("text, advice", [
    ("You should talk to your manager.", True),
    ("Take a break tonight.", True),
    ("Have you tried going for a walk?", True),
    ("Maybe you could call your sister?", True),
    ("It might help to write it down.", True),
    ("What happened after that?", False),
    ("Tell me more?", False),
    ("That sounds exhausting.", False),
    ("Take care!", False),
])
def test_advice_sentences(text, advice):
    assert is_advice(text) is advice


@pytest.mark.parametrize("text, ack", [
    ("I'm so sorry to hear that.", True), ("That sounds really hard.", True), ("Congratulations!", True),
    ("It makes sense that you're upset.", True), ("Go to the gym.", False), ("What did he say?", False),
])
def test_acknowledgement_sentences(text, ack):
    assert is_acknowledgement(text) is ack


def test_advice_before_acknowledgement_depends_on_order():
    first = read_reply("You should talk to your boss. That sounds hard.")
    assert first.advice and first.acknowledgement and first.advice_before_acknowledgement
    later = read_reply("That sounds hard. You should talk to your boss.")
    assert later.advice and not later.advice_before_acknowledgement
    same = read_reply("I'm sorry, maybe you could take a day off.")  # one sentence with both: acknowledged first
    assert same.advice and not same.advice_before_acknowledgement
    none = read_reply("That sounds hard. What happened?")
    assert not none.advice and not none.advice_before_acknowledgement
    bare = read_reply("Just try harder next time.")
    assert bare.advice_before_acknowledgement and not bare.acknowledgement
