"""The operator side: send a list file to a directory's publication API (`annuaire publish`).

A refusal comes back as the class the server raised, rebuilt from the
problem's `code` (annuaire.errors.rebuild), so the CLI exits with its code.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from annuaire.errors import DirectoryError, InvalidInput, rebuild
from annuaire.http.errors import STATUS


def content_type(path: Path, body: bytes) -> str:
    """JSON for `.json` files (or a body starting with `{`), else the `|`-separated text layout."""
    if path.suffix.lower() == ".json" or body.lstrip()[:1] == b"{":
        return "application/json"
    return "text/csv"


def publish_file(
    server: str, token: str, domain: str, path: Path, *,
    dry_run: bool = False, confirm_mass_delete: bool = False, if_match: str | None = None,
    timeout: float = 600.0, ca: str | None = None, cert: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """PUT the file as the domain's complete list; returns the report or raises the server's problem.

    `ca`: CA bundle to verify the server; `cert`: (certificate, key) files of a TLS client certificate.
    """
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    params = {k: "true" for k, on in (("dry_run", dry_run), ("confirm_mass_delete", confirm_mass_delete)) if on}
    headers = {"Content-Type": content_type(path, body)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if if_match:
        headers["If-Match"] = if_match
    url = f"{server.rstrip('/')}/api/v1/domains/{domain}/mailboxes"
    verify: bool | ssl.SSLContext = True
    if ca or cert:
        verify = ssl.create_default_context(cafile=ca)
        if cert:
            try:
                verify.load_cert_chain(*cert)
            except (OSError, ssl.SSLError) as exc:
                raise InvalidInput(f"cannot load the client certificate {cert[0]} / {cert[1]}: {exc}") from exc
    try:
        with httpx.Client(timeout=timeout, verify=verify) as client:
            response = client.put(url, content=body, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise DirectoryError(f"cannot reach {url}: {exc}") from exc
    if response.status_code == 200:
        return response.json()
    raise refusal(response)


def refusal(response: httpx.Response) -> DirectoryError:
    """The server's problem as its error class; without a known code (a proxy's answer, say), the
    most general class of its status in the one mapping (annuaire.http.errors.STATUS)."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {}
    detail = problem.get("detail") or response.text
    statuses = (cls for cls, status in STATUS.items() if status == response.status_code)
    fallback = next(statuses, InvalidInput if 400 <= response.status_code < 500 else DirectoryError)
    code = problem.get("code") if isinstance(problem.get("code"), str) else None
    return rebuild(code, f"{response.status_code}: {detail}", fallback)
