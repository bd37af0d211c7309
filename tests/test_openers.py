"""Written openers chosen by the emotion state, forced as the start of some candidates (stand-ins), and
the check-in asked again when a yes goes on about something else."""

import pytest

from bot import BotConfig, EmpatheticBot
from bot.core import yes_then_story
from bot.crisis_model import CrisisDetector
from bot.emotion import EmotionState
from bot.openers import family, opened_count, pick
from bot.prompting import PromptBook

from fakes import FakeCrisisClassifier, FakeRanker, FakeReplyModel, KeywordClassifier


def state(**probs) -> EmotionState:
    return EmotionState(available=True, turn=1, probabilities=probs, last_turn=probs)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("probs, said, distressed, expected", [
    ({"joy": 0.9}, "I got the job!", False, None),  # glad messages get no opener
    ({"anger": 0.6, "annoyance": 0.3, "sadness": 0.1}, "the landlord ignored me again", True, "anger"),
    ({"fear": 0.5, "nervousness": 0.4}, "my results come back on tuesday", True, "fear"),
    ({"remorse": 0.7, "sadness": 0.1}, "i forgot my sister's birthday", True, "remorse"),
    ({"anger": 0.4, "fear": 0.35}, "everything went wrong today", True, "sadness"),  # mixed: general
    ({"sadness": 0.5}, "my dad died three weeks ago", True, "grief"),
    ({"anger": 0.8}, "he passed away and the hospital lost his things", True, "grief"),
    ({"anger": 0.5}, "we had to put our dog Biscuit down this morning. the house is so quiet", True, "grief"),
    ({"sadness": 0.5}, "i had a miscarriage last week at 10 weeks", True, "grief"),
    ({"anger": 0.8}, "I put my little girl to sleep and then he started shouting again", True, "anger"),
    ({"sadness": 0.6}, "my phone is dead and I missed the interview", True, "sadness"),  # no death: no "loss"
    ({"anger": 0.8}, "I'm buried in work and my boss keeps yelling", True, "anger"),
    ({"sadness": 0.6}, "I finally put her down for a nap and I'm exhausted and crying", True, "sadness"),
    ({"sadness": 0.6}, "I lost my dog at the park for an hour, I was so scared", True, "sadness"),
    ({"sadness": 0.6}, "I lost my mum to cancer last year", True, "grief"),
    ({"neutral": 0.9}, "what can you do?", False, None),
    # distressed by the words or the situation, with hardly any feeling voiced: no family is named
    ({"confusion": 0.8, "annoyance": 0.03, "anger": 0.03}, "I don't know who I am if I'm not going in", True, "sadness"),
    ({"neutral": 0.8, "annoyance": 0.2, "disgust": 0.05}, "replied-all to the whole department", True, "sadness"),
    ({"annoyance": 0.3, "anger": 0.1}, "the train was cancelled again", True, "anger"),
    ({"joy": 0.9}, "I got the job, but my dog died", True, "grief"),  # a setback outweighs the glad words
])
def test_the_family_follows_the_reading(probs, said, distressed, expected):
    assert family(state(**probs), user(said), distressed) == expected


def test_the_unclear_family_only_where_the_bot_asks_for_it_and_nothing_leans_glad():
    neutral = state(neutral=0.9)
    assert family(neutral, user("my mum read my diary"), False, unclear=True) == "unclear"
    assert family(neutral, user("my mum read my diary"), False) is None
    assert family(state(joy=0.4), user("the sun is out"), False, leans_glad=True, unclear=True) is None
    assert family(state(sadness=0.6), user("my dad died"), True, unclear=True) == "grief"  # distress first
    assert family(neutral, user("passed my test!"), False, good_news="joy", unclear=True) == "joy"


@pytest.mark.parametrize("said", [
    "Should I tell my friend I saw her boyfriend on a dating app?", "what should i do. my manager offered me a contract",
    "everyone keeps telling me 'it depends'. if you had to pick?", "how do you tell your parents you're dropping out?",
    "It was definitely him. Is it wrong to say something?",
])
def test_a_person_asking_what_to_do_gets_the_dilemma_line(said):
    assert family(state(neutral=0.9), user(said), False, unclear=True) == "dilemma"


