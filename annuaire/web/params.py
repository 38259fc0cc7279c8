"""The search form's GET parameters: read, checked, and written back into links.

Every result page is a plain GET URL (`/?q=…&profession=…&page=2`), so a
search can be bookmarked and shared. A bad value is refused with a message
naming the parameter, the value received and what is accepted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from annuaire.errors import InvalidInput
from annuaire.http.inputs import is_integer
from annuaire.web.search import MAX_PAGE
from annuaire.web.vocab import MAILBOX_TYPES, vocabulary

MAX_TEXT = 200
FIELDS = ("q", "profession", "savoir_faire", "departement", "type", "comme", "page")


@dataclass(frozen=True)
class SearchParams:
    q: str = ""
    profession: str = ""
    savoir_faire: str = ""
    departement: str = ""
    type: str = ""
    comme: str = ""  # "nom": read the whole box as a name; "structure": list the structures it names
    page: int = 1

    @property
    def blank(self) -> bool:
        """Nothing asked: the home page."""
        return not (self.q.strip() or self.profession or self.savoir_faire or self.departement or self.type)

    def url(self, **changes: object) -> str:
        """The URL of this search with some parameters changed (empty ones left out)."""
        values = asdict(replace(self, **changes))  # type: ignore[arg-type]  # changes name fields of this dataclass
        if values["page"] == 1:
            values["page"] = ""
        pairs = [(k, values[k]) for k in FIELDS if values[k] not in ("", None)]
        return "/?" + urlencode(pairs) if pairs else "/"


def read_params(query: QueryParams) -> SearchParams:
    """SearchParams from the query string; InvalidInput (in French) on a bad value."""
    vocab = vocabulary()
    q = query.get("q", "")
    if len(q) > MAX_TEXT:
        raise InvalidInput(f"La recherche est limitée à {MAX_TEXT} caractères (reçu : {len(q)}).")
    for name in FIELDS:
        if "\x00" in query.get(name, ""):
            raise InvalidInput(f"Le paramètre « {name} » contient un caractère nul, refusé.")
    return SearchParams(
        q=q,
        profession=_code(query, "profession", vocab.professions, "une profession de la liste"),
        savoir_faire=_code(query, "savoir_faire", vocab.skills, "un savoir-faire de la liste"),
        departement=_code(query, "departement", vocab.departements, "un code de département (01 à 976, 2A, 2B)"),
        type=_code(query, "type", MAILBOX_TYPES, "PER, CAB, ORG ou APP"),
        comme=_code(query, "comme", {"nom": "nom", "structure": "structure"}, "« nom », « structure » ou rien"),
        page=read_page(query),
    )


def read_page(query: QueryParams) -> int:
    raw = query.get("page", "").strip()
    if not raw:
        return 1
    if not is_integer(raw, MAX_PAGE) or int(raw) < 1:  # ASCII digits only: int('²') fails
        raise InvalidInput(
            f"Le paramètre « page » doit être un nombre entier de 1 à {MAX_PAGE} (reçu : « {raw[:40]} »)."
        )
    return int(raw)


def _code(query: QueryParams, name: str, allowed: dict[str, str], expected: str) -> str:
    raw = query.get(name, "").strip()
    if name in ("departement", "type"):
        raw = raw.upper()
    if raw and raw not in allowed:
        raise InvalidInput(f"Valeur inconnue pour « {name} » : « {raw[:40]} ». Attendu : {expected}.")
    return raw
