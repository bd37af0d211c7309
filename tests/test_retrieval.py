"""The pool of human replies: what it keeps, how a retrieved reply is checked, and how it joins the candidates."""

import json

import pytest

from bot import BotConfig, EmpatheticBot
from bot.crisis_model import CrisisDetector
from bot.retrieval import ReplyPool, build_pool, honest_reply, open_pool, tidy, unsaid_specifics

from eval_data import write_empatheticdialogues, write_esconv
from fakes import FakeCrisisClassifier, FakePool, FakeRanker, FakeReplyModel, KeywordClassifier


def test_only_replies_a_bot_can_say_honestly_are_kept():
    assert honest_reply("I'm so sorry to hear that. How are you holding up?")
    assert honest_reply("That sounds frightening. Is there somewhere safer you can stay?")
    for text in ("I had a dog like that, he died when I was ten.", "My wife went through the same thing.",
                 "Same thing happened to me last year!", "I've done that before, don't worry.",
                 "Me too", "ok", "Check www.example.com for more", "Just hang yourself.",
                 " ".join(["word"] * 41)):
        assert not honest_reply(text), text


def test_human_replies_are_tidied_before_they_are_shown():
    assert tidy("ok ,how much raise did you get ?") == "Ok, how much raise did you get?"
    assert tidy("thats a good plan") == "Thats a good plan."
    assert tidy("what did you get") == "What did you get?"
    assert tidy("i think i'm fine , i'd say") == "I think I'm fine, I'd say."
    assert tidy("It cost 1,000 dollars!") == "It cost 1,000 dollars!"


def test_details_the_person_never_mentioned_are_found():
    conversation = [{"role": "user", "content": "My dog died this morning. I keep looking at his bowl."}]
    common = frozenset({"sorry", "hear", "loss", "old", "hard", "losing"})
    assert unsaid_specifics("I'm so sorry. How old was your cat?", conversation, common) == ["cat"]
    assert unsaid_specifics("I'm so sorry about your dog. Losing him must be hard.", conversation, common) == []
    # the listener's own earlier words count as said, and plural/verb forms match their stem
    conversation += [{"role": "assistant", "content": "That is heartbreaking."},
                     {"role": "user", "content": "We walked together every day."}]
    assert unsaid_specifics("Those walks sound heartbreaking.", conversation, common | {"sound"}) == []


def make_bot(replies, pool_replies, common=(), retrieved=4, classifier=None):
    config = BotConfig()
    config.generation.candidates = len(replies)
    config.generation.retrieved = retrieved
    pool = FakePool(pool_replies, common)
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(replies), emotion_classifier=KeywordClassifier(),
                        ranker=FakeRanker(), crisis_detector=CrisisDetector(classifier or FakeCrisisClassifier()),
                        reply_pool=pool)
    return bot, pool


def test_a_retrieved_reply_that_fits_better_is_shown_and_the_reply_says_where_it_came_from():
    bot, pool = make_bot(["Is he okay now?"], ["I'm so sorry your dog died this morning."],
                         common={"sorry", "morning"})
    reply = bot.chat("My dog died this morning")
    assert reply.text == "I'm so sorry your dog died this morning."
    chosen = reply.candidates[reply.chosen]
    assert chosen["source"] == "retrieved" and chosen["similarity"] == pytest.approx(0.9)
    assert "human reply from the pool" in reply.reason and pool.searches == 1
    assert reply.timings["candidates"] == 2


def test_the_pool_bonus_shows_a_human_reply_that_fits_about_as_well_and_no_worse_one():
    # the stand-in ranker counts the words a reply shares with the message: 3 for the model's reply
    # ("i", "my", "exam"), 1 for the pooled one ("exam")
    def reply(bonus, pooled="That exam sounds like a lot of pressure."):
        bot, _ = make_bot(["I like my exam too."], [pooled], common={"that", "sounds", "like", "a", "lot", "of",
                                                                      "pressure", "how", "went"})
        bot.config.generation.pool_bonus = bonus
        return bot.chat("I have my exam tomorrow")

    assert reply(0.0).text == "I like my exam too."  # off: the better fit
    on = reply(2.5)
    assert on.text == "That exam sounds like a lot of pressure."
    pooled = on.candidates[on.chosen]
    assert pooled["source"] == "retrieved" and pooled["score"] == pytest.approx(pooled["fit"] + 2.5)
    assert "human reply from the pool" in on.reason and "(fit 1.00)" in on.reason
    # a bonus decides between replies that fit about as well, not for one that fits much worse
    assert reply(1.5).text == "I like my exam too."
    # and never over a problem: a pooled reply with one never joins, whatever the bonus
    assert reply(10.0, "Congrats, that's awesome! How it went?").text == "I like my exam too."


def test_retrieved_replies_with_problems_or_unsaid_details_never_join():
    bot, _ = make_bot(["That sounds hard."],
                      ["How old was your cat when she died?",  # a detail this person never gave
                       "Congrats, that's awesome!",  # cheerful to a sad person
                       "You should just get a new dog tomorrow, that always works for sad people."],  # advice first
                      common={"old", "died", "congrats", "awesome", "get", "new", "tomorrow", "always", "works",
                              "sad", "people"})
    reply = bot.chat("My dog died and I'm sad")
    assert [c["source"] for c in reply.candidates] == ["model"]
    assert reply.text == "That sounds hard."


