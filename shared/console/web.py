"""The console's HTTP side: routes, sessions, CSRF and roles around `queries` and `actions`.

Server-rendered Jinja2 pages; forms post normally (they work without JavaScript) and
a small script refreshes the `data-live` parts every few seconds. The order of checks
on a change is: signed in (else the login page), CSRF token (403), role (403), the
lead in the session's tenant (404), then the action.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pg8000.exceptions import DatabaseError, InterfaceError
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from shared.console import actions, queries, sessions, settings, team
from shared.console.users import MIN_PASSWORD, UserError, authenticate
from shared.db import Database
from shared.instance import PerInstance
from shared.log import get_logger, log_context
from shared.payloads import STAGES
from shared.publisher import EnvelopePublisher, PublishError

if TYPE_CHECKING:  # the assistant (its engine, models and senders' settings) loads only for the settings page
    from shared.assistant.simulator import Simulated

log = get_logger(__name__)
HERE = Path(__file__).resolve().parent
MAX_BODY_BYTES = 64 * 1024
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")  # a caller's id is kept only when it is this plain
BRT = timezone(timedelta(hours=-3), "BRT")  # Brazil has kept UTC-3 (no DST) since 2019
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
FLASH = {"role": "Perfil alterado.", "disable": "Usuário desativado; as sessões dele foram encerradas.",
         "enable": "Usuário reativado.",
         "reply": "Mensagem enviada para a fila de envio.", "takeover": "Você assumiu a conversa.",
         "handback": "Conversa devolvida ao assistente.", "stage": "Mudança de etapa registrada.",
         "note": "Nota registrada."}
FIELD_LABELS = {"text": "mensagem", "to_stage": "etapa", "reason": "motivo", "body": "nota"}

URLS = Map([
    Rule("/", endpoint="home", methods=["GET"]),
    Rule("/login", endpoint="login", methods=["GET", "POST"]),
    Rule("/logout", endpoint="logout", methods=["POST"]),
    Rule("/tenant", endpoint="tenant", methods=["GET", "POST"]),
    Rule("/inbox", endpoint="inbox", methods=["GET"]),
    Rule("/board", endpoint="board", methods=["GET"]),
    Rule("/leads/<lead_id>", endpoint="lead", methods=["GET"]),
    Rule("/leads/<lead_id>/<action>", endpoint="act", methods=["POST"]),
    Rule("/settings", endpoint="settings", methods=["GET"]),
    Rule("/settings/simulate", endpoint="simulate", methods=["POST"]),
    Rule("/team", endpoint="team", methods=["GET"]),
    Rule("/team/invite", endpoint="team_invite", methods=["POST"]),
    Rule("/team/<user_id>/<change>", endpoint="team_change", methods=["POST"]),
    Rule("/invite/<token>", endpoint="invite", methods=["GET", "POST"]),
    Rule("/assets/<name>", endpoint="static", methods=["GET"]),
], strict_slashes=False)


def base_path() -> str:
    """The path the console is served under (CONSOLE_BASE_PATH, e.g. behind a load balancer); '' by default."""
    return (os.environ.get("CONSOLE_BASE_PATH") or "").rstrip("/")


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """'agora', 'há 5 min', 'há 3 h', 'há 2 d'."""
    if when is None:
        return "—"
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    if seconds < 60:
        return "agora"
    if seconds < 3600:
        return f"há {seconds // 60} min"
    if seconds < 86400:
        return f"há {seconds // 3600} h"
    return f"há {seconds // 86400} d"


def local_time(when: datetime | None) -> str:
    return when.astimezone(BRT).strftime("%d/%m/%Y %H:%M") if when else "—"


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["ago"] = ago
    env.filters["local_time"] = local_time
    env.filters["stage_label"] = queries.stage_label
    env.globals["STAGES"] = STAGES
    return env


class Console:
    """One per instance: the pool, the publisher and the templates; `handle` serves one request."""

    def __init__(self, db: Database, publisher: EnvelopePublisher) -> None:
        self.db = db
        self.publisher = publisher
        self.templates = _environment()

    # -- plumbing -------------------------------------------------------------
    def url(self, path: str, **query: str) -> str:
        return base_path() + path + (f"?{urlencode(query)}" if query else "")

    def render(self, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("session", None)
        context.setdefault("tenants", [])
        context.setdefault("active", "")
        html = self.templates.get_template(name).render(url=self.url, **context)
        return Response(html, status=status, content_type="text/html; charset=utf-8")

    def redirect(self, path: str, **query: str) -> Response:
        return Response("", status=303, headers={"Location": self.url(path, **query)})

    def error(self, status: int, message: str, session: sessions.Session | None = None) -> Response:
        return self.render("error.html.j2", status=status, message=message, code=status, session=session)

    def handle(self, request: Request) -> Response:
        given = request.headers.get("X-Correlation-ID") or ""
        correlation_id = given if _CORRELATION_ID.fullmatch(given) else str(uuid.uuid4())
        request.max_content_length = MAX_BODY_BYTES  # forms only: a bigger body is a 413
        request.max_form_memory_size = MAX_BODY_BYTES
        with log_context(function="console", correlation_id=correlation_id):
            try:
                adapter = URLS.bind("console", path_info=request.path)
                endpoint, args = adapter.match(method=request.method)
                response = self.dispatch(request, str(endpoint), dict(args), correlation_id)
            except MethodNotAllowed:
                response = self.error(405, "Método não permitido.")
            except NotFound:
                response = self.error(404, "Página não encontrada.")
            except HTTPException as exc:
                response = self.error(exc.code or 400, "Pedido inválido.")
            except sessions.ConsoleNotConfigured:
                log.error("CONSOLE_SESSION_SECRET is not set; the console cannot serve")
                response = self.error(503, "Console não configurado.")
            except (OSError, TimeoutError, DatabaseError, InterfaceError):
                log.exception("console request failed: the database is unreachable or failing")
                response = self.error(503, "Serviço indisponível no momento. Tente de novo em instantes.")
                response.headers["Retry-After"] = "5"
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if response.content_type and response.content_type.startswith("text/html"):
                response.headers["Cache-Control"] = "no-store"
            response.headers["X-Correlation-ID"] = correlation_id
            return response

    def dispatch(self, request: Request, endpoint: str, args: dict[str, str], correlation_id: str) -> Response:
        if endpoint == "static":
            return self.static(args["name"])
        if endpoint == "login":
            return self.login(request)
        if endpoint == "invite":
            return self.accept_invite(request, args["token"])
        with self.db.transaction() as cur:
            session = sessions.lookup(cur, request.cookies.get(sessions.SESSION_COOKIE))
        if session is None:
            if request.method == "GET" and not request.args.get("part"):
                return self.redirect("/login")
            return self.error(401, "Sessão expirada. Entre novamente.")
        with log_context(user_id=session.user.id, tenant=session.tenant):
            if request.method == "POST" and not session.csrf_ok(request.form.get("csrf_token")):
                log.warning("console form refused: missing or wrong CSRF token")
                return self.error(403, "Formulário inválido ou expirado (token CSRF). Recarregue a página.", session)
            if endpoint == "logout":
                return self.logout(session)
            if endpoint == "tenant":
                return self.choose_tenant(request, session)
            if session.tenant is None:  # an operator who has not chosen a tenant yet
                return self.redirect("/tenant")
            handler: Callable[..., Response] = getattr(self, f"page_{endpoint}")
            return handler(request, session, correlation_id=correlation_id, **args)

    def static(self, name: str) -> Response:
        if name not in STATIC:
            raise NotFound()
        body = (HERE / "static" / f"{name}.j2").read_text(encoding="utf-8")
        return Response(body, content_type=STATIC[name], headers={"Cache-Control": "public, max-age=300"})

    # -- signing in and out ---------------------------------------------------
    def login(self, request: Request) -> Response:
        if request.method == "GET":
            token = sessions.login_token()
            notice = "Conta criada. Entre com o seu e-mail e a senha escolhida." if request.args.get("ok") else None
            response = self.render("login.html.j2", csrf=token, email="", message=None, notice=notice)
            response.headers.add("Set-Cookie", sessions.cookie_header(sessions.LOGIN_COOKIE, token, max_age=3600))
            return response
        if not sessions.login_token_ok(request.cookies.get(sessions.LOGIN_COOKIE), request.form.get("csrf_token")):
            log.warning("console login refused: missing or wrong CSRF token")
            return self.error(403, "Formulário inválido ou expirado (token CSRF). Recarregue a página.")
        email = (request.form.get("email") or "").strip()
        with self.db.transaction() as cur:
            result = authenticate(cur, email, request.form.get("password") or "")
            cookie = sessions.create(cur, result.user)[0] if result.user is not None else None
        if cookie is None:
            status, message = ((429, "Muitas tentativas erradas. O acesso está bloqueado por alguns minutos.")
                               if result.locked else (401, "E-mail ou senha incorretos."))
            log.warning("console login failed", extra={"locked": result.locked})
            return self.render("login.html.j2", status=status, csrf=request.form.get("csrf_token", ""),
                               email=email, message=message, notice=None)
        log.info("console login", extra={"user_id": result.user.id if result.user else None})
        response = self.redirect("/inbox")
        response.headers.add("Set-Cookie", sessions.cookie_header(sessions.SESSION_COOKIE, cookie,
                                                                  max_age=sessions.SESSION_HOURS * 3600))
        response.headers.add("Set-Cookie", sessions.cookie_header(sessions.LOGIN_COOKIE, "", max_age=0))
        return response

    def logout(self, session: sessions.Session) -> Response:
        with self.db.transaction() as cur:
            sessions.revoke(cur, session)
        response = self.redirect("/login")
        response.headers.add("Set-Cookie", sessions.cookie_header(sessions.SESSION_COOKIE, "", max_age=0))
        return response

    def choose_tenant(self, request: Request, session: sessions.Session) -> Response:
        if not session.user.is_operator:
            return self.error(403, "Só operadores escolhem o cliente.", session)
        with self.db.transaction() as cur:
            if request.method == "POST":
                if sessions.choose_tenant(cur, session, request.form.get("tenant", "")):
                    return self.redirect("/inbox")
                return self.error(404, "Cliente não encontrado.", session)
            tenants = queries.tenants(cur)
        return self.render("tenant.html.j2", session=session, tenants=tenants)

    def accept_invite(self, request: Request, token: str) -> Response:
        """The one-time link: the invited person sets a password; then they sign in."""
        with self.db.transaction() as cur:
            found = team.open_invite(cur, token)
        if found is None:
            return self.error(404, "Convite expirado ou já usado. Peça um novo ao administrador.")
        if request.method == "GET":
            csrf = sessions.login_token()
            response = self.render("invite.html.j2", csrf=csrf, invite=found, token=token, message=None)
            response.headers.add("Set-Cookie", sessions.cookie_header(sessions.LOGIN_COOKIE, csrf, max_age=3600))
            return response
        form = request.form
        if not sessions.login_token_ok(request.cookies.get(sessions.LOGIN_COOKIE), form.get("csrf_token")):
            return self.error(403, "Formulário inválido ou expirado (token CSRF). Recarregue a página.")
        password = form.get("password") or ""
        message = (f"A senha precisa de pelo menos {MIN_PASSWORD} caracteres." if len(password) < MIN_PASSWORD
                   else "As senhas não conferem." if password != form.get("password2") else None)
        if message is None:
            try:
                with self.db.transaction() as cur:
                    user = team.accept_invite(cur, token, password)
                log.info("console invitation accepted", extra={"user_id": user.id})
                return self.redirect("/login", ok="invite")
            except UserError as exc:
                message = str(exc)
        return self.render("invite.html.j2", status=400, csrf=form.get("csrf_token", ""), invite=found, token=token,
                           message=message)

    # -- pages ------------------------------------------------------------------
    def page_home(self, request: Request, session: sessions.Session, **_: Any) -> Response:
        return self.redirect("/inbox")

    def page_inbox(self, request: Request, session: sessions.Session, **_: Any) -> Response:
        assert session.tenant is not None
        with self.db.transaction() as cur:
            rows = queries.inbox(cur, session.tenant)
        template = "_inbox_rows.html.j2" if request.args.get("part") == "live" else "inbox.html.j2"
        return self.render(template, session=session, rows=rows, now=datetime.now(UTC), active="inbox")

    def page_board(self, request: Request, session: sessions.Session, **_: Any) -> Response:
        assert session.tenant is not None
        with self.db.transaction() as cur:
            columns = queries.board(cur, session.tenant)
        return self.render("board.html.j2", session=session, columns=columns, form_key=str(uuid.uuid4()),
                           active="board")

    def page_lead(self, request: Request, session: sessions.Session, lead_id: str, **_: Any) -> Response:
        assert session.tenant is not None
        with self.db.transaction() as cur:
            lead = queries.lead(cur, session.tenant, lead_id)
            if lead is None:
                return self.error(404, "Lead não encontrado.", session)
            items = queries.timeline(cur, session.tenant, str(lead["id"]))
        template = "_lead_live.html.j2" if request.args.get("part") == "live" else "lead.html.j2"
        flash = FLASH.get(request.args.get("ok", ""))
        return self.render(template, session=session, lead=lead, items=items, form_key=str(uuid.uuid4()),
                           flash=flash, flash_cid=request.args.get("cid", ""), active="inbox")

    # -- the team (admins and operators) ------------------------------------------
    def _team_page(self, session: sessions.Session, status: int = 200, **extra: Any) -> Response:
        assert session.tenant is not None
        with self.db.transaction() as cur:
            people, invites = team.members(cur, session.tenant), team.pending_invites(cur, session.tenant)
        extra.setdefault("flash", None)
        extra.setdefault("link", None)
        extra.setdefault("message", None)
        return self.render("team.html.j2", status=status, session=session, people=people, invites=invites,
                           roles=team.TEAM_ROLES, active="team", **extra)

    def _admin(self, session: sessions.Session) -> Response | None:
        if session.user.role in ("admin", "operator"):
            return None
        return self.error(403, "Só administradores gerenciam a equipe e as configurações.", session)

    def page_team(self, request: Request, session: sessions.Session, **_: Any) -> Response:
        return self._admin(session) or self._team_page(session, flash=FLASH.get(request.args.get("ok", "")))

    def page_team_invite(self, request: Request, session: sessions.Session, **_: Any) -> Response:
        if refused := self._admin(session):
            return refused
        assert session.tenant is not None
        form = request.form
        try:
            with self.db.transaction() as cur:
                token = team.invite(cur, tenant=session.tenant, email=form.get("email", ""),
                                    name=form.get("name", ""), role=form.get("role", ""), invited_by=session.user)
        except UserError as exc:
            return self._team_page(session, status=400, message=str(exc))
        link = request.host_url.rstrip("/") + self.url(f"/invite/{token}")
        log.info("console invitation made", extra={"role": form.get("role")})
        return self._team_page(session, link=link)

    def page_team_change(self, request: Request, session: sessions.Session, user_id: str, change: str,
                         **_: Any) -> Response:
        if refused := self._admin(session):
            return refused
        assert session.tenant is not None
        if change not in ("role", "disable", "enable"):
            raise NotFound()
        try:
            with self.db.transaction() as cur:
                if change == "role":
                    found = team.set_role(cur, tenant=session.tenant, user_id=user_id,
                                          role=request.form.get("role", ""), by=session.user)
                else:
                    found = team.set_active(cur, tenant=session.tenant, user_id=user_id, active=change == "enable",
                                            by=session.user)
        except UserError as exc:
            return self._team_page(session, status=400, message=str(exc))
        if not found:
            return self.error(404, "Usuário não encontrado.", session)
        return self.redirect("/team", ok=change)

    # -- settings and the assistant simulator (admins and operators) ---------------
    def _settings_page(self, session: sessions.Session, status: int = 200, sim: Simulated | None = None,
                       message: str | None = None) -> Response:
        from shared.assistant.config import get_tenant
        from shared.assistant.service import enabled
        from shared.assistant.simulator import Simulated

        assert session.tenant is not None
        with self.db.transaction() as cur:
            rows = settings.sources(cur, session.tenant)
        sim = sim or Simulated([], {})
        config = get_tenant(session.tenant)
        return self.render("settings.html.j2", status=status, session=session, sources=rows, active="settings",
                           assistant=config, assistant_on=enabled(config), sim=sim, message=message,
                           history=settings.dump_history(sim.turns, sim.known))

    def page_settings(self, request: Request, session: sessions.Session, **_: Any) -> Response:
        return self._admin(session) or self._settings_page(session)

    def page_simulate(self, request: Request, session: sessions.Session, **_: Any) -> Response:
        from shared.assistant.config import get_tenant
        from shared.assistant.llm import get_model
        from shared.assistant.simulator import simulate

        if refused := self._admin(session):
            return refused
        assert session.tenant is not None
        try:
            turns, known = settings.parse_history(request.form.get("history", ""))
        except settings.BadHistory:
            return self._settings_page(session, status=400, message="Conversa do simulador inválida; recomece.")
        text = (request.form.get("text") or "").strip()
        if not text:
            return self._settings_page(session, status=400, message="Escreva a mensagem do lead (text).")
        sim = simulate(get_tenant(session.tenant), turns, known, text[:settings.MAX_TEXT], get_model())
        return self._settings_page(session, sim=sim)

    # -- changes: each one an event -----------------------------------------------
    def page_act(self, request: Request, session: sessions.Session, lead_id: str, action: str,
                 correlation_id: str) -> Response:
        assert session.tenant is not None
        if action not in ("reply", "takeover", "handback", "stage", "note"):
            raise NotFound()
        if not session.user.can_write:
            log.warning("console action refused: role %s cannot %s", session.user.role, action)
            return self.error(403, "Seu perfil só pode ver: peça a um administrador para mudar.", session)
        with self.db.transaction() as cur:
            lead = queries.lead(cur, session.tenant, lead_id)
            in_reply_to = queries.last_inbound_event(cur, session.tenant, str(lead["id"])) if lead else None
        if lead is None:
            return self.error(404, "Lead não encontrado.", session)
        form = request.form
        key = form.get("form_key") or str(uuid.uuid4())
        args = (self.db, self.publisher, session.user, session.tenant, lead)
        try:
            if action in ("reply", "takeover", "handback") and lead["conversation_id"] is None:
                return self.error(409, "Este lead não tem conversa no WhatsApp.", session)
            if action == "reply":
                if lead["handled_by"] != "human":  # a person answering takes the conversation over first
                    actions.handoff(*args, to="human", form_key=key + ":takeover", correlation_id=correlation_id)
                done = actions.reply(*args, text=form.get("text", ""), in_reply_to=in_reply_to, form_key=key,
                                     correlation_id=correlation_id)
            elif action in ("takeover", "handback"):
                done = actions.handoff(*args, to="human" if action == "takeover" else "assistant", form_key=key,
                                       correlation_id=correlation_id)
            elif action == "stage":
                done = actions.move_stage(*args, to_stage=form.get("to_stage", ""), reason=form.get("reason") or None,
                                          form_key=key, correlation_id=correlation_id)
            else:
                done = actions.add_note(*args, body=form.get("body", ""), form_key=key, correlation_id=correlation_id)
        except ValidationError as exc:
            fields = sorted({str(e["loc"][-1]) for e in exc.errors() if e["loc"]})
            named = ", ".join(f"{FIELD_LABELS.get(f, f)} ({f})" for f in fields) or "formulário"
            return self.error(400, f"Dados inválidos: {named}.", session)
        except PublishError:
            log.exception("console action not published")
            response = self.error(503, "Não foi possível registrar agora. Tente de novo em instantes.", session)
            response.headers["Retry-After"] = "5"
            return response
        back = form.get("back") if form.get("back") in ("board", "inbox") else None
        if back:
            return self.redirect(f"/{back}")
        return self.redirect(f"/leads/{lead['id']}", ok=action, cid=done.correlation_id)


def serve(request: Request) -> Response:
    """Entry for the deployed function: the instance's console (pool and publisher made on first use)."""
    from shared.config import get_settings
    from shared.log import configure_logging

    configure_logging(get_settings().log_level)
    return _console.get().handle(request)


def _make() -> Console:
    from shared.db import get_database
    from shared.publisher import get_publisher

    return Console(get_database(), get_publisher())


_console: PerInstance[Console] = PerInstance(_make)
