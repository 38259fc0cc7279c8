"""One exception tree for the whole directory, translated at each edge.

    DirectoryError                   (500 when nothing more precise is known)
    ├── InvalidInput                 bad data from outside (files, requests, packets)
    │   ├── ConfigError              a setting (environment variable) whose value cannot be used
    │   ├── ImportFileError          a national file that cannot be loaded (path, line)
    │   ├── RuleViolation            a publication line breaking a rule (rule)
    │   ├── ListFormatError          a published list whose document is malformed (line, index)
    │   ├── LinesRejected            a publication applied with some lines rejected (CLI exit 7)
    │   ├── BerError                 a malformed or hostile LDAP packet (BER)
    │   ├── UnsupportedMediaType     a request body of a type the endpoint does not read
    │   ├── BodyTooLarge             a request body over its limit
    │   ├── MethodNotAllowed         a known path asked with another method (allowed)
    │   └── ClientGone               the client left before the end of its request
    ├── NotFound
    │   └── Gone                     a record that existed and no longer does
    ├── Unauthorized
    │   ├── BadToken                 a token that does not authenticate (operator_id)
    │   └── TokenExpired             the right token, past its expiry date
    ├── Forbidden
    ├── Conflict                     refused because of the current state (stale file, mass delete…)
    │   ├── PreconditionFailed       If-Match did not match the current version
    │   ├── MassDeletion             a list deleting too many boxes at once (figures)
    │   ├── MassDeactivation         a referential file deactivating too much at once
    │   └── ConcurrentChange         another writer changed the store meanwhile
    ├── TooManyRequests              refused for now: a rate limit or a throttle (retry_after seconds)
    │   └── TooManyConnections       more connections from one address than the server allows
    ├── Unavailable                  cannot answer for now (retry_after seconds, when known)
    │   ├── StoreUnavailable         the store failed (connection lost, database gone)
    │   └── SourceUnavailable        a remote extraction or file that cannot be read
    └── InternalError                a bug: an unexpected exception met at an edge

Every class has a stable `code` (its name unless said otherwise): problem+json
bodies carry it and the operator client rebuilds the class from it (`by_code`).
Each interface maps the tree in ONE place: HTTP (problem+json, FHIR
OperationOutcome, French error pages) in annuaire/http/errors.py, LDAP result
codes in annuaire/ldap, CLI exit codes here (`exit_code`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class DirectoryError(Exception):
    """Base of every error the directory raises on purpose."""

    exit_code = 1
    code = "DirectoryError"
    retry_after: float | None = None  # seconds after which asking again may succeed

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = cls.__name__  # stable: renaming a class is renaming its code
        _CODES.setdefault(cls.code, cls)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def members(self) -> dict[str, Any]:
        """What an answer adds to the message (problem+json extension members)."""
        return {}

    @property
    def retry_after_header(self) -> str | None:
        """Whole seconds, at least 1 (RFC 9110 delay-seconds); None when no delay is known."""
        if self.retry_after is None:
            return None
        return str(max(1, int(-(-self.retry_after // 1))))


_CODES: dict[str, type[DirectoryError]] = {"DirectoryError": DirectoryError}


def by_code(code: str | None) -> type[DirectoryError] | None:
    """The class whose `code` this is (what a remote edge answered), or None."""
    return _CODES.get(code or "")


def rebuild(code: str | None, message: str, fallback: type[DirectoryError] = DirectoryError) -> DirectoryError:
    """The error a remote edge reported, as its own class when its code is known (the message
    only: what the class holds besides is left at its defaults)."""
    cls = by_code(code) or fallback
    error = cls.__new__(cls)
    DirectoryError.__init__(error, message)
    return error


# --- bad input ----------------------------------------------------------------------


class InvalidInput(DirectoryError):
    exit_code = 2


class ConfigError(InvalidInput):
    """A setting that cannot be used; the message names its environment variable (annuaire.config)."""


class ImportFileError(InvalidInput):
    """A national file that cannot be loaded; names the file and the line."""

    path = ""
    detail = ""
    line: int | None = None

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.detail = message
        self.line = line

    def __reduce__(self):
        return ImportFileError, (self.path, self.detail, self.line)  # (raised again by the importer)


class RuleViolation(InvalidInput):
    rule = ""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule

    def members(self) -> dict[str, Any]:
        return {"rule": self.rule}


class ListFormatError(InvalidInput):
    """The document itself is malformed (not one of its values): nothing is applied."""

    line: int | None = None
    index: int | None = None

    def __init__(self, message: str, line: int | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.index = index

    def members(self) -> dict[str, Any]:
        return {"line": self.line, "index": self.index}


class LinesRejected(InvalidInput):
    """A publication that went through with some lines rejected (`annuaire publish` exits with
    its own code, after printing the report, so scripts tell it from a refusal or a network error)."""

    exit_code = 7


class BerError(InvalidInput):
    """A malformed or hostile BER encoding (an LDAP packet)."""


class UnsupportedMediaType(InvalidInput):
    pass


class BodyTooLarge(InvalidInput):
    pass


class MethodNotAllowed(InvalidInput):
    """Why a class and not a status: the Allow header is part of the answer."""

    allowed: tuple[str, ...] = ()

    def __init__(self, message: str, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allowed = allowed


class ClientGone(InvalidInput):
    """Gone, or closed for sending its body too slowly (annuaire.http.guard): nothing was applied."""

    code = "ClientDisconnect"


# --- what is not there ----------------------------------------------------------------


class NotFound(DirectoryError):
    exit_code = 3


class Gone(NotFound):
    """A record that existed and no longer does (410)."""


# --- who asks ------------------------------------------------------------------------


class Unauthorized(DirectoryError):
    exit_code = 4


class BadToken(Unauthorized):
    """A token that does not authenticate; `operator_id` is the operator it names, if it exists
    (the caller counts the failure against it and the client address). Its code is Unauthorized:
    a guess is not told whether it named an operator."""

    code = "Unauthorized"
    operator_id: int | None = None

    def __init__(self, message: str, operator_id: int | None = None) -> None:
        super().__init__(message)
        self.operator_id = operator_id


class TokenExpired(Unauthorized):
    """The operator's token, past its expiry date."""