def test_no_retrieval_when_turned_off_or_when_the_session_may_be_in_crisis():
    bot, pool = make_bot(["That sounds hard."], ["I'm so sorry, that sounds hard."], common={"sorry"}, retrieved=0)
    bot.chat("My dog died and I'm sad")
    assert pool.searches == 0
    bot, pool = make_bot(["I'm here with you."], ["I'm so sorry, that sounds hard."], common={"sorry"})
    bot.config.conversation.crisis_reply = "model"  # the model answers a crisis; the pool must not
    reply = bot.chat("I want to kill myself tonight")
    assert reply.crisis and pool.searches == 0
    assert all(c["source"] != "retrieved" for c in reply.candidates)


@pytest.fixture(scope="module")
def built_pool(tmp_path_factory):
    from bot.ranker import ResponseRanker

    root = tmp_path_factory.mktemp("data")
    write_empatheticdialogues(root)
    (root / "empatheticdialogues" / "splits_valid_test" / "fixed_test.csv").write_text("conv_id\nhit:5_conv:9\n")
    write_esconv(root)
    ranker = ResponseRanker()
    folder = build_pool(str(root), ranker, tmp_path_factory.mktemp("pool"), progress=lambda *_: None)
    return ranker, folder, root


def test_a_pool_is_built_from_the_train_splits_and_finds_the_nearest_conversation(built_pool):
    ranker, folder, _ = built_pool
    pool = open_pool(str(folder), ranker)
    meta = json.loads((folder / "pool.json").read_text())
    replies = [r["reply"] for r in pool.rows]
    assert meta["split"] == "train" and meta["replies"] == len(pool) == len(replies)
    assert not any("grandparents" in r["context"] for r in pool.rows)  # the test conversation is not in it
    assert "You could try writing him a letter." in replies or len(replies) >= 4
    vector = ranker.context_vector([{"role": "user", "content": "My landlord refuses to give my deposit back!"}])
    best = pool.nearest(vector, 2)
    assert best[0]["reply"].startswith("That's so unfair") and best[0]["similarity"] >= best[1]["similarity"]
    assert len({r["reply"] for r in pool.nearest(vector, 50)}) == len(pool.nearest(vector, 50))


def test_a_pool_built_for_another_ranker_or_damaged_is_refused_with_what_to_do(built_pool, tmp_path):
    from bot.errors import ModelNotFoundError

    ranker, folder, _ = built_pool
    other = tmp_path / "other"
    other.mkdir()
    for f in folder.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    meta = json.loads((other / "pool.json").read_text())
    meta["ranker_key"] = "someone-else"
    (other / "pool.json").write_text(json.dumps(meta))
    with pytest.raises(ModelNotFoundError, match="another ranker"):
        open_pool(str(other), ranker)
    (other / "contexts.npy").write_bytes(b"not an array")
    with pytest.raises(ModelNotFoundError, match="rebuild"):
        ReplyPool(other)
    assert open_pool("none", ranker) is None and open_pool(None, ranker) is None
    assert open_pool("auto", ranker, cache_dir=str(tmp_path / "empty-cache")) is None
    # the same bi-encoder under another name (a copy that adds a cross-encoder) reads the pool it indexes
    import shutil

    from bot.ranker import ResponseRanker

    copy = tmp_path / "my-ranker"
    shutil.copytree(ranker.resolved.location, copy)
    assert len(open_pool(str(folder), ResponseRanker(str(copy)))) == len(ReplyPool(folder))


def test_the_bot_reads_a_pool_named_in_its_config_and_offers_its_replies(built_pool):
    ranker, folder, _ = built_pool
    config = BotConfig()
    config.model.reply_pool = str(folder)
    config.generation.candidates = 1
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(["Ok."]), emotion_classifier=KeywordClassifier(),
                        ranker=ranker, crisis_detector=CrisisDetector(FakeCrisisClassifier()))
    reply = bot.chat("My landlord kept my whole deposit for no reason, I'm furious!")
    sources = {c["source"] for c in reply.candidates}
    assert "retrieved" in sources and reply.candidates[reply.chosen]["source"] == "retrieved"
    assert reply.text in {r["reply"] for r in bot.reply_pool.rows}
    assert f"{len(bot.reply_pool):,} human replies" in bot.info()["reply_pool"]


def test_the_pool_command_builds_into_the_cache_where_the_bot_finds_it(built_pool, tmp_path, capsys):
    from bot.cli import main
    from bot.retrieval import describe_cached_pool

    cache = tmp_path / "cache"
    assert describe_cached_pool("empathy-ranker", str(cache)).startswith("none (build one")
    assert main(["pool", "--data-dir", str(built_pool[2]), "--cache-dir", str(cache)]) == 0
    assert "the bot uses it from now on" in capsys.readouterr().out
    assert "human replies in" in describe_cached_pool("empathy-ranker", str(cache))
    assert open_pool("auto", built_pool[0], cache_dir=str(cache)) is not None
    assert main(["pool", "--data-dir", str(tmp_path / "nothing-here")]) == 1  # a clear error, not a traceback
