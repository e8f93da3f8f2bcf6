"""The service's HTTP face: the pages (server-rendered), the JSON API, ``/metrics``,
``/healthz`` and ``/readyz``, the login that guards them (:mod:`.access`), and the
webhook receivers (``/hooks/SYSTEM``, :mod:`.push`).

With users configured every page needs a session and every form a CSRF token; the API
takes the session (plus the ``X-CSRF-Token`` header on a POST) or the bearer token.
Without users, :func:`check_bind` keeps the service on loopback."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from samband.engine.actions import ActionError, NoSuch
from samband.errors import SambandError
from samband.service import records
from samband.service.access import SESSION_SECONDS, Access, User, same_token
from samband.service.dataflows import routes as dataflow_routes
from samband.service.dataflows import url as dataflow_url
from samband.service.live import event_stream
from samband.service.requestlog import RequestLog
from samband.service.service import Service

SESSION_HOURS = SESSION_SECONDS // 3600
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
_templates.filters["dataflow_url"] = dataflow_url
_templates.filters["at"] = lambda value: (
    value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(value, datetime) else "—"
)
_templates.filters["when"] = lambda ts: (
    datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "—"
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, access: Access | None = None) -> str | None:
    """Why ``host`` may not be served on, or None."""
    if is_loopback(host) or (access is not None and access.login_required):
        return None
    return (
        f"serving on {host} would show your records to the network without a login: set "
        "SAMBAND_USERS_FILE (users made with samband hash-password), or bind 127.0.0.1 "
        "(the default)"
    )


def host_name(header: str) -> str:
    """The host of a Host header, without its port (``[::1]:8080`` → ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class LoopbackHostsOnly:
    """Without a login the service trusts the machine's users, so a request must name a
    loopback host: a web page whose own name was re-pointed at 127.0.0.1 (DNS
    rebinding) is then refused, and cannot read a page or act with its CSRF token.  The
    webhook receivers are exempt: each request is signed, and a proxy passes them on
    under the public name."""

    exempt = re.compile(r"/hooks/|/tenants/[^/]+/hooks/")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.exempt.match(str(scope["path"])):
            host = host_name(Headers(scope=scope).get("host", ""))
            if not is_loopback(host):
                refusal = PlainTextResponse(
                    "This service answers only to 127.0.0.1, ::1 and localhost without a "
                    "login; set SAMBAND_USERS_FILE to serve it under another name.",
                    status_code=421,
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Headers on every answer: no page may be framed by another site (a framed button
    could be clicked unseen), and a browser takes each answer as the type it says."""

    HEADERS = (
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", b"frame-ancestors 'none'"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


Handler = Callable[[Request], Awaitable[Response]]


def create_app(
    service: Service,
    access: Access | None = None,
    *,
    manage_service: bool = True,
    secure_cookies: bool = False,
    loopback_hosts: bool = False,
) -> Starlette:
    """The ASGI app.  With ``manage_service`` its lifespan starts and stops the schedule;
    ``secure_cookies`` marks the session cookie Secure (served behind HTTPS);
    ``loopback_hosts`` refuses, when no login is configured, a request naming another
    host than a loopback one (:class:`LoopbackHostsOnly`; ``samband serve`` sets it)."""
    access = access or Access()
    rules = _Rules(access)

    def page(handler: Callable[[Request, User | None], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            user = rules.session_user(request)
            if access.login_required and user is None:
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            try:
                return await handler(request, user)
            except SambandError as exc:  # the store does not answer: say so, on any page
                return _render("unavailable.html", request, user, status_code=503, error=str(exc))

        return endpoint

    def api(handler: Callable[[Request], Any], *, admin: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            refusal = rules.refuse_api(request, admin=admin)
            if refusal is not None:
                return refusal
            if request.method == "POST" and await request.body():
                try:
                    request.scope["samband.body"] = await request.json()
                except ValueError:
                    return JSONResponse({"error": "the body is not JSON"}, status_code=400)
            try:
                result = await run_in_threadpool(handler, request)
            except ActionError as exc:  # asked for what cannot be done: the caller's to mend
                status = 404 if isinstance(exc, NoSuch) else 400
                return JSONResponse({"error": str(exc)}, status_code=status)
            except SambandError as exc:
                return JSONResponse({"error": str(exc)}, status_code=503)
            except ValueError as exc:  # a malformed ref or parameter
                return JSONResponse({"error": str(exc)}, status_code=400)
            return result if isinstance(result, Response) else JSONResponse(_jsonable(result))

        return endpoint

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        ready, reason = await run_in_threadpool(service.health)
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "reason": reason},
            status_code=200 if ready else 503,
        )

    def metrics(request: Request) -> Response:
        return Response(
            service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def overview_page(request: Request, user: User | None) -> Response:
        try:
            data = await run_in_threadpool(service.overview)
        except SambandError as exc:
            data = {"error": str(exc)}
        return _render(
            "overview.html",
            request,
            user,
            **data,
            config=service.config_path,
            can_act=user is None or user.is_admin,
        )

    async def documents_page(request: Request, user: User | None) -> Response:
        try:
            names = sorted(await run_in_threadpool(service.documents))
        except SambandError as exc:
            return _render("documents.html", request, user, names=[], qa=[], error=str(exc))
        qa = await run_in_threadpool(service.qa_reports)
        return _render(
            "documents.html", request, user, names=names, qa=qa, qa_folder=service.qa_folder
        )

    async def document_page(request: Request, user: User | None) -> Response:
        documents = await run_in_threadpool(service.documents)
        name = str(request.path_params["name"])
        if name not in documents:
            return HTMLResponse("No such document.", status_code=404)
        return HTMLResponse(documents[name])

    async def qa_page(request: Request, user: User | None) -> Response:
        html = await run_in_threadpool(service.qa_report, str(request.path_params["name"]))
        if html is None:
            return PlainTextResponse("No such QA report.", status_code=404)
        return HTMLResponse(html)

    async def tenants_page(request: Request, user: User | None) -> Response:
        if service.tenants_dir is None:
            return _render("tenants.html", request, user, registry=None, status_code=404)
        data = await run_in_threadpool(service.tenants)
        return _render("tenants.html", request, user, **data)

    async def runs_page(request: Request, user: User | None) -> Response:
        runs = await run_in_threadpool(service.read, "runs", limit(request))
        return _render(
            "runs.html",
            request,
            user,
            runs=runs,
            state=service.scheduler.state,
            live=service.live.snapshot(),
        )

    def live_events(request: Request, user: User | None = None) -> Response:
        return StreamingResponse(
            event_stream(service.live),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def live_page_events(request: Request, user: User | None) -> Response:
        return live_events(request)

    async def records_page(request: Request, user: User | None) -> Response:
        found = await run_in_threadpool(records.search, service, request)
        return _render("records.html", request, user, **found)

    async def config_page(request: Request, user: User | None) -> Response:
        text = await run_in_threadpool(service.config_text)
        return _render("config.html", request, user, text=text, path=service.config_path)

    async def conflicts_page(request: Request, user: User | None) -> Response:
        rows = await run_in_threadpool(service.read, "conflicts", limit(request))
        return _render(
            "conflicts.html",
            request,
            user,
            rows=rows,
            can_act=_can_act(access, user),
            notice=_notice(request),
        )

    async def errors_page(request: Request, user: User | None) -> Response:
        rows = await run_in_threadpool(service.read, "errors", limit(request))
        return _render(
            "errors.html",
            request,
            user,
            rows=rows,
            can_act=_can_act(access, user),
            notice=_notice(request),
        )

    async def errors_csv(request: Request, user: User | None) -> Response:
        # the first page is read before the answer starts: a store that does not answer
        # is then the 503 page, not a download cut short
        first = await run_in_threadpool(service.read, "errors_export", 0)

        def pages() -> Iterator[list[list[Any]]]:
            # page by page, each read on its own: the quarantine may hold a great many
            # records, and the other pages are served meanwhile
            after, rows = first
            while rows:
                yield rows
                after, rows = service.read("errors_export", after)

        return StreamingResponse(
            _csv_stream(["ref", "dataflow", "kind", "reason", "attempts", "last"], pages()),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="quarantine.csv"'},
        )

    def form_action(back: str, act: Callable[[Any, User | None], Any]) -> Handler:
        async def endpoint(request: Request, user: User | None) -> Response:
            refusal = await rules.refuse_form(request, user, admin=True)
            if refusal is not None:
                return refusal
            form = await request.form()
            try:
                done = await run_in_threadpool(act, form, user)
            except (SambandError, ValueError) as exc:
                return RedirectResponse(f"{back}?{urlencode({'error': str(exc)})}", 303)
            return RedirectResponse(f"{back}?{urlencode({'done': _summary(done)})}", 303)

        return page(endpoint)

    async def run_now_form(request: Request, user: User | None) -> Response:
        refusal = await rules.refuse_form(request, user, admin=True)
        if refusal is not None:
            return refusal
        service.run_now()
        return RedirectResponse("/", status_code=303)

    async def login_page(request: Request) -> Response:
        if request.method == "GET":
            return _render("login.html", request, None, next=_local(request.query_params))
        form = await request.form()
        if not same_token(str(form.get("csrf", "")), request.session.get("csrf")):
            return _render(
                "login.html", request, None, error="The form expired; try again.", status_code=403
            )
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        client = request.client.host if request.client else "?"
        keys = (f"ip:{client}", f"user:{name}")
        wait = access.throttle.attempt(*keys)
        if wait:
            return _render(
                "login.html",
                request,
                None,
                status_code=429,
                error=f"Too many failed logins; try again in {int(wait) + 1} s.",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        user = await run_in_threadpool(access.authenticate, name, password)
        if user is None:  # counted as failed by attempt()
            return _render(
                "login.html", request, None, status_code=401, error="Wrong name or password."
            )
        access.throttle.succeeded(*keys)
        request.session.clear()
        request.session.update(
            user=user.name, csrf=secrets.token_urlsafe(32), sid=secrets.token_urlsafe(16)
        )
        return RedirectResponse(_local(form), status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if same_token(str(form.get("csrf", "")), request.session.get("csrf")):
            if request.session.get("sid"):  # a copy of the cookie is refused from now on
                access.sessions.end(str(request.session["sid"]))
            request.session.clear()
        return RedirectResponse("/login", status_code=303)

    def limit(request: Request) -> int:
        try:
            return max(1, min(int(request.query_params.get("limit", "100")), 1000))
        except ValueError:
            return 100

    def ref(request: Request) -> str:
        return str(request.path_params["ref"])

    def run_now(request: Request) -> Any:
        # {"dataflows": [KEY, ...]} runs only those (and the dataflows they depend on)
        dataflows = _body(request).get("dataflows")
        if dataflows is not None and (
            not isinstance(dataflows, list) or not all(isinstance(k, str) for k in dataflows)
        ):
            raise ValueError('"dataflows" must be a list of dataflow keys')
        service.run_now(dataflows, reason=f"run now by {_api_actor(request)}")
        return JSONResponse({"queued": True, "dataflows": dataflows}, status_code=202)

    routes = [
        *dataflow_routes(
            service,
            page=page,
            api=api,
            refuse_form=rules.refuse_form,
            render=_render,
            can_act=lambda user: _can_act(access, user),
        ),
        Route("/", page(overview_page)),
        Route("/run", page(run_now_form), methods=["POST"]),
        Route("/runs", page(runs_page)),
        Route("/runs/live", page(live_page_events)),
        Route("/records", page(records_page)),
        Route("/conflicts", page(conflicts_page)),
        Route(
            "/conflicts/resolve",
            form_action(
                "/conflicts",
                lambda f, u: service.act(
                    _actor(u), "resolve", _conflict_id(f), str(f.get("take", ""))
                ),
            ),
            methods=["POST"],
        ),
        Route("/errors", page(errors_page)),
        Route("/errors.csv", page(errors_csv)),
        Route(
            "/errors/retry",
            form_action(
                "/errors",
                lambda f, u: service.act(
                    _actor(u), "retry", [str(f["ref"])] if f.get("ref") else None
                ),
            ),
            methods=["POST"],
        ),
        Route(
            "/errors/dismiss",
            form_action(
                "/errors", lambda f, u: service.act(_actor(u), "dismiss", str(f.get("ref", "")))
            ),
            methods=["POST"],
        ),
        Route("/documents", page(documents_page)),
        Route("/documents/qa/{name}", page(qa_page)),
        Route("/documents/{name}", page(document_page)),
        Route("/tenants", page(tenants_page)),
        Route("/config", page(config_page)),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", api(metrics)),
        Route("/api/overview", api(lambda r: service.overview())),
        Route("/api/status", api(lambda r: service.read("status"))),
        Route("/api/systems", api(lambda r: service.systems.rows())),
        Route("/api/qa", api(lambda r: service.qa_reports())),
        Route("/api/tenants", api(lambda r: service.tenants())),
        Route("/api/runs", api(lambda r: service.read("runs", limit(r)))),
        Route("/api/runs/live", api(live_events)),
        Route("/api/conflicts", api(lambda r: service.read("conflicts", limit(r)))),
        Route("/api/errors", api(lambda r: service.read("errors", limit(r)))),
        Route("/api/records", api(lambda r: records.api(service, r))),
        Route("/api/records/{ref:path}", api(lambda r: records.group(service, ref(r)))),
        Route("/api/history/{ref:path}", api(lambda r: service.read("history", ref(r)))),
        Route("/api/run", api(run_now, admin=True), methods=["POST"]),
        Route(
            "/api/conflicts/{id:int}/resolve",
            api(
                lambda r: service.act(_api_actor(r), "resolve", r.path_params["id"], _take(r)),
                admin=True,
            ),
            methods=["POST"],
        ),
        Route(
            "/api/errors/retry",
            api(lambda r: {"queued": service.act(_api_actor(r), "retry", _refs(r))}, admin=True),
            methods=["POST"],
        ),
        Route(
            "/api/errors/dismiss",
            api(lambda r: service.act(_api_actor(r), "dismiss", _ref(r)), admin=True),
            methods=["POST"],
        ),
    ]

    # the webhook receivers: no session or CSRF token, each request signed by its system
    routes += service.receivers.routes()
    if service.tenant_hooks is not None:
        routes += service.tenant_hooks.routes()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_service:
            service.start()
        try:
            yield
        finally:
            if manage_service:
                await run_in_threadpool(service.stop)
            if service.tenant_hooks is not None:
                await service.tenant_hooks.close()

    middleware = [
        Middleware(RequestLog),
        Middleware(SecurityHeaders),
        *([Middleware(LoopbackHostsOnly)] if loopback_hosts and not access.login_required else []),
        Middleware(
            SessionMiddleware,
            secret_key=access.session_secret,
            session_cookie="samband_session",
            max_age=SESSION_HOURS * 3600,
            same_site="strict",
            https_only=secure_cookies,
        ),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.tenants = service.tenants_dir is not None  # the navigation links the page
    return app


class _Rules:
    def __init__(self, access: Access) -> None:
        self.access = access

    def session_user(self, request: Request) -> User | None:
        name, session_id = request.session.get("user"), request.session.get("sid")
        if not name or not session_id or self.access.sessions.ended(str(session_id)):
            return None
        return self.access.users.get(name)

    def refuse_api(self, request: Request, *, admin: bool) -> Response | None:
        access = self.access
        if access.bearer_ok(request.headers.get("authorization", "")):
            return None  # the API token acts for an admin
        user = self.session_user(request)
        needs_token = access.api_token is not None and not access.users
        if (access.login_required and user is None) or needs_token:
            return JSONResponse(
                {"error": "log in, or send the API token as Authorization: Bearer TOKEN"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        # a POST from a browser must carry the page's token: another site could send one
        if request.method != "GET" and not same_token(
            request.headers.get("x-csrf-token"), request.session.get("csrf")
        ):
            return JSONResponse({"error": "the X-CSRF-Token header is missing or wrong"}, 403)
        if admin and user is not None and not user.is_admin:
            return JSONResponse({"error": f"{user.name} is a viewer; this needs an admin"}, 403)
        return None

    async def refuse_form(
        self, request: Request, user: User | None, *, admin: bool
    ) -> Response | None:
        form = await request.form()
        if not same_token(str(form.get("csrf", "")), request.session.get("csrf")):
            return HTMLResponse("The form expired or did not come from this site.", 403)
        if admin and self.access.login_required and (user is None or not user.is_admin):
            return HTMLResponse("This needs an admin.", 403)
        return None


def _can_act(access: Access, user: User | None) -> bool:
    return user.is_admin if user is not None else not access.login_required


def _actor(user: User | None) -> str:
    return user.name if user is not None else "local (no login)"


def _api_actor(request: Request) -> str:
    name = request.session.get("user") if "session" in request.scope else None
    return str(name) if name else "api token"


def _body(request: Request) -> dict[str, Any]:
    body = request.scope.get("samband.body")
    return body if isinstance(body, dict) else {}


def _conflict_id(form: Any) -> int:
    text = str(form.get("id", ""))
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{text!r} is not a conflict id: `samband conflicts` lists them")
    return int(text)


def _take(request: Request) -> str:
    return str(_body(request).get("take", ""))


def _ref(request: Request) -> str:
    return str(_body(request).get("ref", ""))


def _refs(request: Request) -> list[str] | None:
    refs = _body(request).get("refs")
    if refs is None:
        return None
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise ValueError('"refs" must be a list of record refs')
    return refs


def _summary(done: Any) -> str:
    if isinstance(done, int):
        return f"{done} record(s) queued for the next run"
    if isinstance(done, dict) and done.get("next"):
        return f"{done.get('action', 'done')}: {done['next']}"
    return "done"


def _notice(request: Request) -> dict[str, str | None]:
    return {"done": request.query_params.get("done"), "error": request.query_params.get("error")}


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    return "".join(_csv_stream(columns, [[[row.get(c) for c in columns] for row in rows]]))


def _csv_stream(columns: list[str], pages: Iterable[list[list[Any]]]) -> Iterator[str]:
    """CSV text, a chunk per page of rows (each row in the order of ``columns``)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for rows in pages:
        writer.writerows([_cell(value) for value in row] for row in rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # a cell a spreadsheet would run as a formula is quoted (CSV injection)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _local(params: Any) -> str:
    """Where to go after the login: a path of this site, never another site."""
    target = str(params.get("next", "/") or "/")
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _render(
    template: str,
    request: Request,
    user: User | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **data: Any,
) -> HTMLResponse:
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    html = _templates.get_template(template).render(
        **data,
        user=user,
        csrf=request.session["csrf"],
        nav_tenants=getattr(request.app.state, "tenants", False),
    )
    return HTMLResponse(html, status_code=status_code, headers=headers)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