@pytest.mark.parametrize("said, expected", [
    ("would you like to hear about my day", "unclear"), ("why do I always feel so tired", "unclear"),
    ("which one of my friends told them", "unclear"), ("I don't know what to do", "dilemma"),
    ("idk whether to quit", "dilemma"), ("should we move in together", "dilemma"),
    # questions to the bot that ask nothing about what to do: the model's own words
    ("how do you feel today?", None), ("what do you think about cats?", None), ("what is your name?", None),
    ("do you like music?", None),
    ("waiting for results and they want to discuss them in person. they'd just tell you if it was fine?", "unclear"),
])
def test_what_counts_as_asking_what_to_do(said, expected):
    assert family(state(neutral=0.9), user(said), False, unclear=True) == expected


def test_no_listening_line_for_two_words_with_an_apostrophe_or_a_later_hello():
    bot, model = opening_bot(["Tell me more?"] * 4)
    bot.chat("I'm fine", session_id="s")  # two words, not three
    bot.chat("hello, how are you today", session_id="s")  # a greeting, even after the first turn
    assert model.openers_seen == [[], []]


def test_greedy_decoding_gets_one_opener_and_no_model_call():
    bot, model = opening_bot(["What happened?"])
    bot.config.generation.temperature = 0.0
    reply = bot.chat("I'm furious, my landlord ignored the mould again")
    assert len(model.openers_seen[0]) == 1 and model.continued == []
    assert reply.text == model.openers_seen[0][0]


def test_a_folder_mixing_whole_and_started_lines(tmp_path):
    import shutil

    prompts = tmp_path / "prompts"
    shutil.copytree(PromptBook().dir, prompts)
    (prompts / "openers" / "anger.md").write_text("That sounds so frustrating.\nUgh. How are you holding up?\n")
    bot, model = opening_bot(["What happened?"] * 4, prompts_dir=prompts)
    reply = bot.chat("I'm furious, my landlord ignored the mould again")
    # four candidates: the question line whole, the model for the other three (one after the started line)
    assert model.continued == [["That sounds so frustrating.", "That sounds so frustrating."]]
    by_source = [(c["source"], c.get("opener")) for c in reply.candidates]
    assert by_source[0] == ("opener", "Ugh. How are you holding up?")
    assert ("model", "That sounds so frustrating.") in by_source


def test_a_reply_that_acknowledges_the_person_is_no_guess():
    bot, model = opening_bot(["That really sucks, did you tell them?", "What a lovely day!"], share=0.5)
    reply = bot.chat("everyone in my friend group went to the cinema and nobody told me")  # reads neutral
    problems = {c["text"]: c["problems"] for c in reply.candidates}
    assert "guesses_the_feeling" not in problems["That really sucks, did you tell them?"]
    assert "guesses_the_feeling" in problems["What a lovely day!"]


def test_good_news_with_nerves_after_a_loss_still_leans_glad_but_is_not_read_as_glad_news():
    from bot.core import glad_now, is_glad

    job = state(joy=0.6, excitement=0.57, nervousness=0.37)  # "I got the job!! a bit nervous but so happy"
    assert glad_now(job) and not is_glad(job)
    carer = state(love=0.55, caring=0.1, sadness=0.17, disappointment=0.12)  # "I love her but I am so tired"
    assert not is_glad(carer)


def test_no_negative_opener_for_a_message_that_leans_glad():
    baby = "We had our baby girl on Tuesday! I'm so tired I can barely type"
    assert family(state(joy=0.3, sadness=0.4), user(baby), True, leans_glad=True) is None
    assert family(state(joy=0.3, sadness=0.4), user(baby), True) == "sadness"


def test_openers_already_used_in_the_conversation_come_last():
    lines = ["A.", "B.", "C."]
    conversation = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "A. Then something."},
                    {"role": "user", "content": "y"}]
    assert pick(lines, 2, conversation) == ["B.", "C."]
    assert pick(lines, 4, conversation) == ["B.", "C.", "A.", "B."]
    assert pick([], 2, conversation) == [] and pick(lines, 0, conversation) == []


