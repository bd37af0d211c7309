"""Good news read from the words (bot.goodnews), the replies it rules out, and what the bot does with it
(stand-in models)."""

import pytest

from bot import BotConfig, EmpatheticBot
from bot.crisis_model import CrisisDetector
from bot.emotion import EmotionState
from bot.goodnews import good_news
from bot.openers import family
from bot.replycheck import celebrates, doubts_good_news, reply_problems

from fakes import FakeCrisisClassifier, FakeRanker, KeywordClassifier
from test_openers import OpeningModel, record_openers


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("text, expected", [
    ("I GOT THE JOB!!!!", "joy"),
    ("passed my driving test today on the first try", "joy"),
    ("PASSED MY DRIVING TEST!!! 4th try lol", "joy"),
    ("got accepted into my top choice university!", "joy"),
    ("we just found out we're having a baby, I'm over the moon", "joy"),
    ("My daughter graduated from college yesterday. So proud of her.", "joy"),
    ("I've been sober for one year today.", "joy"),
    ("two years clean as of this morning", "joy"),
    ("we got the keys to our first house!!", "joy"),
    ("I got promoted", "joy"),
    ("she said yes!!! we're engaged", "joy"),
    ("finally paid off my student loans", "joy"),
    ("my test results came back clear, no cancer", "relief"),
    ("Biopsy came back benign. I can finally breathe.", "relief"),
    ("found our dog! he was two streets away", "relief"),
    ("mum's surgery went well, she's awake", "relief"),
    # hoped for, asked, denied, mixed, someone else's, or no event at all
    ("I hope I get the job", None),
    ("fingers crossed I pass my driving test tomorrow", None),
    ("did I pass? I have no idea", None),
    ("I didn't get the job", None),
    ("I got the job offer but they offered me less money than I make now", None),
    ("my friend got a promotion and I'm stuck in the same role", None),
    ("I'm going to graduate next year if I pass everything", None),
    ("I passed the shop on the way home", None),
    ("I passed wind in my performance review", None),
    ("my grandparents have been married for 50 years", None),
    ("my cousin was admitted to hospital after a crash", None),
    ("I have an appointment to make sure my cancer is still in remission", None),
    ("I found my dog's old toy and cried", None),
    ("we were expecting a quiet weekend", None),
    ("I was in a college class once with an older woman", None),
    ("my dad passed away last week", None),
    ("", None),
])
def test_good_news_is_read_from_the_words(text, expected):
    assert good_news(user(text)) == expected


def test_only_the_latest_message_counts():
    convo = [*user("I got the job!"), {"role": "assistant", "content": "Congratulations!"},
             *user("but today my manager shouted at me")]
    assert good_news(convo) is None


@pytest.mark.parametrize("reply, doubts", [
    ("Did you not pass?", True),
    ("That is awesome! I hope you get the job", True),
    ("That is so awesome, have you been accepted yet/", True),
    ("What kind of results? are you okay?", True),
    ("Good luck with that, its rough out there.", True),
    ("How are you going to get the job?", True),
    ("Did you pass?", True),
    ("Congrats and good luck in your new job!", False),
    ("Congratulations! Did you get a good salary?", False),
    ("Congratulations! I hope you get to celebrate tonight.", False),
    ("Well done! Next time you can drive us!", False),
    ("That's great! Best of luck at uni, congrats!", False),
    ("Great, when will you start?", False),
    ("That is great. When did you take the test?", False),
])
def test_replies_that_doubt_good_news(reply, doubts):
    assert doubts_good_news(reply) == doubts


@pytest.mark.parametrize("reply, glad", [
    ("That's pretty awesome. Do you usually run marathons?", True),
    ("Oh, that's such a relief! I'm so glad.", True),
    ("Wow! Congrats! I've heard that's very difficult to do.", True),
    ("Well done, you must be very proud of yourself.", True),
    ("I'm so relieved for you.", True),
    ("You did it!", True),
    ("That's incredible!", True),
    ("I'm thrilled for you!", True),
    ("lol", False),
    ("What has made it such a long year for you?", False),
    ("What kind of test?", False),
])
def test_replies_that_celebrate(reply, glad):
    assert celebrates(reply) == glad


