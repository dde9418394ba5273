"""``followup serve``: the patient's questionnaire and the providers' delivery reports, on Werkzeug (WSGI).

Routes:

* ``GET /q/<token>``: the milestone's questions in the patient's language (a
  page for phones: inline CSS, no scripts, no CDN, no web fonts);
* ``POST /q/<token>``: the answers, validated by the same ``Question`` models as
  a call and recorded by :func:`core.questionnaire.submit`; a problem re-shows
  the form with the reasons; an expired, used or forged link gets a clear page
  and changes nothing;
* ``GET|POST /hooks/<channel>``: delivery reports, handed to the channel plugin,
  which verifies the signature; an unsigned request is refused (403) and logged.

The service shares core's functions with the CLI: it is the CLI's sibling, not a second application.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from core.config import ChainConfig
from core.plugins import Plugins

log = logging.getLogger("followup.web")


def create_app(url: str, config: ChainConfig, plugins: Plugins,
               clock: Callable[[], datetime] | None = None) -> Callable[..., Iterable[bytes]]:
    """The WSGI application. ``clock`` gives "now" (tests and ``--now``)."""
    from werkzeug.exceptions import HTTPException, NotFound
    from werkzeug.routing import Map, Rule
    from werkzeug.wrappers import Request, Response

    now_of = clock or (lambda: datetime.now(UTC))
    routes = Map([
        Rule("/q/<token>", endpoint="questionnaire", methods=["GET", "POST"]),
        Rule("/hooks/<channel>", endpoint="hook", methods=["GET", "POST"]),
        Rule("/healthz", endpoint="health", methods=["GET"]),
    ])

    def page(name: str, locale: str, status: int = 200, **variables: Any) -> Response:
        from core.templates import render

        variables.setdefault("milestone", None)
        html = render(f"web/{name}.html.j2", variables, locale=locale, dirs=plugins.template_dirs())
        response = Response(html, status=status, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
        return response

    def problem(exc: Any, request: Request) -> Response:
        """A spent link in the patient's language; a forged one in the browser's (else the chain's)."""
        from core.db.engine import session_scope
        from core.questionnaire import patient_locale

        found = None
        if exc.task_id is not None:
            with session_scope(url) as session:
                found = patient_locale(session, config, exc.task_id)
        if found is None:
            accept = request.headers.get("Accept-Language") or ""
            locale = config.model.defaults.locale if not accept else ("zh_CN" if accept[:2] == "zh" else "en")
            found = (locale, config.model.name.get(locale))
        status = {"forged": 404, "expired": 410, "used": 409, "closed": 409}.get(exc.kind, 400)
        return page("problem", found[0], status=status, kind=exc.kind, clinic=found[1])

    def questionnaire(request: Request, token: str) -> Response:
        from core.calls import CallError
        from core.db.engine import session_scope
        from core.messages import localize
        from core.questionnaire import TokenProblem, open_questionnaire, submit

        now = now_of()
        try:
            with session_scope(url) as session:
                opened = open_questionnaire(session, config, plugins, token, now)
                site = config.site(opened.task.site)
                view = {
                    "clinic": opened.clinic, "milestone": opened.milestone, "action": request.path,
                    "clinic_phone": site.phone or "",
                    "questions": [_question_view(q, opened.locale) for q in opened.questions],
                    "values": {}, "errors": {},
                }
                locale = opened.locale
        except TokenProblem as exc:
            return problem(exc, request)
        if request.method == "GET":
            return page("questionnaire", locale, **view)
        raw = {q["key"]: request.form.get(q["key"], "") for q in view["questions"]}
        errors = {q["key"]: _missing(locale) for q in view["questions"] if q["required"] and not raw[q["key"]].strip()}
        for q, model in zip(view["questions"], opened.questions, strict=True):
            value = raw[q["key"]]
            if value.strip() and q["key"] not in errors:
                try:
                    model.parse_answer(value)
                except ValueError as exc:
                    errors[q["key"]] = localize(exc, locale)
        if errors:
            return page("questionnaire", locale, status=422, **{**view, "values": raw, "errors": errors})
        try:
            with session_scope(url, immediate=True) as session:
                result = submit(session, config, plugins, token, raw, now)
                escalated = any(a["kind"] == "escalate" for a in result.actions)
        except TokenProblem as exc:
            return problem(exc, request)
        except CallError as exc:
            return page("questionnaire", locale, status=422,
                        **{**view, "values": raw, "errors": {"_": localize(exc, locale)}})
        return page("done", locale, escalated=escalated, **{k: view[k] for k in ("clinic", "milestone",
                                                                                  "clinic_phone")})

    def hook(request: Request, channel: str) -> Response:
        from core.channels import SignatureError, open_channel
        from core.db.engine import session_scope
        from core.outbox import apply_report

        # /hooks/<channel> (sms, wechat...) or /hooks/<provider> (aliyun, tencent, http): the configured channel
        found = next(((s, channel) for s in config.sites.values() if channel in s.channels), None) or next(
            ((s, name) for s in config.sites.values() for name, conf in s.channels.items()
             if conf.get("provider") == channel), None)
        if found is None:
            raise NotFound()
        site, channel = found
        try:
            handler = open_channel(site, channel, plugins.channels())
            query = {k: v for k, v in request.args.items()}
            if request.method == "GET":  # a provider checking the URL (WeChat: echostr)
                verify = getattr(handler, "verify", None)
                if verify is None:
                    raise SignatureError("no GET check for this channel")
                verify(query)
                return Response(query.get("echostr", "ok"), mimetype="text/plain")
            reports = handler.reports(dict(request.headers), query, request.get_data())
        except SignatureError as exc:
            log.warning("refused a delivery report to /hooks/%s from %s: %s", channel, request.remote_addr, exc)
            return Response("signature does not verify\n", status=403, mimetype="text/plain")
        except Exception as exc:  # misconfigured channel: say so without a traceback to the caller
            log.warning("delivery report to /hooks/%s not handled: %s", channel, type(exc).__name__)
            return Response("not handled\n", status=400, mimetype="text/plain")
        now = now_of()
        with session_scope(url) as session:
            applied = sum(apply_report(session, channel, r, now) for r in reports)
        return Response(f"ok {applied}\n", mimetype="text/plain")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, args = routes.bind_to_environ(environ).match()
            if endpoint == "questionnaire":
                response = questionnaire(request, **args)
            elif endpoint == "hook":
                response = hook(request, **args)
            else:
                response = Response("ok\n", mimetype="text/plain")
        except HTTPException as exc:
            response = exc.get_response(environ)  # type: ignore[assignment]
        except Exception:  # never a traceback to a patient's phone
            log.exception("request failed")
            response = Response("Sorry, something went wrong. 抱歉，出现错误。\n", status=500, mimetype="text/plain")
        return response(environ, start_response)

    return app


def _missing(locale: str) -> str:
    return "请回答这个问题。" if locale == "zh_CN" else "Please answer this question."


def _question_view(question: Any, locale: str) -> dict[str, Any]:
    options: list[tuple[str, str]] = []
    if question.type == "yes_no":
        options = [("yes", "是" if locale == "zh_CN" else "Yes"), ("no", "否" if locale == "zh_CN" else "No")]
    elif question.type == "choice":
        options = [(c.value, c.labels.get(locale)) for c in question.choices]
    return {"key": question.key, "text": question.text.get(locale), "type": question.type, "min": question.min,
            "max": question.max, "options": options, "required": question.required}


def serve(url: str, config: ChainConfig, plugins: Plugins, host: str, port: int,
          clock: Callable[[], datetime] | None = None) -> None:
    from werkzeug.serving import run_simple

    # Request lines carry questionnaire links (bearer tokens): not in the log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(host, port, create_app(url, config, plugins, clock), threaded=True, use_reloader=False)