@pytest.mark.parametrize("n, share, k", [(4, 0.5, 2), (4, 0.0, 0), (4, 1.0, 4), (1, 0.5, 1), (3, 0.1, 1)])
def test_opened_count(n, share, k):
    assert opened_count(n, share) == k


def test_every_family_has_openers_in_the_shipped_prompts():
    book = PromptBook()
    for name in ("grief", "anger", "fear", "remorse", "sadness", "joy", "relief", "unclear", "dilemma"):
        lines = book.openers(name)
        assert len(lines) >= 3 and all(len(ln.split()) <= 18 for ln in lines)
        # a line that ends with a question lets the model stop there (see docs/replies.md)
        assert all(ln.endswith("?") for ln in lines), name
    assert book.openers("no-such-family") == []


class OpeningModel(FakeReplyModel):
    """Continues a started reply: the opener, then the scripted words. ``openers_seen``: the openers the
    bot offered each turn it read for them (``record_openers``); ``continued``: those it was asked to
    continue from."""

    takes_openers = True

    def __init__(self, replies):
        super().__init__(replies)
        self.openers_seen: list[list[str]] = []
        self.continued: list[list[str]] = []

    def candidates(self, messages, settings, n, stats, cancel=None, openers=()):
        self.continued.append(list(openers))
        out = super().candidates(messages, settings, n, stats, cancel)
        return [((openers[i] + " " + text) if i < len(openers) else text, done) for i, (text, done) in enumerate(out)]


def record_openers(bot, model):
    """Keep in ``model.openers_seen`` the openers ``bot`` offers each turn (whole replies or starts)."""
    offer = bot._openers
    if not hasattr(model, "openers_seen"):
        model.openers_seen = []

    def spy(*args, **kwargs):
        name, lines = offer(*args, **kwargs)
        model.openers_seen.append(list(lines))
        return name, lines

    bot._openers = spy
    return bot


def opening_bot(replies, n=4, share=1.0, model=None, prompts_dir=None):
    config = BotConfig()
    config.generation.candidates, config.generation.openers = n, share
    if prompts_dir:
        config.conversation.prompts_dir = str(prompts_dir)
    model = model or OpeningModel(replies)
    bot = EmpatheticBot(config, reply_model=model, emotion_classifier=KeywordClassifier(), ranker=FakeRanker(),
                        crisis_detector=CrisisDetector(FakeCrisisClassifier()))
    return record_openers(bot, model), model


def test_a_distressed_message_gets_openers_on_half_the_candidates_and_the_reply_says_so():
    bot, model = opening_bot(["What happened?", "Why?"], share=0.5)
    reply = bot.chat("I'm furious, my landlord ignored the mould again")
    anger = bot.prompts.openers("anger")
    assert model.openers_seen == [anger[:2]]
    # a line that ends with a question is the whole reply: the model writes only the other two
    assert model.continued == [[]]
    assert [(c["text"], c["source"], c.get("opener")) for c in reply.candidates[:4]] == [
        (anger[0], "opener", anger[0]), (anger[1], "opener", anger[1]), ("What happened?", "model", None),
        ("Why?", "model", None)]
    opened = reply.candidates[reply.chosen].get("opener")
    assert (opened is None) == ("written opener" not in reply.reason)


def test_all_openers_and_no_model_call_by_default():
    bot, model = opening_bot(["What happened?"] * 4)
    reply = bot.chat("I'm furious, my landlord ignored the mould again")
    assert model.continued == [] and reply.text in bot.prompts.openers("anger")
    assert all(c["source"] != "model" for c in reply.candidates)


def test_an_opener_without_a_question_is_continued_by_the_model(tmp_path):
    import shutil

    prompts = tmp_path / "prompts"
    shutil.copytree(PromptBook().dir, prompts)
    (prompts / "openers" / "anger.md").write_text("That sounds so frustrating.\nUgh, that's maddening.\n")
    bot, model = opening_bot(["What happened?"] * 4, share=0.5, prompts_dir=prompts)
    reply = bot.chat("I'm furious, my landlord ignored the mould again")
    assert model.continued == [["That sounds so frustrating.", "Ugh, that's maddening."]]
    assert reply.candidates[0]["text"] == "That sounds so frustrating. What happened?"
    assert [c.get("opener") for c in reply.candidates[:4]] == ["That sounds so frustrating.", "Ugh, that's maddening.",
                                                               None, None]
    opened = reply.candidates[reply.chosen].get("opener")
    assert (opened is None) == ("after the written opener" not in reply.reason)