def test_reply_checks_for_good_news():
    said = user("I've been sober for one year today.")
    assert "ignores_good_news" in reply_problems("What has made it such a long year for you?", said, good_news=True)
    assert "doubts_good_news" in reply_problems("Congrats! Did you not drink at all?", said, good_news=True)
    assert reply_problems("Congratulations, that's a huge achievement. How do you feel?", said, good_news=True) == ()
    # without good news read, neither check applies
    assert reply_problems("What has made it such a long year for you?", said) == ()


@pytest.mark.parametrize("said, expected", [
    ("ugh my laptop died right before my presentation", "sadness"),
    ("my car died on the motorway and I'm stuck", "sadness"),
    ("I died laughing and then cried about my exam", "sadness"),
    ("My dog died this morning", "grief"),
    ("Max died last night, he was 14", "grief"),
])
def test_things_that_die_are_no_death(said, expected):
    probs = {"sadness": 0.8}
    assert family(EmotionState(available=True, turn=1, last_turn=probs, probabilities=probs), user(said), True) == expected


@pytest.mark.parametrize("said", [
    "My baby died inside me at 20 weeks.", "It has been a year since the day that she died.",
    "My cat was old. It died this morning.", "My grandad actually died last week.", "At the party he died.",
])
def test_deaths_told_with_it_that_or_actually_are_still_deaths(said):
    from bot.replycheck import tells_of_a_death

    assert tells_of_a_death(user(said))
    assert "invents_a_loss" not in reply_problems("I'm so sorry for your loss.", user(said))


def test_condolences_for_a_dead_phone_are_an_invented_loss():
    assert "invents_a_loss" in reply_problems("I'm so sorry for your loss.", user("my phone died and I missed the bus"))
    assert "invents_a_loss" not in reply_problems("I'm so sorry for your loss.", user("my grandad died on sunday"))


def _bot(replies, classifier=None, n=4, share=1.0):
    config = BotConfig()
    config.generation.candidates, config.generation.openers = n, share
    model = OpeningModel(replies)
    bot = EmpatheticBot(config, reply_model=model, emotion_classifier=classifier or KeywordClassifier(),
                        ranker=FakeRanker(), crisis_detector=CrisisDetector(FakeCrisisClassifier()))
    return record_openers(bot, model), model


def test_good_news_read_as_neutral_gets_the_joy_openers_and_no_doubt():
    bot, model = _bot(["Did you not pass?", "Oh no, I'm sorry to hear that."], share=0.5)
    reply = bot.chat("passed my driving test today on the first try")  # the stand-in classifier: neutral
    assert model.openers_seen == [bot.prompts.openers("joy")[:2]]
    assert reply.candidates[reply.chosen]["opener"] in bot.prompts.openers("joy")
    by_text = {c["text"]: c for c in reply.candidates}
    assert "doubts_good_news" in by_text["Did you not pass?"]["problems"]
    assert "sympathy_to_good_news" in by_text["Oh no, I'm sorry to hear that."]["problems"]


def test_relief_gets_its_own_openers():
    bot, model = _bot(["How are you feeling?"] * 4)
    bot.chat("my scan came back clear")
    assert model.openers_seen == [bot.prompts.openers("relief")]


def test_hoped_for_news_or_a_negative_reading_gets_no_joy():
    bot, model = _bot(["How are you feeling?"] * 4)
    bot.chat("I hope I pass my driving test tomorrow")  # read as neutral: the listening line, no joy
    assert model.openers_seen[0] and not (set(model.openers_seen[0]) & set(bot.prompts.openers("joy")))

    class Worried(KeywordClassifier):
        def predict(self, texts):  # "I got the job" read with nerves outweighing: no plain good news
            return [{"nervousness": 0.3, "fear": 0.2, "joy": 0.2, "neutral": 0.3} for _ in texts]

    bot, model = _bot(["How are you feeling?"] * 4, classifier=Worried())
    bot.chat("I got the job")
    assert not (set(model.openers_seen[0]) & set(bot.prompts.openers("joy")))


def test_a_setback_in_the_same_message_wins():
    bot, model = _bot(["What happened?"] * 4)
    bot.chat("I got promoted and then I got fired the same week")
    assert not (set(model.openers_seen[0]) & set(bot.prompts.openers("joy")))


