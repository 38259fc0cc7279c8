"""Reading the search box (no store needed: city and family-name lookups are given)."""

from __future__ import annotations

import pytest

from annuaire.web.interpret import interpret, with_filters

CITIES = {"lyon": "Lyon", "laval": "Laval", "saint etienne": "Saint-Étienne", "paris": "Paris"}
SURNAMES = {"laval", "martin", "paris"}


def read(text: str, **kw: bool):  # type: ignore[no-untyped-def]
    return interpret(text, city=CITIES.get, surname=SURNAMES.__contains__, **kw)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dupont", {"name": ("dupont",)}),
        ("Jean-Pierre LE GOFF", {"name": ("jean", "pierre", "le", "goff")}),
        ("cardiologue", {"savoir_faire": "SM04"}),
        ("Cardiologues", {"savoir_faire": "SM04"}),
        ("médecin", {"profession": "10"}),
        ("MÉDECINS", {"profession": "10"}),
        ("infirmière", {"profession": "60"}),
        ("pharmacienne", {"profession": "21"}),
        ("kiné", {"profession": "70"}),
        ("sage-femme", {"profession": "50"}),
        ("médecin généraliste", {"savoir_faire": "SM54"}),
        ("pédiatre", {"savoir_faire": "SM40"}),
        ("psychiatre lyon", {"savoir_faire": "SM42", "city_key": "lyon"}),
        ("médecin 33", {"profession": "10", "departement": "33"}),
        ("infirmier 2A", {"profession": "60", "departement": "2A"}),
        ("971", {"departement": "971"}),
        ("Gironde", {"departement": "33"}),
        ("69003", {"postcode": "69003"}),
        ("dupont saint-étienne", {"name": ("dupont",), "city_key": "saint etienne"}),
        ("laval", {"name": ("laval",)}),  # a city, but also somebody's family name
        ("paris", {"name": ("paris",)}),
        ("martin laval", {"name": ("martin",), "city_key": "laval"}),
        # a city that is also a family name, then a city: "Nom Ville" (it was read "Ville Nom")
        ("laval lyon", {"name": ("laval",), "city_key": "lyon"}),
        ("laval saint-étienne", {"name": ("laval",), "city_key": "saint etienne"}),
        ("lyon martin", {"city_key": "lyon", "name": ("martin",)}),  # Lyon is nobody's name
        ("dentiste martin", {"profession": "40", "name": ("martin",)}),
        ("masse", {"name": ("masse",)}),  # not "masseur-kinésithérapeute"
    ],
)
def test_the_box_is_read_into_criteria(text: str, expected: dict) -> None:
    criteria = read(text)
    fields = ("name", "profession", "savoir_faire", "departement", "city_key", "postcode", "address")
    empty = {"name": ()}
    actual = {f: getattr(criteria, f) for f in fields if getattr(criteria, f) != empty.get(f)}
    assert actual == expected


def test_addresses_are_kept_whole_and_lowercased() -> None:
    criteria = read("  Jean.Martin@Medecin.MSSante.fr ")
    assert criteria.address == "jean.martin@medecin.mssante.fr"
    assert criteria.name == () and criteria.profession is None
    assert read("@ch-exemple.mssante.fr").address == "@ch-exemple.mssante.fr"


def test_as_name_reads_everything_as_a_name() -> None:
    assert read("médecin lyon", as_name=True).name == ("medecin", "lyon")
    assert not read("médecin lyon", as_name=True).interpreted
    assert read("médecin lyon").interpreted


def test_filters_win_over_the_box() -> None:
    criteria = with_filters(read("médecin 33"), profession="60", savoir_faire=None, departement=None, mailbox_type="PER")
    assert criteria.profession == "60" and criteria.departement == "33" and criteria.mailbox_type == "PER"
    assert ("Profession", "Infirmier") in criteria.understood
    assert ("Profession", "Médecin") not in criteria.understood


def test_a_place_never_cuts_a_name_in_two() -> None:
    cities = {**CITIES, "lanin": "Lanin"}
    criteria = interpret("de la lanin camille", city=cities.get, surname=lambda _: False)
    assert criteria.name == ("de", "la", "lanin", "camille") and criteria.city_key is None
    criteria = interpret("camille de la lanin", city=cities.get, surname=lambda _: False)
    assert criteria.city_key == "lanin"  # at the end it may be the place
