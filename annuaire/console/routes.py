"""The console's routes under /operateurs, for annuaire.http.app.PROVIDERS (French error pages)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from annuaire.config import Settings
from annuaire.console.spool import Spool
from annuaire.console.views import Console
from annuaire.http.errors import Edge, FrenchPage
from annuaire.store import Store


def routes(store: Store, settings: Settings, spool: Spool | None = None) -> list[BaseRoute]:
    """Sign-in and sign-out, then per domain: list, dry run, publication, history, quality,
    downloads. `spool`: where uploads wait for their confirmation (tests give their own)."""
    c = Console(store, settings, spool)
    page = ["GET", "HEAD"]
    known = [
        Route("/operateurs", c.home, methods=page),
        Route("/operateurs/connexion", c.sign_in_form, methods=page),
        Route("/operateurs/connexion", c.sign_in, methods=["POST"]),
        Route("/operateurs/deconnexion", c.sign_out, methods=["POST"]),
        Route("/operateurs/domaines/{domain}", c.domain, methods=page),
        Route("/operateurs/domaines/{domain}/essai", c.dry_run, methods=["POST"]),
        Route("/operateurs/domaines/{domain}/publier", c.publish, methods=["POST"]),
        Route("/operateurs/domaines/{domain}/historique", c.history, methods=page),
        Route("/operateurs/domaines/{domain}/qualite", c.quality, methods=page),
        Route("/operateurs/domaines/{domain}/liste.{format:str}", c.download, methods=page),
        Route("/operateurs/publications/{id}", c.publication, methods=page),
    ]
    return [Edge("/operateurs", known, FrenchPage(c.error_page),
                 not_found="aucune page de la console n'existe à l'adresse {path}",
                 not_allowed="la méthode {method} n'est pas acceptée à l'adresse {path} (acceptées : {allowed})")]