def test_relief_may_read_somewhat_negative_but_not_distressed():
    class Feared(KeywordClassifier):
        def __init__(self, probs):
            self.probs = probs

        def predict(self, texts):
            return [dict(self.probs) for _ in texts]

    # "out of ICU": the words of the fear read negative, the relief outweighs them
    bot, model = _bot(["That's great news."] * 4, classifier=Feared({"fear": 0.2, "sadness": 0.15, "relief": 0.5}))
    reply = bot.chat("my brother is out of ICU and talking again")
    assert model.openers_seen == [bot.prompts.openers("relief")]
    assert all("cheerful_to_distress" not in c["problems"] for c in reply.candidates)
    # read as distressed (more negative than positive): no good news, whatever the words
    bot, model = _bot(["That's great news."] * 4, classifier=Feared({"fear": 0.25, "sadness": 0.17, "relief": 0.1}))
    bot.chat("the biopsy came back negative")
    assert not (set(model.openers_seen[0]) & set(bot.prompts.openers("relief")))


@pytest.mark.parametrize("text", [
    "I found my dog dead this morning.", "We found our son unresponsive.", "I found my daughter cutting herself.",
    "The doctors said no more chemo, there's nothing more they can do.",
    "They moved her out of ICU and into hospice.", "He is no longer breathing on his own.",
    "My pregnancy test came back negative again.", "He was in remission for two years but the cancer came back.",
    "Still no sign of it getting better.", "I got my test results back today. It's cancer.",
    "I gave birth to a stillborn boy.", "After I got married he started hitting me.",
    "I was picked on again at school today.", "I was selected for redundancy.",
    "I just accepted that I'll never walk again.", "She's having a baby with another man.",
    "I'm pregnant and I don't know what to do.", "Ever since I graduated I've felt lost and alone.",
    "Got the job? Nope.", "I thought I got the job. Turns out they gave it to someone else.",
])
def test_bad_news_in_the_same_words_is_not_good_news(text):
    assert good_news(user(text)) is None


def test_no_good_news_without_an_emotion_reading_or_in_a_possible_crisis():
    from bot.core import plain_good_news

    assert plain_good_news(user("I got the job!"), EmotionState(available=False)) is None
    bot, model = _bot(["I'm here."] * 4)
    bot.chat("I'm so tired of everything lately", session_id="r")  # the written check-in, no model call
    reply = bot.chat("I dont know. I got the job today", session_id="r")  # the risk stays
    assert reply.risk and model.openers_seen == [[]]
    assert all("ignores_good_news" not in c["problems"] for c in reply.candidates)


def test_a_first_hello_is_answered_with_the_written_greetings_as_before():
    bot, model = _bot(["Hi!"] * 4)
    reply = bot.chat("hi")
    assert reply.text in bot.prompts.written("greeting") and model.openers_seen == []


@pytest.mark.parametrize("turns", [
    ["Twenty years ago today we got married. He's been gone 18 months now and I don't know what to do with the day"],
    ["my mum died in march", "and today I got the job she always wanted for me"],
])
def test_no_congratulation_beside_a_death(turns):
    from bot.core import plain_good_news

    conversation = [{"role": "user", "content": t} for t in turns]
    state = EmotionState(available=True, turn=1, last_turn={"neutral": 0.9}, probabilities={"neutral": 0.9})
    assert plain_good_news(conversation, state) is None


def test_a_dead_laptop_is_no_death_told():
    from bot.replycheck import tells_of_a_death

    assert not tells_of_a_death(user("my laptop died and the battery is dead"))
    assert tells_of_a_death(user("my grandad passed away on friday"))
    assert tells_of_a_death(user("My mum passed last week."))
    assert not tells_of_a_death(user("my sister passed her driving test"))


