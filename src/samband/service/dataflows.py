"""The dataflow page of the service (``/dataflows/{key}``) and its JSON API: the
dataflow's document, its counts over time, its state, last and next run, its controls
(pause, writes per side, full sync: :mod:`samband.engine.dataflow_actions`), "run now"
for it alone, and a dry-run preview of its next run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from samband.docs.model import file_stem
from samband.engine.actions import ActionError
from samband.engine.run import Engine
from samband.errors import SambandError
from samband.service.chart import counts_chart
from samband.service.scheduler import NOT_FAILED
from samband.service.service import Service, dataflow_state

PREVIEW_WAIT = 30.0  # seconds a preview waits for the run in progress
PREVIEW_ROWS = 500


def url(key: str) -> str:
    return f"/dataflows/{quote(key, safe='')}"


def dataflow_data(service: Service, key: str) -> dict[str, Any]:
    """Everything the dataflow page shows (the JSON API's ``/api/dataflows/KEY``)."""
    service.dataflow_keys([key])
    view: dict[str, Any] = service.read("dataflow", key)
    ran = [run for run in view["history"] if run["ran"]]
    last = ran[-1] if ran else None
    failed_last = service.failed_last(key) or (
        last is not None and last["status"] not in NOT_FAILED
    )
    queued = {name for name, count in view["queued"].items() if count}
    flow = next(f for f in service.config.dataflows if f.key == key)
    scheduler = service.scheduler
    return {
        **view,
        "key": key,
        "url": url(key),
        "state": dataflow_state(view, queued, failed_last),
        "last_run": last,
        "next_run_at": None if view["paused"] else scheduler.due_at(key),
        "every": scheduler.intervals.get(key, scheduler.every),
        "running": scheduler.state.running_since is not None,
        "source_system": flow.source_system,
        "target_system": flow.target_system,
        "document": f"{file_stem(f'{flow.source_system}-{flow.target_system}')}.html",
    }


def document_body(service: Service, name: str) -> str:
    """The body of the dataflow's document as `samband docs --format html` writes it."""
    html = service.documents().get(name, "")
    start, end = html.find("<body>"), html.rfind("</body>")
    return html[start + len("<body>") : end] if start >= 0 and end > start else html


def preview(service: Service, key: str, wait: float = PREVIEW_WAIT) -> dict[str, Any]:
    """The plan of the dataflow's next run, from a dry run (nothing is written).  It
    takes the scheduler's turn, so it never runs beside a run of the config."""
    service.dataflow_keys([key])
    if not service.scheduler.run_lock.acquire(timeout=wait):
        raise SambandError("a run is in progress; ask for the preview again when it is done")
    try:
        engine = Engine(service.config, store_url=service.store_url)
        try:
            report = engine.sync(dry_run=True, dataflows=[key])
        finally:
            engine.close()
    finally:
        service.scheduler.run_lock.release()
    plan = [step.as_dict() for step in report.plan]
    return {
        "dataflow": key,
        "status": report.status,
        "ran": report.ran,
        "counts": report.dataflows[key].as_dict() if key in report.dataflows else {},
        "messages": report.messages,
        "plan": plan[:PREVIEW_ROWS],
        "more": max(0, len(plan) - PREVIEW_ROWS),
    }


Page = Callable[[Request, Any], Awaitable[Response]]


def routes(
    service: Service,
    *,
    page: Callable[[Page], Callable[[Request], Awaitable[Response]]],
    api: Callable[..., Callable[[Request], Awaitable[Response]]],
    refuse_form: Callable[..., Awaitable[Response | None]],
    render: Callable[..., HTMLResponse],
    can_act: Callable[[Any], bool],
) -> list[Route]:
    """The routes, given the guards of :func:`samband.service.web.create_app`."""

    async def dataflow_page(request: Request, user: Any) -> Response:
        key = str(request.path_params["key"])
        try:
            data = await run_in_threadpool(dataflow_data, service, key)
        except ValueError as exc:
            return PlainTextResponse(str(exc), status_code=404)  # the key as typed: never HTML
        except SambandError as exc:
            return render("dataflow.html", request, user, key=key, error=str(exc))
        return render(
            "dataflow.html",
            request,
            user,
            flow=data,
            key=key,
            chart=counts_chart([run for run in data["history"] if run["ran"]]),
            document=await run_in_threadpool(document_body, service, data["document"]),
            can_act=can_act(user),
            notice={
                "done": request.query_params.get("done"),
                "error": request.query_params.get("error"),
            },
        )

    def form(act: Callable[[str, Any, str], str]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request, user: Any) -> Response:
            refusal = await refuse_form(request, user, admin=True)
            if refusal is not None:
                return refusal
            key = str(request.path_params["key"])
            fields = await request.form()
            actor = user.name if user is not None else "local (no login)"
            try:
                done = await run_in_threadpool(act, key, fields, actor)
            except (SambandError, ValueError) as exc:
                return RedirectResponse(f"{url(key)}?{urlencode({'error': str(exc)})}", 303)
            return RedirectResponse(f"{url(key)}?{urlencode({'done': done})}", 303)

        return page(endpoint)

    def act(what: str, *args: Any) -> Callable[[str, str], dict[str, Any]]:
        def call(key: str, actor: str) -> dict[str, Any]:
            service.dataflow_keys([key])
            result: dict[str, Any] = service.act(actor, what, key, *args)
            return result

        return call

    def said(done: dict[str, Any]) -> str:
        return f"{done['action']}: {done['next']}"

    def run_form(key: str, fields: Any, actor: str) -> str:
        service.run_now([key], reason=f"run now by {actor}")
        return "a run of this dataflow is queued"

    async def preview_page(request: Request, user: Any) -> Response:
        refusal = await refuse_form(request, user, admin=True)
        if refusal is not None:
            return refusal
        key = str(request.path_params["key"])
        try:
            result = await run_in_threadpool(preview, service, key)
        except ValueError as exc:
            return PlainTextResponse(str(exc), status_code=404)  # the key as typed: never HTML
        except SambandError as exc:
            return RedirectResponse(f"{url(key)}?{urlencode({'error': str(exc)})}", 303)
        return render("preview.html", request, user, key=key, url=url(key), preview=result)

    # -- the JSON API -------------------------------------------------------------------
    def body(request: Request) -> dict[str, Any]:
        found = request.scope.get("samband.body")
        return found if isinstance(found, dict) else {}

    def actor_of(request: Request) -> str:
        name = request.session.get("user") if "session" in request.scope else None
        return str(name) if name else "api token"

    def on_of(request: Request) -> bool:
        on = body(request).get("on")
        if not isinstance(on, bool):
            raise ValueError('send {"on": true} or {"on": false}')
        return on

    def api_act(what: str, args: Callable[[Request], tuple[Any, ...]] = lambda r: ()) -> Any:
        def handler(request: Request) -> Any:
            key = str(request.path_params["key"])
            try:
                return act(what, *args(request))(key, actor_of(request))
            except ActionError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return api(handler, admin=True)

    def api_run(request: Request) -> Any:
        key = str(request.path_params["key"])
        service.run_now([key], reason=f"run now by {actor_of(request)}")
        return JSONResponse({"queued": True, "dataflows": [key]}, status_code=202)

    def api_view(request: Request) -> Any:
        key = str(request.path_params["key"])
        try:
            return dataflow_data(service, key)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    def api_preview(request: Request) -> Any:
        return preview(service, str(request.path_params["key"]))

    def share_args(request: Request) -> tuple[Any, ...]:
        side = body(request).get("side", "target")
        return (str(side), on_of(request))

    def form_act(what: str, args: Callable[[Any], tuple[Any, ...]] = lambda f: ()) -> Any:
        return form(lambda key, fields, actor: said(act(what, *args(fields))(key, actor)))

    def form_on(fields: Any) -> bool:
        value = str(fields.get("on", ""))
        if value not in ("on", "off"):
            raise ValueError("choose on or off")
        return value == "on"

    prefix = "/dataflows/{key:path}"
    return [
        Route(f"{prefix}/pause", form_act("pause"), methods=["POST"]),
        Route(f"{prefix}/resume", form_act("resume"), methods=["POST"]),
        Route(
            f"{prefix}/share",
            form_act("share", lambda f: (str(f.get("side", "target")), form_on(f))),
            methods=["POST"],
        ),
        Route(
            f"{prefix}/full-sync", form_act("full_sync", lambda f: (form_on(f),)), methods=["POST"]
        ),
        Route(f"{prefix}/run", form(run_form), methods=["POST"]),
        Route(f"{prefix}/preview", page(preview_page), methods=["POST"]),
        Route(prefix, page(dataflow_page)),
        Route("/api/dataflows", api(lambda r: service.read("controls"))),
        Route(f"/api{prefix}/pause", api_act("pause"), methods=["POST"]),
        Route(f"/api{prefix}/resume", api_act("resume"), methods=["POST"]),
        Route(f"/api{prefix}/share", api_act("share", share_args), methods=["POST"]),
        Route(
            f"/api{prefix}/full-sync",
            api_act("full_sync", lambda r: (on_of(r),)),
            methods=["POST"],
        ),
        Route(f"/api{prefix}/run", api(api_run, admin=True), methods=["POST"]),
        Route(f"/api{prefix}/preview", api(api_preview, admin=True), methods=["POST"]),
        Route(f"/api{prefix}", api(api_view)),
    ]
