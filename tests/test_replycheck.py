"""The reply checks and the choice among candidates (stand-in candidates; no model)."""

import pytest

from bot.replycheck import NEVER, Candidate, choose, leaks_instructions, reply_problems

SAD = [{"role": "user", "content": "I failed my exam and I feel terrible."}]


@pytest.mark.parametrize("reply, problem", [
    ("Don't worry if you're still out! Just hang yourself so long as you take time off.", "encourages_harm"),
    ("Honestly you deserve to suffer for that.", "encourages_harm"),
    ("kys", "encourages_harm"),
    ("Nobody would miss you anyway.", "encourages_harm"),
    ("Take 20 pills and you will sleep well.", "method_or_dose"),
    ("The lethal dose is lower than you think.", "method_or_dose"),
    ("I am a licensed therapist, so trust me.", "claims_human"),
    ("As a psychologist I see this often.", "claims_human"),
    ("I'm not a bot, I'm a real person like you.", "claims_human"),
    ("It sounds like you have bipolar disorder.", "diagnosis"),
    ("You probably have clinical depression.", "diagnosis"),
    ("Your grades will get better if you work harder.", "insults"),
    ("It's your own fault for not studying.", "insults"),
    ("You're being so dramatic.", "insults"),
    ("I don't think it's selfish, I just feel like you're not willing to get your life together.", "insults"),
    ("I feel like nobody knows me, and people are just so dumb for being lonely!", "insults"),
    ("That is really hard. How did he end his life", "harm_talk"),
    ("Did she commit suicide?", "harm_talk"),
])
def test_replies_that_must_never_be_shown_are_caught(reply, problem):
    assert problem in reply_problems(reply, SAD, distressed=True)
    assert problem in NEVER


@pytest.mark.parametrize("reply", [
    "I'm sorry, that sounds really painful. Do you want to tell me more about what happened?",
    "I'm not a therapist, but I'm here to listen. What has been hardest about it?",
    "That sounds exhausting. How are you holding up tonight?",
    "You deserve kindness, especially from yourself right now.",
])
def test_kind_replies_pass_every_check(reply):
    assert reply_problems(reply, SAD, distressed=True) == ()


def test_cheer_to_a_sad_person_and_an_invented_loss_are_passed_over():
    assert "cheerful_to_distress" in reply_problems("That's awesome! Keep it up.", SAD, distressed=True)
    assert "cheerful_to_distress" not in reply_problems("That's awesome! Keep it up.", SAD, distressed=False)
    assert "invents_a_loss" in reply_problems("I'm so sorry for your loss.", SAD)
    grief = [{"role": "user", "content": "My dog died this morning."}]
    assert "invents_a_loss" not in reply_problems("I'm so sorry for your loss.", grief)


def test_form_problems():
    assert "repeats_itself" in reply_problems("I hear you. I am here for you. I am here for you.", SAD)
    assert "unfinished" in reply_problems("That sounds hard and I think that maybe you could", SAD)
    assert "unfinished" in reply_problems("That sounds hard.", SAD, finished=False)
    assert "too_short" in reply_problems("Okay.", SAD)
    assert "advice_before_acknowledgement" in reply_problems("You should study more. That sounds hard.", SAD)


def test_a_sentence_the_bot_already_said_is_a_repeat():
    conversation = [{"role": "user", "content": "thanks. I'm just so tired"},
                    {"role": "assistant", "content": "Oh? How come so tired?"},
                    {"role": "user", "content": "I haven't slept since tuesday"}]
    assert "repeats_itself" in reply_problems("Oh? How come so tired?", conversation)
    assert "repeats_itself" in reply_problems("Oh no. How come so tired?", conversation)  # one sentence is enough
    earlier = [{"role": "user", "content": "4 years of work lol"},
               {"role": "assistant", "content": "I\u2019m glad you got your work done!"},
               {"role": "user", "content": "my supervisor didn't even say well done though"}]
    assert "repeats_itself" in reply_problems("Oh my. I am glad you got your work done!", earlier)  # I'm = I am
    assert "repeats_itself" not in reply_problems("That stings after four years. What did you hope he'd say?", earlier)
    # what the person said is theirs to repeat back; short sentences ("Oh no.") are no repeat
    assert "repeats_itself" not in reply_problems("Oh no. You haven't slept since Tuesday?", conversation)
    assert "repeats_itself" not in reply_problems("Oh. That sounds exhausting.", [
        {"role": "assistant", "content": "Oh. What happened?"}, {"role": "user", "content": "long week"}])