@pytest.mark.parametrize("text, expected", [
    ("We had our baby girl last night!! so tired but so in love", "joy"),
    ("we welcomed a healthy baby boy at 3am!", "joy"),
    ("my baby took her first steps today and i cried", "joy"),
    ("he said his first word!! it was 'dog' lol", "joy"),
    # not a birth, someone else's, or a baby in danger or lost
    ("She had a baby with another man.", None),
    ("we had our baby girl taken into care", None),
    ("I had a son. He'd be 30 today. I can't stop crying", None),
    ("had my baby adopted when I was 16, I still cry", None),
    ("had a baby scan today, I'm shaking", None),
    ("we had our baby scan and they couldn't find a heartbeat", None),
    ("We had a baby girl. She only lived for an hour. I can't stop crying.", None),
    ("We had our baby at 28 weeks, I can't stop crying", None),
    ("we had our baby boy by emergency c-section, he's in the special care unit and I'm exhausted", None),
    ("my sister had a baby and I'm crying, we've been trying for six years", None),
    ("I took my first steps toward ending it all", None),
])
def test_a_baby_born_or_a_first_step_is_good_news(text, expected):
    assert good_news(user(text)) == expected


class _Tearful(KeywordClassifier):
    def predict(self, texts):  # tears read as sadness, as the shipped classifier reads them
        return [{"sadness": 0.55, "neutral": 0.16, "joy": 0.14} for _ in texts]


@pytest.mark.parametrize("text", ["I got the job!!! I can't stop crying",
                                  "Finally got my visa approved after two years, I'm in tears",
                                  "HE PROPOSED!!!!! I'm literally shaking right now",
                                  "We had our baby girl on Tuesday night! I'm so tired I can barely type",
                                  "I got the job! Didn't think I would but here I am, crying happy tears"])
def test_tears_of_joy_over_good_news_get_the_joy_openers(text):
    bot, model = _bot(["Oh no, I'm sorry to hear that."] * 4, classifier=_Tearful())
    reply = bot.chat(text)
    assert model.openers_seen == [bot.prompts.openers("joy")]
    assert reply.candidates[reply.chosen]["opener"] in bot.prompts.openers("joy")


@pytest.mark.parametrize("text", [
    "I passed my exam and I can't stop crying, I miss my dad so much",
    "I'm crying, I got the job",  # not said gladly: the reading decides
    "got the job. cried the whole way home. dad would have been proud",
    "I'm pregnant and I can't stop crying, he left me",
    "oh great, I got the job. the one I hate. I'm in tears",
    "I got the job and I'm shaking with rage, they only hired me to fire me",
    "I passed my exam. I'm exhausted and I just want everything to end",
    "got promoted today. I'm so exhausted I could just disappear",
    "my best mate got engaged and I cried all night!!",
    "got my results back all clear, I'm exhausted and overwhelmed, I don't want to be here anymore",
])
def test_tears_said_without_gladness_or_beside_anything_sad_are_left_to_the_emotion_reading(text):
    bot, model = _bot(["I'm here."] * 4, classifier=_Tearful())
    bot.chat(text)
    assert not (set(model.openers_seen[0]) & set(bot.prompts.openers("joy") + bot.prompts.openers("relief")))


def test_tears_over_a_passed_exam_told_gladly_are_joy():
    bot, model = _bot(["I'm here."] * 4, classifier=_Tearful())
    bot.chat("my son rang to say he passed the bar exam!! i cried in the middle of the supermarket")
    assert model.openers_seen == [bot.prompts.openers("joy")]


@pytest.mark.parametrize("text, expected", [
    ("bank approved the loan, i can finally open the bakery", "joy"),
    ("no more chemo!!", "relief"),
    ("cast came off today and the physio says the bone healed perfectly", "relief"),
    ("they approved the loan but the rate is awful", None),
    ("They said no more chemo. I can't stop crying.", None),
    ("no more chemo, they're moving her to comfort care", None),
    ("the court granted the appeal and my rapist walks free", None),
    ("HR accepted the claim against me", None),
    ("I haven't passed my driving test", None),
    ("Haven't told anyone yet but we're pregnant!!", "joy"),
])
def test_a_loan_approved_the_end_of_chemo_and_a_bone_healed(text, expected):
    assert good_news(user(text)) == expected


def test_tears_after_a_but_are_a_catch_unless_they_are_happy_tears():
    assert good_news(user("my son's team won the cup but he sat on the bench all game and came home in tears")) is None
    assert good_news(user("We had our baby girl! Labour was long but I'm crying happy tears")) == "joy"