class Forbidden(DirectoryError):
    exit_code = 4


# --- refused because of the state ----------------------------------------------------------


class Conflict(DirectoryError):
    exit_code = 5


class PreconditionFailed(Conflict):
    """If-Match did not match the domain's current version."""


class MassDeletion(Conflict):
    """A list that would delete too many boxes at once (a truncated file?)."""

    figures: Mapping[str, Any] = MappingProxyType({})

    def __init__(self, message: str, figures: dict[str, Any]) -> None:
        super().__init__(message)
        self.figures = figures

    def members(self) -> dict[str, Any]:
        return dict(self.figures)


class MassDeactivation(Conflict):
    """A referential file that would deactivate too much at once (truncated, header only?)."""


class ConcurrentChange(Conflict):
    """A concurrent writer outside the domain lock (e.g. a national import): send it again."""


# --- not now ---------------------------------------------------------------------------


class TooManyRequests(DirectoryError):
    """A rate limit or a failed-authentication throttle: retry after `retry_after` seconds."""

    exit_code = 6
    retry_after: float | None = 1.0

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyConnections(TooManyRequests):
    """A connection over the per-address cap (annuaire.http.guard)."""


class Unavailable(DirectoryError):
    """Cannot answer for now; `retry_after` seconds when the delay is known."""

    exit_code = 6

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(Unavailable):
    """The store failed under a request (connection lost, database gone)."""


class SourceUnavailable(Unavailable):
    """The source could not be read at all (network, HTTP error, missing file)."""


class InternalError(DirectoryError):
    """An unexpected exception met at an edge: a bug, logged where it is met."""