def test_the_next_turn_opens_differently():
    bot, model = opening_bot(["What happened?"] * 8, n=4, share=0.25)
    first = bot.chat("I'm furious, my landlord ignored the mould again", session_id="s")
    bot.chat("I'm still furious, he says it's my fault", session_id="s")
    used = [o for o in model.openers_seen[0] if first.text.startswith(o)]
    assert model.openers_seen[1] and not set(used) & set(model.openers_seen[1])


def test_a_message_read_as_neither_distressed_nor_glad_gets_the_listening_line_and_the_guesses_lose():
    bot, model = opening_bot(["That is so nice of you!", "What a lovely day!"], share=0.5)
    reply = bot.chat("my mum read my diary and brought it up at dinner")  # reads neutral
    unclear = PromptBook().openers("unclear")
    assert model.openers_seen[0] and set(model.openers_seen[0]) <= set(unclear)
    assert reply.text in unclear
    guesses = [c for c in reply.candidates if not c.get("opener")]
    assert guesses and all("guesses_the_feeling" in c["problems"] for c in guesses)
    assert not any("guesses_the_feeling" in c["problems"] for c in reply.candidates if c.get("opener"))


def test_no_listening_line_for_a_word_or_two_or_for_gladness():
    bot, model = opening_bot(["Tell me more?"] * 4)
    bot.chat("ok thanks")  # too short to say anything about
    bot.chat("I'm so happy today, the sun is out")  # glad, no good news told: the model's own words
    assert model.openers_seen == [[], []]


def test_no_openers_when_off_or_on_a_backend_that_cannot_continue():
    bot, model = opening_bot(["Tell me more?"] * 4, share=0.0)
    bot.chat("I'm furious, my landlord ignored the mould again")
    assert model.openers_seen == [[]]
    plain = FakeReplyModel(["That sounds hard."] * 4)  # no takes_openers: called without them
    bot, _ = opening_bot([], model=plain)
    assert bot.chat("I'm furious, my landlord ignored the mould again").text


def test_a_possible_crisis_gets_no_openers():
    bot, model = opening_bot(["I'm here with you."] * 8, n=2)
    bot.chat("I'm so tired of everything lately", session_id="c")  # the written check-in, no model call
    bot.chat("I dont know, I am just so sad and furious about work", session_id="c")  # the risk stays
    assert model.openers_seen and all(seen == [] for seen in model.openers_seen)


@pytest.mark.parametrize("text, expected", [
    ("yeah", False), ("yes, kind of", False), ("yeah i think about it a lot, most nights", False),
    ("yeah. and ofc i was late for the meeting and my manager made a little comment in front of everyone", True),
    ("I have been thinking about it every night since she left and I cannot stop", False),  # no bare yes: a yes
    ("sometimes. mostly at night when the house is quiet and everyone else is asleep", False),
    ("no. and ofc i was late for the meeting and my manager made a little comment in front of everyone", False),
])
def test_a_yes_that_opens_a_story(text, expected):
    assert yes_then_story(text) is expected


def test_a_yes_that_goes_on_about_something_else_gets_the_question_again_once():
    events = []
    config = BotConfig()
    config.generation.candidates = 1
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(["That sounds hard."] * 10),
                        emotion_classifier=KeywordClassifier(), ranker=FakeRanker(),
                        crisis_detector=CrisisDetector(FakeCrisisClassifier()), on_crisis=events.append)
    bot.chat("I'm so tired of everything lately", session_id="c")
    story = "yeah. and ofc i was late for the meeting and my manager made a little comment in front of everyone"
    again = bot.chat(story, session_id="c")
    assert again.crisis_source == "check_in_unclear" and again.crisis_level == "check_in"
    assert again.text == bot.prompts.check_in("self_harm", again=True) != bot.prompts.check_in("self_harm")
    assert len(events) == 1  # asking again raises nothing new for the desk
    answer = bot.chat("yes", session_id="c")  # a plain yes to the second question: a crisis
    assert answer.crisis_level == "alarm" and answer.crisis_source == "check_in_answer"