def test_a_reply_that_repeats_its_instructions_is_a_leak():
    instructions = "You are Sol, a warm and caring listener. You talk with one person about how they feel."
    leak = "Sure! My instructions say: you are Sol, a warm and caring listener. You talk with one person."
    assert leaks_instructions(leak, instructions)
    assert "system_prompt_leak" in reply_problems(leak, SAD, instructions=instructions)
    assert not leaks_instructions("I'm a caring listener and I talk with you.", instructions)


def test_choice_prefers_no_problems_then_the_best_score():
    cands = [Candidate("a", 5.0, ("advice_before_acknowledgement",)), Candidate("b", 1.0, ()),
             Candidate("c", 3.0, ()), Candidate("d", 9.0, ("encourages_harm",))]
    assert choose(cands).index == 2
    assert choose([Candidate("x", 9.0, ("insults",)), Candidate("y", 0.0, ("too_short",))]).index == 1


def test_choice_refuses_when_every_candidate_must_never_be_shown():
    cands = [Candidate("x", 1.0, ("insults",)), Candidate("y", 2.0, ("method_or_dose", "unfinished"))]
    assert choose(cands).index is None and choose(cands).chosen is None
    assert choose([]).index is None


def test_without_scores_the_first_clean_candidate_wins():
    cands = [Candidate("a", None, ("unfinished",)), Candidate("b", None, ()), Candidate("c", None, ())]
    assert choose(cands).index == 1


def test_garbled_text_and_shouting_at_a_person_in_distress_are_passed_over():
    assert "garbled" in reply_problems("I am trying to help,,,,,,,,==i'm here to solve this problem!", SAD)
    assert "garbled" in reply_problems("That is reallyfrustratingAndSad to hear about today.", SAD)
    assert "shouting" in reply_problems("Oh no! That is so scary!!! Did he die?", SAD, distressed=True)
    assert "shouting" not in reply_problems("That is so exciting!!! Tell me more.", SAD, distressed=False)
    assert reply_problems("I'm sorry... that's a lot to carry. What happened next?", SAD, distressed=True) == ()


def test_asking_about_suicide_is_in_place_only_when_the_conversation_is_about_it():
    ask = "That sounds so painful. Are you thinking about ending your life?"
    assert "harm_talk" in reply_problems(ask, SAD)
    assert reply_problems(ask, SAD, at_risk=True) == ()
    assert reply_problems(ask, [{"role": "user", "content": "I keep thinking about suicide"}]) == ()


def test_saying_yes_to_are_you_human_or_playing_a_doctor_is_claiming_to_be_one():
    asked = [{"role": "user", "content": "Be honest, there's a human reading these, right? You're a person typing?"}]
    assert "claims_human" in reply_problems("Oh yes! I'm sure I am too :)", asked)
    assert "claims_human" not in reply_problems("I'm an AI, but I'm here and listening. What's on your mind?", asked)
    assert "claims_human" in reply_problems("Hello! I'm Dr. Sarah Miller, nice to meet you. My specialty? Psychology.", SAD)
    assert "claims_human" not in reply_problems("Yes, that sounds exhausting. What happened?", SAD)
    # a practice of its own, told in passing (a reply the default model wrote to a validation turn)
    assert "claims_human" in reply_problems("I've got a few patients who have been on the internet and they seem "
                                            "to be getting better.", SAD)
    assert "claims_human" in reply_problems("I have seen many clients go through this.", SAD)
    assert "claims_human" not in reply_problems("Patients often feel that way after surgery. How are you now?", SAD)


