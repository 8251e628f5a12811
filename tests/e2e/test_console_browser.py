"""The console in a real headless Chromium (Debian's chromium + chromium-driver, via selenium),
against a local stack whose WhatsApp provider is a local stand-in.

A lead writes through the whatsapp webhook; a seller signs in, takes the conversation over,
answers (the stand-in receives it, the timeline shows it sent by her), moves the stage and
signs out. Then the refusals: another tenant's lead (404), a viewer replying (403), a form
without its CSRF token (403), ten wrong passwords (locked). Screenshots go to a temporary folder,
or to CT_SCREENSHOTS_DIR (`make screenshots` refreshes the ones in docs/), so a test run leaves
the tree as it was.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.console.users import add_user
from shared.db import Database
from tests.conftest import RunningStack, query, start_stack, stop_stack, wait_for
from tests.http import post
from tests.standins import OpenAIStandIn, ProviderStandIn

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
EVOLUTION_KEY = "evo-" + uuid.uuid4().hex
PASSWORD = "senha-do-console-1"
SCREENSHOTS = Path(os.environ.get("CT_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "ct-console-screenshots")

if CHROMIUM is None or CHROMEDRIVER is None:  # `make browser` installs them; `make test` runs it first
    pytest.fail("chromium and chromedriver are needed: run `make browser`", pytrace=False)

from selenium import webdriver  # noqa: E402 - after the check that says how to get a browser
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


def model(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The stand-in model: a fixed answer that names the lead's city when it is said."""
    said = " ".join(str(m["content"]) for m in messages if m["role"] == "user")
    facts: dict[str, Any] = {name: None for name in ("name", "city", "project_type", "floor_type", "area_m2",
                                                     "budget", "timing")}
    facts["city"] = "Campinas" if "Campinas" in said else None
    return {"reply": "Atendemos sim! Quantos m² tem o ambiente?", "lead_facts": facts, "intent": "orcamento",
            "handoff": False}


@dataclass
class Console:
    stack: RunningStack
    db: Database
    providers: ProviderStandIn
    tenant_b: str
    users: dict[str, str]  # role -> e-mail

    @property
    def url(self) -> str:
        return self.stack.url("console")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, database_url: str, database: Database) -> Iterator[Console]:
    providers = ProviderStandIn({"evolution": EVOLUTION_KEY})
    openai = OpenAIStandIn(model)  # only the settings page's simulator calls it: the assistant is off
    extra = {"EVOLUTION_API_URL": providers.url, "CT_DEFAULT_EVOLUTION_API_KEY": EVOLUTION_KEY,
             "ASSISTANT_ENABLED": "false", "CONSOLE_SESSION_SECRET": uuid.uuid4().hex * 2,
             "OPENAI_BASE_URL": f"{openai.url}/v1", "OPENAI_API_KEY": "sk-stand-in"}
    stack = start_stack(tmp_path_factory.mktemp("console-stack"), database_url, extra)
    tenant_b = f"outra-{uuid.uuid4().hex[:6]}"
    users: dict[str, str] = {}
    try:
        with database.transaction() as cur:
            cur.execute("INSERT INTO tenants (id, name) VALUES (%s, 'Outra Loja')", (tenant_b,))
            for role, tenant in (("seller", "default"), ("viewer", "default"), ("seller_b", tenant_b),
                                 ("locked", "default"), ("admin", "default")):
                email = users[role] = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
                name = {"seller": "Ana Vendedora", "admin": "Marta Admin"}.get(role, role.title())
                add_user(cur, email=email, name=name,
                         role=role if role in ("viewer", "admin") else "seller", tenant=tenant, password=PASSWORD)
        yield Console(stack, database, providers, tenant_b, users)
    finally:
        stop_stack(stack)
        providers.close()
        openai.close()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--lang=pt-BR"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def log_in(browser: WebDriver, console: Console, email: str, password: str = PASSWORD) -> None:
    browser.get(console.url + "/login")
    browser.find_element(By.ID, "email").clear()
    browser.find_element(By.ID, "email").send_keys(email)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").submit()


def text(browser: WebDriver) -> str:
    """The page's visible text; empty while a navigation replaces the document under the read."""
    try:
        return str(browser.find_element(By.TAG_NAME, "body").text)
    except (StaleElementReferenceException, NoSuchElementException):
        return ""
    except WebDriverException as exc:  # chromedriver also words a stale node as "does not belong to the document"
        if "does not belong to the document" in str(exc):
            return ""
        raise