def test_a_second_unclear_yes_is_not_asked_about_a_third_time():
    config = BotConfig()
    config.generation.candidates = 1
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(["That sounds hard."] * 10),
                        emotion_classifier=KeywordClassifier(), ranker=FakeRanker(),
                        crisis_detector=CrisisDetector(FakeCrisisClassifier()))
    bot.chat("I'm so tired of everything lately", session_id="c")
    story = "yeah. and ofc i was late for the meeting and my manager made a little comment in front of everyone"
    assert bot.chat(story, session_id="c").crisis_source == "check_in_unclear"
    later = bot.chat(story.replace("meeting", "train"), session_id="c")
    assert later.crisis_source == "check_in_answer"  # asked twice and still a yes: taken as one


def test_the_ui_says_which_candidates_began_with_an_opener():
    from bot.ui import candidates_markdown

    bot, _ = opening_bot(["What happened?", "Why?"], share=0.5)
    table = candidates_markdown(bot.chat("I'm furious, my landlord ignored the mould again"))
    assert table.count("| written opener |") == 2 and table.count("| model |") == 2


def test_good_news_after_a_loss_gets_no_condolence_opener():
    class Mixed(KeywordClassifier):
        def predict(self, texts):
            out = super().predict(texts)
            for t, p in zip(texts, out):
                if "got the job" in t:  # glad, with some nerves: negative 0.37, over the glad-news cap
                    p.clear()
                    p.update(joy=0.6, excitement=0.57, nervousness=0.37, neutral=0.02)
            return out

    config = BotConfig()
    config.generation.candidates = 4
    model = OpeningModel(["What happened?"] * 8)
    bot = record_openers(EmpatheticBot(config, reply_model=model, emotion_classifier=Mixed(), ranker=FakeRanker(),
                                       crisis_detector=CrisisDetector(FakeCrisisClassifier())), model)
    bot.chat("My dog died this morning and I am so sad", session_id="s")
    assert model.openers_seen[0] and model.openers_seen[0][0] in bot.prompts.openers("grief")
    bot.chat("I got the job!! a bit nervous but so happy", session_id="s")  # leans glad: the loss is not its news
    assert model.openers_seen[1] == []


def test_every_distress_opener_acknowledges_the_feeling():
    from bot.replycheck import acknowledges

    book = PromptBook()
    for name in ("grief", "anger", "fear", "remorse", "sadness"):
        assert all(acknowledges(line) for line in book.openers(name)), name


@pytest.mark.parametrize("reply, ignores", [
    ("Why did she leave?", True), ("What did he do?", True), ("Who was it with?", True),
    ("That sucks. Did she say why?", False), ("I can imagine how lonely that feels.", False),
    ("That sounds so frustrating. What happened?", False), ("I'd be fed up too.", False),
])
def test_a_reply_that_skips_a_distressed_persons_feeling_is_passed_over_when_openers_offer_one(reply, ignores):
    from bot.replycheck import reply_problems

    said = user("forgot my sister's 30th birthday. she didnt say anything but i feel awful")
    assert ("ignores_the_feeling" in reply_problems(reply, said, distressed=True, acknowledged=True)) == ignores
    # only where the turn has acknowledging candidates, and only for a distressed person
    assert "ignores_the_feeling" not in reply_problems(reply, said, distressed=True)
    assert "ignores_the_feeling" not in reply_problems(reply, said, acknowledged=True)


def test_the_pool_reply_that_skips_the_feeling_loses_to_an_opener():
    bot, _ = opening_bot(["What happened?"] * 4)
    reply = bot.chat("I'm furious, my landlord ignored the mould again")
    chosen = reply.candidates[reply.chosen]
    assert chosen["opener"] is not None or "ignores_the_feeling" not in chosen["problems"]
    assert all("ignores_the_feeling" not in c["problems"] for c in reply.candidates if c.get("opener"))