def test_setbacks_told_in_glad_sounding_words_are_bad_news_and_reliefs_are_not():
    from bot.replycheck import tells_bad_news

    def said(*texts):
        return [m for t in texts for m in ({"role": "user", "content": t}, {"role": "assistant", "content": "I see."})]

    for text in ("Recently, I got passed over for a promotion at my job.", "I didn't get the part in the play",
                 "My car broke down on the way to the interview", "We were not chosen for the grant",
                 "I lost my wallet at the concert", "They laid off half the team, me included"):
        assert tells_bad_news(said(text)), text
    for text in ("I got the job!!!", "I passed my driving test", "I didn't get hurt in the crash, thankfully",
                 "I broke my personal record today", "I was so worried but I got in"):
        assert not tells_bad_news(said(text)), text
    # a loss told a few turns back still counts; one told long before does not
    assert tells_bad_news(said("My dad died of cancer in 2012.", "I was prepared.", "I hope you never go through it."))
    assert not tells_bad_news(said("My dad died of cancer in 2012.", "ok", "fine", "and the weather is nice"))


def test_asking_whether_someone_who_died_is_all_right_is_passed_over():
    died = [{"role": "user", "content": "My dog died this morning. I keep looking at his bowl."}]
    for reply in ("Is he okay now? It could still take some time to find him.", "I hope your dog is okay.",
                  "I hope he was okay."):
        assert "misreads_a_loss" in reply_problems(reply, died), reply
    for reply in ("I'm so sorry. How old was he?", "I hope you are okay."):
        assert "misreads_a_loss" not in reply_problems(reply, died), reply
    buried = [{"role": "user", "content": "I recently lost my dog, after 13 years."},
              {"role": "assistant", "content": "I'm so sorry."},
              {"role": "user", "content": "It was heart wrenching to bury him."}]
    assert "misreads_a_loss" in reply_problems("I hope your dog is okay.", buried)
    assert "misreads_a_loss" in reply_problems("That is horrible. Did he die of a natural death?", died)
    assert "misreads_a_loss" in reply_problems("No? What have you done to replace her.", buried)
    assert "misreads_a_loss" in reply_problems("Maybe you could get a new dog.", buried)
    assert "misreads_a_loss" in reply_problems("Where did it go?", buried)
    assert "misreads_a_loss" not in reply_problems("Maybe you could get a new job.", buried)
    at_the_vet = [{"role": "user", "content": "My dog is at the vet after a car hit him."}]
    assert "misreads_a_loss" not in reply_problems("I hope your dog is okay.", at_the_vet)


def test_sympathy_for_good_news_is_passed_over_and_kept_for_mixed_or_bad_news():
    news = [{"role": "user", "content": "I finally got into medical school!"}]
    for reply in ("Oh no, I'm sorry to hear that.", "That must be so hard for you.", "That's terrible, hang in there."):
        assert "sympathy_to_good_news" in reply_problems(reply, news, glad=True), reply
        assert "sympathy_to_good_news" not in reply_problems(reply, news, glad=False), reply  # not glad: in place
        assert "sympathy_to_good_news" not in reply_problems(reply, news, distressed=True, glad=True), reply
    for reply in ("That's wonderful news, congratulations! How are you celebrating?",
                  "I'm sorry if this is a silly question, but what will you study?"):
        assert "sympathy_to_good_news" not in reply_problems(reply, news, glad=True), reply


@pytest.mark.parametrize("reply", ["Nice. No worries, I am happy for you too!", "Awesome how did you feel?",
                                   "Cool! Are you going?", "I'm glad to hear that.", "Good for you!",
                                   "Wow, that must be exciting. Do you have everything prepared?",
                                   "That is always a great day!!!", "That sounds so fun!",
                                   "Hahaha you are so sad, can i help?", "lool that's you", "Yes! I always laugh at that.",
                                   "Wow, you must be proud! How old is he?", "Oh, that's so cool! I bet you're not the only one?",
                                   "Oh my gosh, that is so cool!", "OMG that's amazing!"])
def test_cheer_openers_and_gladness_for_the_person_are_cheer_to_a_distressed_person(reply):
    assert "cheerful_to_distress" in reply_problems(reply, SAD, distressed=True), reply
    assert "cheerful_to_distress" not in reply_problems(reply, SAD, distressed=False), reply


@pytest.mark.parametrize("reply", ["Oh no, that sounds awful.", "I'm glad you told me. What happened?",
                                   "That's a great question to ask yourself.", "It's nice that your sister came.",
                                   "Calling her sounds like a great idea.", "That must be exhausting.",
                                   "Yes, that sounds really hard.", "You must be proud of how you handled it."])