def wait_text(browser: WebDriver, needle: str, timeout: float = 30) -> None:
    try:
        wait_for(lambda: needle in text(browser), timeout=timeout)
    except AssertionError:
        raise AssertionError(f"{needle!r} not on the page within {timeout} s; it shows:\n{text(browser)}\n"
                             f"browser log: {browser.get_log('browser')}") from None


def fetch_status(browser: WebDriver, method: str, path: str, form: dict[str, str] | None = None) -> int:
    """What the server answers the page's own fetch (same cookies), by status code."""
    script = """
        const [method, url, form, done] = arguments;
        const body = form ? new URLSearchParams(form) : undefined;
        fetch(url, {method, body, credentials: 'same-origin', redirect: 'manual'})
          .then(r => done(r.status)).catch(e => done(String(e)));
    """
    return int(browser.execute_async_script(script, method, path, form))


def csrf(browser: WebDriver) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, "input[name=csrf_token]").get_attribute("value"))


def screenshot(browser: WebDriver, name: str, width: int = 1280) -> None:
    """The whole page at `width` (the window grows to the page's height for the shot)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = browser.get_window_size()
    browser.set_window_size(width, 900)
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    browser.set_window_size(width, max(600, min(height + 140, 3000)))
    try:
        assert browser.save_screenshot(str(SCREENSHOTS / name))
    finally:
        browser.set_window_size(size["width"], size["height"])


def whatsapp_message(console: Console, phone: str, text_: str, name: str = "Carla Cliente") -> str:
    """The lead writes through the whatsapp webhook (Evolution, default tenant); its correlation id."""
    body = {"event": "messages.upsert",
            "data": {"key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False,
                             "id": uuid.uuid4().hex[:20].upper()},
                     "pushName": name, "message": {"conversation": text_}, "messageType": "conversation"}}
    answer = post(console.stack.url("whatsapp") + "/webhook/whatsapp", body)
    assert answer.status == 202, answer.text
    return str(answer.json()["correlation_id"])


def whatsapp_lead(console: Console, text_: str = "Olá! Quero orçamento de piso vinílico para 40 m²",
                  name: str = "Carla Cliente") -> dict[str, Any]:
    phone = f"55119{random.randint(10_000_000, 99_999_999)}"
    correlation_id = whatsapp_message(console, phone, text_, name)
    lead = wait_for(lambda: query(console.db, "SELECT * FROM leads WHERE phone = %s", phone))[0]
    return {**lead, "correlation_id_in": correlation_id}


def test_a_seller_answers_a_whatsapp_lead_takes_it_over_and_moves_it(console: Console, browser: WebDriver) -> None:
    lead = whatsapp_lead(console)
    whatsapp_lead(console, "Bom dia, vocês instalam porcelanato?", name="Bruno Lima")
    log_in(browser, console, console.users["seller"])
    wait_text(browser, "Conversas")
    assert browser.current_url.endswith("/inbox")
    wait_text(browser, "Carla Cliente")  # the webhook's lead, in the inbox
    assert "Assistente" in text(browser)
    # The inbox refreshes itself: a lead who writes now appears without a reload.
    whatsapp_lead(console, "Preciso de um orçamento para a cozinha", name="Dona Célia")
    wait_text(browser, "Dona Célia", timeout=10)
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#inbox-rows tr")]
    assert [r.split("\n")[0] for r in rows] == ["Carla Cliente", "Bruno Lima", "Dona Célia"]  # longest wait first
    screenshot(browser, "console-inbox.png")

    browser.find_element(By.LINK_TEXT, "Carla Cliente").click()
    wait_text(browser, "Quero orçamento de piso vinílico")
    assert lead["correlation_id_in"] in text(browser)  # each item shows its correlation id

    # A new message from the lead appears on the open page, without a reload, within seconds.
    later = whatsapp_message(console, lead["phone"], "Vocês atendem em Campinas?")
    wait_text(browser, "Vocês atendem em Campinas?", timeout=10)
    assert later in text(browser)

    browser.find_element(By.XPATH, "//button[normalize-space()='Assumir conversa']").click()
    wait_text(browser, "Você assumiu a conversa")
    wait_text(browser, "Atendimento assumido por uma pessoa")  # the writer applied it; the page polled it in
    assert query(console.db, "SELECT handled_by FROM conversations WHERE lead_id = %s",
                 lead["id"]) == [{"handled_by": "human"}]

    browser.find_element(By.ID, "reply-text").send_keys("Oi Carla, aqui é a Ana. Posso ligar amanhã às 10h?")
    browser.find_element(By.XPATH, "//button[normalize-space()='Enviar']").click()
    wait_text(browser, "Mensagem enviada para a fila de envio")
    sent = wait_for(lambda: console.providers.sent_to(lead["phone"]))
    assert sent[0].text == "Oi Carla, aqui é a Ana. Posso ligar amanhã às 10h?"
    wait_text(browser, "Ana Vendedora")  # the timeline says who sent it
    # The sender commits its row just after the provider answered: the send can be seen first.
    out = wait_for(lambda: query(console.db, "SELECT m.sent_by, u.email FROM messages m JOIN console_users u "
                                 "ON u.id = m.sent_by_user WHERE m.lead_id = %s AND m.direction = 'outbound'",
                                 lead["id"]))
    assert out == [{"sent_by": "human", "email": console.users["seller"]}]
    assert "enviada" in text(browser)

    Select(browser.find_element(By.ID, "to-stage")).select_by_value("qualificado")
    browser.find_element(By.ID, "stage-reason").send_keys("Pediu visita técnica")
    browser.find_element(By.XPATH, "//button[normalize-space()='Mover']").click()
    wait_text(browser, "Etapa: Novo → Qualificado")
    wait_text(browser, "por Ana Vendedora")
    events = query(console.db, "SELECT e.event_type, e.source, e.status FROM events e JOIN console_actions a "
                   "ON a.event_id = e.event_id WHERE a.lead_id = %s AND e.status = 'processed' ORDER BY e.id",
                   lead["id"])
    assert [e["event_type"] for e in events] == ["handoff_requested", "reply_requested", "stage_changed"]
    assert {e["source"] for e in events} == {"console"}
    browser.find_element(By.ID, "note-body").send_keys("Cliente prefere contato de manhã.")
    browser.find_element(By.XPATH, "//button[normalize-space()='Salvar nota']").click()
    wait_text(browser, "Nota de Ana Vendedora")
    assert "Cliente prefere contato de manhã." in text(browser)
    screenshot(browser, "console-lead.png")
    screenshot(browser, "console-lead-phone.png", width=390)  # the same page on a phone-sized screen

    browser.find_element(By.XPATH, "//button[normalize-space()='Devolver ao assistente']").click()
    wait_text(browser, "Devolvido ao assistente")
    assert query(console.db, "SELECT handled_by FROM conversations WHERE lead_id = %s",
                 lead["id"]) == [{"handled_by": "assistant"}]

    browser.find_element(By.LINK_TEXT, "Funil").click()
    wait_text(browser, "Qualificado")
    screenshot(browser, "console-board.png")

    browser.find_element(By.XPATH, "//button[normalize-space()='Sair']").click()
    wait_text(browser, "Entrar no console")
    browser.get(console.url + "/inbox")
    assert browser.current_url.endswith("/login")  # the session is gone server-side too


def test_another_tenants_lead_is_not_found_by_url(console: Console, browser: WebDriver) -> None:
    lead = whatsapp_lead(console, "Mensagem do tenant padrão")
    log_in(browser, console, console.users["seller_b"])
    wait_text(browser, "Conversas")
    assert "Carla Cliente" not in text(browser)
    browser.get(f"{console.url}/leads/{lead['id']}")
    wait_text(browser, "Erro 404")
    assert "Mensagem do tenant padrão" not in browser.page_source
    assert fetch_status(browser, "GET", f"/leads/{lead['id']}") == 404
    assert fetch_status(browser, "POST", f"/leads/{lead['id']}/note", {"csrf_token": csrf(browser), "body": "x"}) == 404


def test_a_viewer_sees_but_cannot_reply(console: Console, browser: WebDriver) -> None:
    lead = whatsapp_lead(console, "Mensagem para a leitora")
    log_in(browser, console, console.users["viewer"])
    browser.get(f"{console.url}/leads/{lead['id']}")
    wait_text(browser, "Mensagem para a leitora")
    assert "somente leitura" in text(browser)
    assert not browser.find_elements(By.ID, "reply-text")
    status = fetch_status(browser, "POST", f"/leads/{lead['id']}/reply",
                          {"csrf_token": csrf(browser), "text": "não devia sair"})
    assert status == 403
    assert not console.providers.sent_to(lead["phone"])


def test_a_form_without_its_csrf_token_is_refused(console: Console, browser: WebDriver) -> None:
    lead = whatsapp_lead(console, "Mensagem para o teste de CSRF")
    log_in(browser, console, console.users["seller"])
    browser.get(f"{console.url}/leads/{lead['id']}")
    wait_text(browser, "Mensagem para o teste de CSRF")
    browser.execute_script("document.querySelectorAll('form input[name=csrf_token]').forEach(e => e.remove())")
    browser.find_element(By.ID, "note-body").send_keys("nota sem token")
    browser.find_element(By.XPATH, "//button[normalize-space()='Salvar nota']").click()
    wait_text(browser, "Erro 403")
    assert "CSRF" in text(browser)
    assert fetch_status(browser, "POST", "/logout", {}) == 403
    assert fetch_status(browser, "POST", f"/leads/{lead['id']}/note", {"csrf_token": "forjado", "body": "x"}) == 403
    assert query(console.db, "SELECT count(*) AS n FROM console_actions WHERE lead_id = %s", lead["id"]) == [{"n": 0}]


def test_ten_wrong_passwords_lock_the_login(console: Console, browser: WebDriver) -> None:
    email = console.users["locked"]
    for attempt in range(1, 11):
        log_in(browser, console, email, password=f"errada-{attempt}")
        wait_text(browser, "bloqueado" if attempt == 10 else "E-mail ou senha incorretos")
    log_in(browser, console, email)  # the right password, while locked
    wait_text(browser, "bloqueado")
    assert not browser.current_url.endswith("/inbox")


def test_the_login_form_without_its_csrf_token_is_refused(console: Console, browser: WebDriver) -> None:
    browser.get(console.url + "/login")
    browser.execute_script("document.querySelector('input[name=csrf_token]').remove()")
    browser.find_element(By.ID, "email").send_keys(console.users["seller"])
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").submit()
    wait_text(browser, "Erro 403")


def test_an_admin_invites_a_seller_who_sets_a_password_and_signs_in(console: Console, browser: WebDriver) -> None:
    log_in(browser, console, console.users["admin"])
    browser.find_element(By.LINK_TEXT, "Equipe").click()
    wait_text(browser, "Convidar")
    email = f"novo-{uuid.uuid4().hex[:6]}@example.com"
    browser.find_element(By.ID, "invite-name").send_keys("Rafael Novo")
    browser.find_element(By.ID, "invite-email").send_keys(email)
    Select(browser.find_element(By.ID, "invite-role")).select_by_value("seller")
    browser.find_element(By.XPATH, "//button[normalize-space()='Gerar link de convite']").click()
    wait_text(browser, "Link de convite")
    link = str(browser.find_element(By.ID, "invite-link").get_attribute("value"))
    assert link.startswith(console.url + "/invite/")
    screenshot(browser, "console-team.png")
    browser.find_element(By.XPATH, "//button[normalize-space()='Sair']").click()
    wait_text(browser, "Entrar no console")

    browser.get(link)
    wait_text(browser, "Criar seu acesso")
    browser.find_element(By.ID, "password").send_keys("senha-do-rafael")
    browser.find_element(By.ID, "password2").send_keys("senha-do-rafael")
    browser.find_element(By.XPATH, "//button[normalize-space()='Criar acesso']").click()
    wait_text(browser, "Conta criada")
    log_in(browser, console, email, password="senha-do-rafael")
    wait_text(browser, "Rafael Novo (vendedor)")
    browser.get(link)
    wait_text(browser, "Erro 404")  # the link worked once


def test_an_admin_sees_the_sources_and_tries_the_assistant_in_the_simulator(console: Console,
                                                                          browser: WebDriver) -> None:
    log_in(browser, console, console.users["admin"])
    wait_text(browser, "Configurações")
    browser.find_element(By.LINK_TEXT, "Configurações").click()
    wait_text(browser, "Fontes e endereços de webhook")
    assert f"{console.stack.url('whatsapp')}/default/evolution" in text(browser)
    browser.find_element(By.ID, "sim-text").send_keys("Oi, vocês atendem em Campinas?")
    browser.find_element(By.XPATH, "//button[normalize-space()='Simular']").click()
    wait_text(browser, "Atendemos sim! Quantos m² tem o ambiente?")
    assert "city = Campinas" in text(browser) and "intenção: orcamento" in text(browser)
    browser.find_element(By.ID, "sim-text").send_keys("São 40 m²")
    browser.find_element(By.XPATH, "//button[normalize-space()='Simular']").click()
    wait_for(lambda: text(browser).count("Atendemos sim!") == 2)
    assert "São 40 m²" in text(browser) and "Oi, vocês atendem em Campinas?" in text(browser)  # the whole chat
    screenshot(browser, "console-settings.png")


def test_a_seller_cannot_open_the_settings_or_the_team(console: Console, browser: WebDriver) -> None:
    log_in(browser, console, console.users["seller"])
    wait_text(browser, "Conversas")
    assert "Configurações" not in text(browser) and "Equipe" not in text(browser)
    assert fetch_status(browser, "GET", "/settings") == 403
    assert fetch_status(browser, "GET", "/team") == 403
    assert fetch_status(browser, "POST", "/settings/simulate", {"csrf_token": csrf(browser), "text": "oi"}) == 403
