"""The console's pages and forms (French), over the publication API's own methods.

Why through `PublicationAPI`: the dry run shown to an operator must be the one
the API would give (same parsing, same `_publish`, same If-Match), and the
sign-in the same identification and failure throttle; this module only reads
forms and draws tables. The token is read from a POST body only, kept nowhere
(the session cookie names the operator) and never logged.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from jinja2 import ChoiceLoader, FileSystemLoader
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from annuaire.config import Settings
from annuaire.console import session as sessions
from annuaire.console.spool import Spool
from annuaire.errors import (
    BadToken,
    BodyTooLarge,
    Forbidden,
    InvalidInput,
    ListFormatError,
    MassDeletion,
    NotFound,
    PreconditionFailed,
    TokenExpired,
    Unauthorized,
)
from annuaire.mailboxes import domainviews
from annuaire.mailboxes.api import PublicationAPI, _csv
from annuaire.mailboxes.operators import Operator, authenticate_dn, authenticate_token
from annuaire.mailboxes.publication import check_owner, mass_deletion
from annuaire.mailboxes.rules import normalise_domain, valid_domain
from annuaire.mailboxes.tlsident import client_dn
from annuaire.store import Store, credentials
from annuaire.store.schema import operator as operator_table
from annuaire.store.schema import run
from annuaire.store.visibility import REASONS
from annuaire.web.links import access
from annuaire.web.params import SearchParams
from annuaire.web.views import HEADERS, TEMPLATES, make_environment

CONSOLE_TEMPLATES = Path(__file__).with_name("templates")
PAGE_HEADERS = {**HEADERS, "Cache-Control": "no-store"}
FILTERS = {"toutes": "Toutes", "visibles": "Visibles du public", "masquees": "Masquées au public"}
STATUS_FR = {"ok": "publiée", "dry_run": "essai", "refused": "refusée", "running": "en cours", "failed": "échouée"}
NOTHING = "Rien n'a été publié."


class Console:
    """The handlers bound to one store, its settings and the publication API."""

    def __init__(self, store: Store, settings: Settings, spool: Spool | None = None) -> None:
        self.store = store
        self.settings = settings
        self.api = PublicationAPI(store, settings)
        self.spool = spool or Spool()
        self.env = make_environment()
        self.env.loader = ChoiceLoader([FileSystemLoader(CONSOLE_TEMPLATES), FileSystemLoader(TEMPLATES)])
        self.env.globals["reasons_fr"] = {code: r.fr for code, r in REASONS.items()}
        self._signer: sessions.Signer | None = None

    # --- plumbing -----------------------------------------------------------------------

    @property
    def signer(self) -> sessions.Signer:
        """Keyed by ANNUAIRE_SECRET, else by the store's credentials key (shared by the workers)."""
        if self._signer is None:
            base = self.settings.secret.encode() if self.settings.secret else credentials.store_key(self.store)
            self._signer = sessions.Signer(base)
        return self._signer

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("access", access(self.settings, request.url.hostname, str(request.base_url)))
        context.setdefault("params", SearchParams())
        html = self.env.get_template(name).render(request=request, **context)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def error_page(self, request: Request, status: int, title: str, message: str) -> HTMLResponse:
        signed_in = self.signer.read(request.cookies.get(sessions.COOKIE)) is not None
        return self.render(request, "console/error.html", status, title=title, message=message, signed_in=signed_in)

    def _origins(self, request: Request) -> set[str]:
        """Where the console's forms may be posted from: this server, and its public address
        (behind a proxy terminating TLS, the browser's origin is the public one)."""
        origins = {str(request.base_url).rstrip("/")}
        if self.settings.public_url:
            scheme, _, rest = self.settings.public_url.partition("://")
            origins.add(f"{scheme}://{rest.split('/', 1)[0]}")
        return origins

    def _secure(self, request: Request) -> bool:
        """Cookies are Secure when the browser reached us over TLS (here or at the public address)."""
        return request.url.scheme == "https" or self.settings.public_url.startswith("https://")

    def _set_session(self, request: Request, response: Response, session: sessions.Session) -> None:
        response.set_cookie(sessions.COOKIE, self.signer.sign(session), max_age=sessions.LIFETIME,
                            path=sessions.PATH, secure=self._secure(request), httponly=True,
                            samesite="strict")

    def _operator(self, session: sessions.Session) -> Operator | None:
        """The operator of a session, if its credential is still the one it signed in with."""
        with self.store.read() as conn:
            row = conn.execute(select(operator_table).where(operator_table.c.id == session.operator_id)).mappings().first()
        if row is None:
            return None
        if session.credential not in {self.signer.fingerprint("token:" + (row["token_hash"] or "")),
                                      self.signer.fingerprint("dn:" + (row["cert_dn"] or ""))}:
            return None
        return Operator(id=row["id"], name=row["name"], cert_dn=row["cert_dn"])

    async def _signed_in(self, request: Request) -> tuple[Operator, sessions.Session]:
        session = self.signer.read(request.cookies.get(sessions.COOKIE))
        op = await run_in_threadpool(self._operator, session) if session else None
        if session is None or op is None:
            raise Unauthorized("votre session a expiré ou vous n'êtes pas connecté : reconnectez-vous. "
                               "Rien n'a été modifié.")
        return op, session

    async def _form(self, request: Request, session: sessions.Session | None, pre: str | None = None) -> Any:
        """The posted form, after the CSRF check (and the Origin, when the browser sends it)."""
        origin = request.headers.get("origin")
        if origin and origin.rstrip("/") not in self._origins(request):
            raise Forbidden("ce formulaire ne vient pas de cette console (origine différente). Rien n'a été modifié.")
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise BodyTooLarge(f"le fichier est trop volumineux : {int(declared):,} octets, la limite est de "
                               f"{limit:,} octets. {NOTHING}".replace(",", "\u202f"))
        form = await request.form(max_files=1, max_fields=20)
        expected = session.csrf if session else pre
        if not sessions.same(str(form.get("csrf") or ""), expected):
            raise Forbidden("le formulaire a expiré ou son jeton de sécurité manque : rechargez la page et "
                            "recommencez. Rien n'a été modifié.")
        return form

    def _domain(self, request: Request, op: Operator) -> str:
        name = normalise_domain(request.path_params["domain"])
        if not valid_domain(name):
            raise NotFound(f"« {name[:80]} » n'est pas un domaine de messagerie")
        with self.store.read() as conn:
            try:
                check_owner(conn, op, name)
            except Forbidden as exc:
                raise Forbidden(f"le domaine {name} n'est pas l'un de vos domaines : vous ne pouvez ni le voir "
                                "ni le publier. Rien n'a été modifié.") from exc
        return name

    def _page(self, request: Request, session: sessions.Session, name: str, **context: Any) -> HTMLResponse:
        response = self.render(request, name, csrf=session.csrf, signed_in=True, **context)
        self._set_session(request, response, sessions.touched(session))
        return response

    # --- sign-in ------------------------------------------------------------------------

    async def sign_in_form(self, request: Request) -> Response:
        pre = request.cookies.get(sessions.PRE_COOKIE) or sessions.new_session(0, "").csrf
        notice = {"expiree": "Votre session a expiré : reconnectez-vous.",
                  "deconnecte": "Vous êtes déconnecté."}.get(request.query_params.get("motif", ""))
        response = self.render(request, "console/sign_in.html", csrf=pre, notice=notice,
                               has_certificate=client_dn(request.scope) is not None)
        response.set_cookie(sessions.PRE_COOKIE, pre, max_age=3600, path=sessions.PATH, httponly=True,
                            secure=self._secure(request), samesite="strict")
        return response

    async def sign_in(self, request: Request) -> Response:
        form = await self._form(request, None, request.cookies.get(sessions.PRE_COOKIE))
        token = str(form.get("jeton") or "").strip()
        use_cert = form.get("certificat") is not None and not token
        op, credential = await run_in_threadpool(self._authenticate, request, token, use_cert)
        response = RedirectResponse("/operateurs", status_code=303)
        self._set_session(request, response, sessions.new_session(op.id, self.signer.fingerprint(credential)))
        response.delete_cookie(sessions.PRE_COOKIE, path=sessions.PATH)
        return response

    def _authenticate(self, request: Request, token: str, use_cert: bool) -> tuple[Operator, str]:
        """The operator and the credential it proved, throttled as the API's identification is."""
        address = request.client.host if request.client else "unknown"
        throttle = self.api.throttle
        if use_cert:
            dn = client_dn(request.scope)
            if not dn:
                raise Unauthorized("aucun certificat client n'a été présenté : connectez-vous avec votre jeton, "
                                   "ou présentez un certificat enregistré (serveur en TLS)")
            throttle.check(address)
            with self.store.read() as conn:
                try:
                    op = authenticate_dn(conn, dn)
                except Unauthorized as exc:
                    throttle.failed(address)
                    raise Unauthorized("ce certificat n'est enregistré pour aucun opérateur") from exc
                cert_dn = conn.execute(select(operator_table.c.cert_dn).where(operator_table.c.id == op.id)).scalar()
            return op, "dn:" + (cert_dn or "")
        if not token:
            raise Unauthorized("saisissez le jeton d'API de l'opérateur (il commence par « ann_ »)")
        throttle.check(address)
        with self.store.read() as conn:
            try:
                op = authenticate_token(conn, token, slow_allowed=throttle.operator_open)
            except BadToken as exc:
                throttle.failed(address, exc.operator_id)
                raise Unauthorized("ce jeton n'est pas valide : vérifiez-le (il a pu être renouvelé)") from exc
            except TokenExpired as exc:
                raise Unauthorized("ce jeton a expiré : demandez-en un nouveau à l'équipe de l'annuaire") from exc
            except Unauthorized as exc:
                throttle.failed(address)
                raise Unauthorized("ce jeton n'est pas valide : vérifiez-le (il a pu être renouvelé)") from exc
            stored = conn.execute(select(operator_table.c.token_hash).where(operator_table.c.id == op.id)).scalar()
        return op, "token:" + (stored or "")

    async def sign_out(self, request: Request) -> Response:
        session = self.signer.read(request.cookies.get(sessions.COOKIE))
        await self._form(request, session, None if session else request.cookies.get(sessions.PRE_COOKIE))
        response = RedirectResponse("/operateurs/connexion?motif=deconnecte", status_code=303)
        response.delete_cookie(sessions.COOKIE, path=sessions.PATH)
        return response

    # --- pages --------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        try:
            op, session = await self._signed_in(request)
        except Unauthorized:
            expired = sessions.COOKIE in request.cookies
            return RedirectResponse("/operateurs/connexion" + ("?motif=expiree" if expired else ""), status_code=303)
        domains = await run_in_threadpool(self.api._domains, op)
        return self._page(request, session, "console/home.html", operator=op, domains=domains)

    async def domain(self, request: Request) -> Response:
        op, session = await self._signed_in(request)
        name = await run_in_threadpool(self._domain, request, op)
        q = request.query_params.get("q", "").strip()[:200]
        shown = request.query_params.get("visibilite", "toutes")
        if shown not in FILTERS:
            shown = "toutes"
        view = await run_in_threadpool(domainviews.visibility, self.store, name)
        version, _ = await run_in_threadpool(self.api._current, name)
        boxes = [b for b in view["mailboxes"]
                 if (not q or q.lower() in b["address"]) and
                 (shown == "toutes" or b["visible"] == (shown == "visibles"))]
        return self._page(request, session, "console/domain.html", operator=op, domain=name, view=view, boxes=boxes,
                          q=q, shown=shown, filters=FILTERS, version=version)

    async def dry_run(self, request: Request) -> Response:
        op, session = await self._signed_in(request)
        form = await self._form(request, session)
        name = await run_in_threadpool(self._domain, request, op)
        upload = form.get("liste")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput(f"choisissez un fichier de liste (CSV ou JSON) à envoyer. {NOTHING}")
        body = await upload.read(self.settings.max_body_bytes + 1)
        if len(body) > self.settings.max_body_bytes:
            raise BodyTooLarge(f"le fichier est trop volumineux : la limite est de {self.settings.max_body_bytes:,} "
                               f"octets. {NOTHING}".replace(",", "\u202f"))
        if not body.strip():
            raise InvalidInput(f"le fichier envoyé est vide. {NOTHING}")
        media = "application/json" if body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[") else "text/csv"
        version, boxes = await run_in_threadpool(self.api._current, name)
        report = await run_in_threadpool(self._publish, op, name, media, body, True, True, version)
        figures = mass_deletion(SimpleNamespace(deleted=report["deleted"], active_before=len(boxes)),  # type: ignore[arg-type]  # duck-typed: only .deleted and .active_before are read
                                self.settings)
        ident = await run_in_threadpool(self.spool.put, op.id, name, version, media, body)
        return self._page(request, session, "console/report.html", operator=op, domain=name, report=report,
                          figures=figures, upload=ident, version=version, filename=upload.filename[:200])

    async def publish(self, request: Request) -> Response:
        op, session = await self._signed_in(request)
        form = await self._form(request, session)
        name = await run_in_threadpool(self._domain, request, op)
        upload = await run_in_threadpool(self.spool.get, str(form.get("envoi") or ""), op.id, name)
        confirm = form.get("suppression_massive") == "oui"
        report = await run_in_threadpool(self._publish, op, name, upload.media, upload.body, False, confirm,
                                         upload.version)
        self.spool.drop(upload.ident)
        if any(report.get(k) for k in ("created", "updated", "deleted")):
            report["fhir_current"] = await run_in_threadpool(self.api._render)
        return self._page(request, session, "console/report.html", operator=op, domain=name, report=report,
                          figures=None, upload=None, version=upload.version, filename=None)

    def _publish(self, op: Operator, name: str, media: str, body: bytes, dry_run: bool, confirm: bool,
                 version: int) -> dict[str, Any]:
        """The API's PUT (same parsing and publication), its errors said in French."""
        try:
            return self.api._publish(op, name, media, None, body, dry_run, confirm, f'"{version}"')
        except ListFormatError as exc:
            where = f" (ligne {exc.line})" if exc.line else (f" (élément {exc.index + 1})" if exc.index is not None else "")
            raise ListFormatError(f"le fichier n'est pas une liste lisible{where} : {exc.message}. {NOTHING}") from exc
        except PreconditionFailed as exc:
            raise PreconditionFailed(f"la liste du domaine {name} a changé depuis l'essai (version {version}) : "
                                     f"envoyez le fichier à nouveau pour voir l'effet sur la liste actuelle. {NOTHING}") from exc
        except MassDeletion as exc:
            raise MassDeletion(f"cette liste supprimerait {exc.figures.get('would_delete')} des "
                               f"{exc.figures.get('active')} boîtes du domaine : cochez la confirmation de "
                               f"suppression massive si la liste est vraiment complète. {NOTHING}", dict(exc.figures)) from exc
        except Forbidden as exc:
            raise Forbidden(f"le domaine {name} n'est plus l'un de vos domaines. {NOTHING}") from exc
        except InvalidInput as exc:
            raise InvalidInput(f"la liste est refusée : {exc.message}. {NOTHING}") from exc

    async def history(self, request: Request) -> Response:
        op, session = await self._signed_in(request)
        name = await run_in_threadpool(self._domain, request, op)
        runs = await run_in_threadpool(self._runs, op, name)
        return self._page(request, session, "console/history.html", operator=op, domain=name, runs=runs,
                          status_fr=STATUS_FR)

    def _runs(self, op: Operator, name: str) -> list[dict[str, Any]]:
        query = (select(run.c.id, run.c.started_at, run.c.status, run.c.report)
                 .where(run.c.kind == "publication", run.c.operator_id == op.id, run.c.domain == name)
                 .order_by(run.c.id.desc()).limit(200))
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        out = []
        for r in rows:
            report = orjson.loads(r.report) if r.report else {}
            out.append({"id": r.id, "at": r.started_at, "status": r.status, "report": report,
                        "rejected": len(report.get("rejected") or [])})
        return out

    async def publication(self, request: Request) -> Response:
        op, session = await self._signed_in(request)
        raw = request.path_params["id"]
        if not raw.isdigit() or len(raw) > 18:
            raise NotFound(f"aucune publication n'a le numéro « {raw[:40]} »")
        try:
            report = await run_in_threadpool(self.api._run, op, int(raw))
        except NotFound as exc:
            raise NotFound(f"aucune de vos publications n'a le numéro {raw}") from exc
        return self._page(request, session, "console/report.html", operator=op, domain=report.get("domain"),
                          report=report, figures=None, upload=None, version=report.get("version"), filename=None,
                          past=True, status_fr=STATUS_FR)

    async def quality(self, request: Request) -> Response:
        op, session = await self._signed_in(request)
        name = await run_in_threadpool(self._domain, request, op)
        entry = await run_in_threadpool(domainviews.quality, self.store, self.settings, op.name, name)
        return self._page(request, session, "console/quality.html", operator=op, domain=name, q=entry,
                          stale_days=self.settings.stale_days)

    async def download(self, request: Request) -> Response:
        op, _ = await self._signed_in(request)
        name = await run_in_threadpool(self._domain, request, op)
        fmt = request.path_params["format"]
        if fmt not in ("csv", "json"):
            raise NotFound(f"la liste se télécharge en CSV (liste.csv) ou en JSON (liste.json), pas en « {fmt[:20]} »")
        version, boxes = await run_in_threadpool(self.api._current, name)
        stamp = time.strftime("%Y%m%d")
        disposition = {"Content-Disposition": f'attachment; filename="{name}-v{version}-{stamp}.{fmt}"',
                       "Cache-Control": "no-store", "ETag": f'"{version}"'}
        if fmt == "csv":
            return Response(_csv(boxes), media_type="text/csv; charset=utf-8", headers=disposition)
        listed = [{**mb.public(), "responsible": mb.responsible} for mb in boxes]
        return Response(orjson.dumps({"domain": name, "version": version, "mailboxes": listed}),
                        media_type="application/json", headers=disposition)