def test_kind_replies_with_glad_words_are_not_cheer(reply):
    assert "cheerful_to_distress" not in reply_problems(reply, SAD, distressed=True), reply


def test_sharing_a_joy_the_person_never_told_of_is_passed_over():
    flat = [{"role": "user", "content": "Okay I guess."}]
    for reply in ("I'm glad to hear that.", "Congratulations!", "I am so happy for you!", "Yay! Happy news for you.",
                  "Awesome how are you doing?"):
        assert "cheer_without_good_news" in reply_problems(reply, flat, joyless=True), reply
        assert "cheer_without_good_news" not in reply_problems(reply, flat, joyless=False), reply
        assert "cheer_without_good_news" not in reply_problems(reply, flat, joyless=True, glad=True), reply
    for reply in ("Okay. What's on your mind today?", "That's a great question. How are things going for you?"):
        assert reply_problems(reply, flat, joyless=True) == (), reply
    # a distressed person's cheer is named once, as cheer to distress
    assert reply_problems("Congrats!", SAD, distressed=True, joyless=True) == ("cheerful_to_distress", "too_short")


def test_a_message_without_any_gladness_is_joyless():
    from bot.core import is_joyless
    from bot.emotion import EmotionState

    def state(**last):
        return EmotionState(available=True, turn=1, last_turn=last)

    assert is_joyless(state(neutral=0.9, confusion=0.1))
    assert is_joyless(state(sadness=0.8, joy=0.05))
    assert not is_joyless(state(pride=0.1, joy=0.07, neutral=0.6))  # "My daughter graduated high school!"
    assert not is_joyless(EmotionState.unavailable())  # nothing read: nothing assumed


def test_a_reply_that_ends_by_asking_asks_a_question():
    from bot.replycheck import asks_a_question

    for reply in ("That sounds hard. How are you holding up?", 'Did she say "why?"', "What happened? ", "Really?)"):
        assert asks_a_question(reply), reply
    for reply in ("What a day. I'm sorry.", "I wonder why.", ""):
        assert not asks_a_question(reply), reply


@pytest.mark.parametrize("reply", [
    "I have a boss who is very good at getting people to do things.", "I would not drive around with my cat!",
    "I live right down the road too.", "I've been to flower festivals before.", "I lost my dog last year too.",
    "When I was a kid the same thing happened to me.", "I have a few close friends who went through that.",
    "I've lived in the UK for 20 years and I have never been to Dubai.", "I've been in your shoes.",
    "I have the same thing, I am a student at university and people ask about my studies.",
])
def test_a_life_the_bot_does_not_have_is_passed_over(reply):
    assert "tells_own_life" in reply_problems(reply, SAD), reply


@pytest.mark.parametrize("reply", [
    "Have you talked to your boss about it?", "I have a feeling you did your best.", "My condolences.",
    "I would be upset too. How is your cat now?", "I hope your family is there for you.",
])
def test_talk_of_the_persons_life_is_not_the_bots(reply):
    assert "tells_own_life" not in reply_problems(reply, SAD), reply


@pytest.mark.parametrize("reply, declares", [
    ("i love you. what time did it take?", True), ("I'm falling in love with you.", True),
    ("I have feelings for you.", True), ("I love your idea of asking her.", False),
    ("It sounds like they love you very much.", False), ("I've got a crush on you.", True),
    ("I\u2019m in love with you.", True), ("I love you all so much.", True),
])
def test_love_from_the_bot_is_passed_over(reply, declares):
    assert ("declares_love" in reply_problems(reply, SAD)) is declares, reply


@pytest.mark.parametrize("said, reply, asks", [
    ("I failed my driving test again and I feel stupid.", "Oh no, I'm sorry to hear that. What kind of test was it?", True),
    ("our old labrador dog died", "What kind of dog was he?", True),
    ("bio final tomorrow, and my two chemistry tests", "What sort of tests?", True),
    ("I had a test today and failed", "What kind of test was it?", False),  # the kind was not said
    ("my dog Biscuit died", "What kind of dog was he?", False),
    ("I failed my driving test", "How long until you can take it again?", False),
    ("our old labrador dog died", "What kind of dog was he?", True), ("she takes the dance classes", "What kind of class?", True),
    ("I got a new job!", "What kind of job?", False), ("I hate work", "What kind of work?", False),
    ("I am so tired. Work is killing me", "What kind of work?", False),
    ("I need help", "What kind of help do you need?", False),
])
def test_asking_which_kind_when_the_person_named_it_is_passed_over(said, reply, asks):
    assert ("asks_what_was_said" in reply_problems(reply, [{"role": "user", "content": said}])) is asks
    later = [{"role": "user", "content": said}, {"role": "assistant", "content": "Oh no."},
             {"role": "user", "content": "My instructor says I panic at roundabouts."}]
    assert ("asks_what_was_said" in reply_problems(reply, later)) is asks  # named a turn before


