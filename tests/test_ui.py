"""The Gradio UI: one exchange through gradio_client, one in a real headless Chromium."""

import socket

import pytest

from bot import BotConfig, EmpatheticBot
from bot.ui import build_app
from conftest import chromium_path
from fakes import FakeReplyModel, KeywordClassifier


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(bot=None, config=None):
    demo = build_app(config, bot=bot)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def texts(chat):
    out = []
    for m in chat:
        content = m["content"]
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        out.append((m["role"], content))
    return out


@pytest.fixture
def fake_app():
    bot = EmpatheticBot(BotConfig(), reply_model=FakeReplyModel(), emotion_classifier=KeywordClassifier())
    demo, url = launch(bot)
    yield bot, url
    demo.close()


def test_emotion_panel_and_trajectory_update(fake_app):
    from gradio_client import Client

    bot, url = fake_app
    client = Client(url, verbose=False)
    box, chat, md, label, plot = client.predict("I am so sad today", api_name="/respond")
    assert box == "" and texts(chat)[0] == ("user", "I am so sad today")
    assert "sadness" in md and "Valence: **negative**" in md
    assert label["label"] == "sadness"
    box, chat, md, label, plot = client.predict("and now I am angry", api_name="/respond")
    rows = plot["data"]
    assert {r[0] for r in rows} == {1, 2}  # one point per turn
    assert "anger" in {r[1] for r in rows}
    assert len(texts(chat)) == 4


def test_bad_input_in_the_ui_keeps_the_conversation(fake_app):
    from gradio_client import Client

    bot, url = fake_app
    client = Client(url, verbose=False)
    client.predict("hello", api_name="/respond")
    box, chat, *_ = client.predict("   ", api_name="/respond")
    assert len(texts(chat)) == 2
    box, chat, *_ = client.predict("x" * 20_000, api_name="/respond")
    assert len(texts(chat)) == 2 and len(box) == 20_000  # the text is handed back to edit, not lost


def test_each_browser_session_is_its_own_conversation(fake_app):
    from gradio_client import Client

    bot, url = fake_app
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    a.predict("message from a", api_name="/respond")
    _, chat_b, *_ = b.predict("message from b", api_name="/respond")
    assert [t for _, t in texts(chat_b)][0] == "message from b" and len(texts(chat_b)) == 2
    _, chat_a, *_ = a.predict("/reset-free second", api_name="/respond")
    assert len(texts(chat_a)) == 4
    _, chat_a, *_ = a.predict(api_name="/reset")
    assert chat_a == []


def test_missing_model_shows_a_message_not_a_traceback(tmp_path):
    import urllib.request

    config = BotConfig()
    config.model.base_model = str(tmp_path / "missing-model")
    demo, url = launch(config=config)
    try:
        html = urllib.request.urlopen(url + "config").read().decode()
        assert "could not start" in html and "not found" in html and "Traceback" not in html
    finally:
        demo.close()


@pytest.mark.slow
def test_real_bot_one_exchange_with_gradio_client(real_bot):
    from gradio_client import Client

    demo, url = launch(real_bot)
    try:
        box, chat, md, label, plot = Client(url, verbose=False).predict(
            "I just moved to a new city and I don't know anyone.", api_name="/respond")
        roles = texts(chat)
        assert [r for r, _ in roles] == ["user", "assistant"] and roles[1][1].strip()
        assert "unavailable" in md
    finally:
        demo.close()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_real_browser_exchange_with_screenshot(real_bot, artifacts_dir, tmp_path):
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        pytest.skip("Debian's chromium-driver is not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium_path()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    demo, url = launch(real_bot)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 120)
        box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#message textarea")))
        box.send_keys("I have been feeling really lonely since my sister moved abroad.")
        box.send_keys(Keys.ENTER)
        # the assistant's bubble appears and fills with streamed text, then the input is cleared
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chatbot .message.bot, #chatbot [data-testid='bot']")) >= 1)
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#message textarea").get_attribute("value") == ""
                   and d.find_elements(By.CSS_SELECTOR, "#chatbot .message.bot, #chatbot [data-testid='bot']")[-1].text.strip())
        wait.until(lambda d: len(real_bot.history(real_bot.sessions()[-1])) == 2 if real_bot.sessions() else False)
        bot_text = driver.find_elements(By.CSS_SELECTOR, "#chatbot .message.bot, #chatbot [data-testid='bot']")[-1].text
        assert bot_text.strip()
        assert "unavailable" in driver.find_element(By.ID, "emotion-state").text
        driver.save_screenshot(str(artifacts_dir / "ui-chat.png"))
        assert (artifacts_dir / "ui-chat.png").stat().st_size > 10_000
    finally:
        driver.quit()
        demo.close()