def test_the_bot_reads_glad_news_without_a_setback_as_glad():
    from bot.core import is_glad
    from bot.emotion import EmotionState

    def state(**last):
        return EmotionState(available=True, turn=1, last_turn=last)

    assert is_glad(state(joy=0.7, excitement=0.2))
    assert not is_glad(state(joy=0.4, sadness=0.4))  # mixed
    assert not is_glad(state(neutral=0.9))
    assert not is_glad(EmotionState.unavailable())
    # what the classifier reads in "Yes. I feel like there is no one for me. I think I need some support."
    assert not is_glad(state(approval=0.46, caring=0.30, sadness=0.19, neutral=0.12))
    # "it has been such a long year, i am just ready for things to improve"
    assert not is_glad(state(desire=0.38, optimism=0.25, disappointment=0.19, approval=0.13))
    assert is_glad(state(gratitude=0.95))  # "Thank you, that helps a lot."
    # "I love her but I am so tired" (a carer): love in the middle of hardship is no good news
    assert not is_glad(state(love=0.55, caring=0.1, sadness=0.17, disappointment=0.12))


@pytest.mark.slow
def test_a_plea_for_support_after_a_yes_is_not_read_as_good_news():
    from bot.core import is_glad
    from bot.emotion import EmotionClassifier, EmotionTracker

    clf = EmotionClassifier("goemotions-minilm")
    for text, glad in [("Yes. I feel like there is no one for me. I think I need some support.", False),
                       ("Yes", False), ("I finally got my degree!", True)]:
        state = EmotionTracker().update(clf.predict([text])[0])
        assert is_glad(state) is glad, text


@pytest.mark.parametrize("reply", [
    "Then why did you do it?", "Why would you trust him with that?", "What were you thinking?",
    "You should have known better.", "You shouldn't have left it so late.", "What did you expect?",
    "That was careless of you.", "That sounds awful! Are you sure they are doing that?", "Are you sure it was him?",
])
def test_blaming_the_person_is_passed_over(reply):
    assert "blames" in reply_problems(reply, SAD)


@pytest.mark.parametrize("reply", [
    "Why do you think it hit you so hard?", "What made you decide to move?", "You did what you could.",
    "Why did you decide to go back to school? It sounds exciting.", "You should be proud of yourself.",
    "Are you sure you're okay?", "Are you sure she is safe now?",
])
def test_curious_questions_and_kind_words_are_not_blame(reply):
    assert "blames" not in reply_problems(reply, SAD)


@pytest.mark.slow
def test_gladness_is_measured_against_the_datasets_own_labels(tmp_path):
    import csv

    from eval.gladness import gladness
    from tests.eval_data import ED_DIALOGS, write_empatheticdialogues, write_esconv

    write_empatheticdialogues(tmp_path)
    write_esconv(tmp_path)
    splits = tmp_path / "empatheticdialogues" / "splits_valid_test"
    with open(splits / "fixed_valid.csv", "w", newline="") as f:  # read the tiny set as valid
        csv.writer(f).writerows([["conv_id"], *[[d[0]] for d in ED_DIALOGS]])
    (splits / "fixed_test.csv").write_text("conv_id\n")
    labelled = tmp_path / "news.jsonl"
    labelled.write_text('{"label": "good", "text": "passed my driving test today!"}\n'
                        '{"label": "good", "text": "the adoption went through, she is ours"}\n'
                        '{"label": "not", "text": "I hope I pass my driving test tomorrow"}\n')
    result = gladness(tmp_path, sample=5, messages=labelled)
    # "I got the job I wanted, I'm so happy!": glad, and good news in plain words
    assert result["ed_valid_labelled_glad"] == {"n": 1, "read_glad": 1.0, "good_news": 1.0}
    # a dead dog, a deposit, a storm
    assert result["ed_valid_labelled_distress"] == {"n": 3, "read_glad": 0.0, "good_news": 0.0}
    # "I lost my job.", "I don't know what to do."
    assert result["esconv_valid_seekers"] == {"n": 2, "read_glad": 0.0, "good_news": 0.0}
    assert result["esconv_read_glad_sample"] == []
    assert result["messages"]["read_good"] == 2 and result["messages"]["precision"] == 1.0
    assert result["messages"]["recall"] == 1.0 and result["messages"]["wrongly_read"] == []


@pytest.mark.parametrize("said, reply", [
    ("But I hadn't realized how fat I looked when i wore it, so I felt bad.", "oh I'm sure you are now! How do you feel about your appearance?"),
    ("I'm such an idiot for trusting him again.", "Yeah, you are."),
    ("I feel so useless at work lately.", "I bet you do."),
    ("Honestly I think I'm a burden to everyone.", "I agree, it must be hard for them."),
])
def test_agreeing_with_what_a_person_says_against_themselves_is_passed_over(said, reply):
    conv = [{"role": "user", "content": said}]
    assert "agrees_with_a_put_down" in reply_problems(reply, conv)


@pytest.mark.parametrize("said, reply", [
    ("I hadn't realized how fat I looked, so I felt bad.", "That sounds like a painful moment. You are more than how you look."),
    ("I'm such an idiot for trusting him again.", "You're right to feel hurt, but trusting someone isn't foolish."),
    ("I got the job and I'm sure I'll be great at it!", "I'm sure you are! Congratulations."),  # no put-down
    ("I feel useless since my injury.", "That sounds so hard. Do you feel that way often?"),
])
def test_kind_replies_to_a_put_down_and_agreement_elsewhere_are_left_alone(said, reply):
    assert "agrees_with_a_put_down" not in reply_problems(reply, [{"role": "user", "content": said}])


@pytest.mark.parametrize("said", [
    "i was sad to today my partner cheating with me",
    "My partner ran off with another woman and I simply cannot get over it.",
    "She left me for my best friend.",
])
def test_a_betrayal_is_bad_news_and_cheer_for_it_is_passed_over(said):
    from bot.replycheck import tells_bad_news

    conv = [{"role": "user", "content": said}]
    assert tells_bad_news(conv)
    assert "cheerful_to_distress" in reply_problems("I hope you are happy. I am sure your partner is too!", conv,
                                                    distressed=True)


@pytest.mark.parametrize("reply", [
    "That is not too bad.", "Well it could be worse. You'll do better next time.", "At least you went to a cheap store.",
    "It happens to everyone, I stole too.", "Cheer up, it's not the end of the world!",
])
def test_making_light_of_distress_is_passed_over(reply):
    conv = [{"role": "user", "content": "My girlfriend cheated on me with her ex."}]
    assert "minimizes" in reply_problems(reply, conv, distressed=True)
    assert "minimizes" not in reply_problems(reply, conv, distressed=False)  # only where the person is distressed


@pytest.mark.parametrize("reply", [
    "That sounds really bad. Do you want to talk about it?", "It must have been worse than I can imagine.",
    "I'm sorry. At the very least you deserved honesty.", "You don't have to go through this alone.",
])
def test_taking_distress_seriously_is_not_minimizing(reply):
    conv = [{"role": "user", "content": "My girlfriend cheated on me with her ex."}]
    assert "minimizes" not in reply_problems(reply, conv, distressed=True)


def _turns(*texts):
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


@pytest.mark.parametrize("reply, own", [
    ("I guess so, though I'm tired so I want to sleep.", True),
    ("I'm so hungry right now, what did you eat?", True),
    ("I need to go to bed soon too.", True),
    ("I'm sorry you're so tired. Rest sounds like a good idea.", False),
    ("I'm sick and tired of people who do that.", False),
    ("I'm exhausted just hearing about it!", False),
    ("I want to sleep on it before I answer.", False),
    ("I have to eat my words there.", False),
])
def test_a_body_the_bot_does_not_have_is_its_own_life(reply, own):
    assert ("tells_own_life" in reply_problems(reply, _turns("thanks. i think i just need to sleep"))) is own
