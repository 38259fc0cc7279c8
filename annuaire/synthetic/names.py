"""Invented French-looking names: people, communes, streets, brands.

Surnames and commune names are assembled from syllables, so they look French
(accents, hyphenated compounds, particles, a rare Œ) without being taken from
any list of real people. First names are ordinary French given names, which
identify nobody on their own.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from random import Random

FEMALE = (
    "Camille", "Hélène", "Chloé", "Zoé", "Léa", "Manon", "Inès", "Élodie", "Émilie", "Céline", "Sylvie", "Nathalie",
    "Isabelle", "Sophie", "Aurélie", "Julie", "Marie", "Anne", "Claire", "Margaux", "Anaïs", "Maëlle", "Gaëlle",
    "Noémie", "Mélanie", "Stéphanie", "Valérie", "Véronique", "Brigitte", "Françoise", "Agnès", "Bénédicte", "Cécile",
    "Danièle", "Géraldine", "Laetitia", "Mégane", "Océane", "Solène", "Eugénie", "Joséphine", "Thérèse", "Geneviève",
    "Jacqueline", "Monique", "Martine", "Christine", "Catherine", "Pascale", "Patricia", "Sandrine", "Virginie",
    "Caroline", "Charlotte", "Pauline", "Lucie", "Laura", "Sarah", "Emma", "Louise", "Alice", "Juliette", "Clémence",
    "Mathilde", "Elsa", "Maud", "Audrey", "Estelle", "Fanny", "Florence", "Hortense", "Irène", "Joëlle", "Karine",
    "Laure", "Lise", "Madeleine", "Marion", "Morgane", "Nadège", "Odile", "Perrine", "Rachel", "Romane", "Sabine",
    "Séverine", "Tiphaine", "Victoire", "Yvette", "Zélie", "Anne-Sophie", "Marie-Hélène", "Marie-Claire",
    "Anne-Laure", "Marie-Noëlle", "Noëlle", "Adèle", "Albane", "Apolline", "Bérénice", "Capucine", "Clotilde",
    "Domitille", "Gwenaëlle", "Héloïse", "Ludivine", "Maïwenn", "Nolwenn", "Ségolène", "Sidonie", "Zoë", "Amandine",
    "Coralie", "Delphine", "Emmanuelle", "Flavie", "Gisèle", "Jeanne", "Léonie", "Mireille", "Nina", "Rose", "Yasmine",
)
MALE = (
    "Thomas", "Nicolas", "Julien", "Benoît", "Jérôme", "Sébastien", "Stéphane", "François", "Frédéric", "Éric",
    "Hervé", "Gérard", "Thierry", "Pascal", "Philippe", "Laurent", "Olivier", "Christophe", "Vincent", "David",
    "Pierre", "Jean", "Michel", "Alain", "Bernard", "Daniel", "Patrick", "Dominique", "Antoine", "Mathieu",
    "Guillaume", "Romain", "Maxime", "Alexandre", "Hugo", "Lucas", "Louis", "Théo", "Noé", "Raphaël", "Gaël", "Loïc",
    "Joël", "Noël", "Mickaël", "Cédric", "Régis", "Rémi", "Rémy", "Grégoire", "Grégory", "Jérémie", "Aurélien",
    "Damien", "Fabien", "Florian", "Adrien", "Bastien", "Clément", "Étienne", "Félix", "Gaspard", "Henri",
    "Hippolyte", "Ismaël", "Jacques", "Léon", "Léo", "Luc", "Marc", "Martin", "Matthieu", "Octave", "Paul", "Quentin",
    "René", "Samuel", "Simon", "Timothée", "Tristan", "Valentin", "Xavier", "Yann", "Yves", "Baptiste", "Benjamin",
    "Arnaud", "Bruno", "Denis", "Didier", "Emmanuel", "Fabrice", "Gilles", "Jean-Baptiste", "Jean-Pierre",
    "Jean-Marc", "Jean-François", "Pierre-Yves", "Jean-Luc", "Marc-Antoine", "Paul-Henri", "Anatole", "Aymeric",
    "Côme", "Enguerrand", "Gauthier", "Hubert", "Josselin", "Mathis", "Nathan", "Sacha", "Titouan", "Yanis",
    "Zacharie", "Karim", "Mehdi", "Malik", "Youssef", "Erwan", "Goulven", "Killian", "Ronan",
)

_SUR_START = (
    "Ber", "Mar", "Lef", "Dur", "Gau", "Rou", "Char", "Mor", "Fon", "Bou", "Chev", "Gir", "Lam", "Val", "Bel",
    "Mich", "Per", "Dav", "Fau", "Gar", "Jou", "Lan", "Mal", "Nav", "Pel", "Ren", "Sau", "Tes", "Vau", "Bar",
    "Cas", "Del", "Fer", "Gal", "Hur", "Lab", "Mas", "Pon", "Ray", "Ser", "Tou", "Ver", "Bro", "Cor", "Des",
    "Gui", "Jac", "Lec", "Mon", "Pic", "Roc", "Tar", "Vil", "Bla", "Cla", "Dro", "Fla", "Gre", "Pra", "Tra",
    "Quen", "Kér", "Lég", "Bén", "Mén", "Thé", "Crè", "Gué", "Hé", "Ré", "Mé", "Pé", "Aub", "Ev", "Ol", "Ud",
)
_SUR_MID = ("ar", "el", "in", "er", "ou", "an", "on", "ol", "ill", "enn", "ass", "ot", "ri", "ti", "ve", "di")
_SUR_END = (
    "ard", "el", "in", "et", "ier", "ault", "eau", "on", "and", "ès", "ère", "ais", "oux", "ot", "ac", "y",
    "elle", "ert", "aud", "ier", "ard", "ou", "ant", "ec", "ez", "at", "ille", "erre", "ois", "oy", "eix", "ieu",
    "èvre", "é", "ié", "ël", "aël", "in", "eur", "on", "ane", "ade", "igny", "ourt", "enet", "ichon", "ardin",
    "elier", "onnet", "ereau", "iot", "aux", "as", "ène", "ède", "ègue", "ignac", "ouin", "ivet", "ache",
    "rand", "nard", "vier", "lin", "det", "bert", "niol", "ret", "zac", "mont", "geot", "dou", "chon", "lard",
)
_OE = ("Cœur", "Bœuf", "Lœuil", "Sœur", "Vœu")


_VOWELS = frozenset("aeiouyéèêëïîôûüAEIOUYÉÈ")


_CONSONANT_ENDS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _join(rng: Random, start: str, ends: tuple[str, ...]) -> str:
    """start + an ending, avoiding vowel clashes like `Bla` + `at`."""
    end = rng.choice(ends)
    if start[-1] in _VOWELS and end[0] in _VOWELS:
        consonant = _CONSONANT_ENDS.get(ends)
        if consonant is None:
            consonant = _CONSONANT_ENDS[ends] = tuple(e for e in ends if e[0] not in _VOWELS)
        end = rng.choice(consonant)
    return start + end


def surname(rng: Random) -> str:
    """One invented surname, uppercase, sometimes compound or with a particle."""
    r = rng.random()
    if r < 0.002:
        base = rng.choice(_OE) + rng.choice(("rin", "let", "lin", "ret", "nard"))
    else:
        base = rng.choice(_SUR_START)
        if rng.random() < 0.25:
            base = _join(rng, base, _SUR_MID)
        base = _join(rng, base, _SUR_END)
    name = base.upper()
    r = rng.random()
    if r < 0.04:
        name = f"{name}-{surname_plain(rng)}"
    elif r < 0.08:
        name = "LE " + name
    elif r < 0.10:
        name = "DE " + name
    elif r < 0.11:
        name = "DU " + name
    elif r < 0.115:
        name = "DE LA " + name
    elif r < 0.12 and name[0] in "AEIOUÉ":
        name = "D'" + name
    return name


def surname_plain(rng: Random) -> str:
    base = rng.choice(_SUR_START)
    if rng.random() < 0.2:
        base = _join(rng, base, _SUR_MID)
    return _join(rng, base, _SUR_END).upper()


def surname_table(rng: Random, size: int) -> list[str]:
    """`size` distinct invented surnames, in a stable order."""
    seen: dict[str, None] = {}
    while len(seen) < size:
        seen.setdefault(surname(rng), None)
    return list(seen)


# Communes: "Saint-Berville-sur-Lanne", "Montaurac", "Les Fonteaux"...
_COM_START = (
    "Ber", "Mon", "Char", "Vil", "Bel", "Font", "Roch", "Mar", "Lan", "Beau", "Cham", "Val", "Pon", "Cour", "Mont",
    "Bois", "Per", "Sau", "Lu", "Gra", "Ver", "Aur", "Bre", "Cla", "Dom", "Es", "Fre", "Gen", "Is", "Jal", "Lor",
    "Mé", "Nor", "Or", "Pré", "Quin", "Ro", "Sé", "Tri", "Vau", "Ar", "Cas", "Lé", "Sain", "Tau",
)
_COM_END = (
    "ville", "court", "mont", "ac", "an", "y", "ières", "ay", "eux", "on", "ange", "ard", "bourg", "lieu", "val",
    "ignac", "oules", "ans", "in", "ette", "agne", "ort", "anches", "el", "é", "ès", "ois", "euil", "oire",
)
_COM_SUFFIX = (
    "-sur-Lanne", "-sur-Orve", "-les-Bains", "-le-Château", "-en-Bresse", "-la-Forêt", "-sur-Mer", "-le-Vieux",
    "-d'Auron", "-en-Val", "-lès-Prés", "-sur-Cèze", "-le-Haut",
)


def commune_name(rng: Random) -> str:
    root = _join(rng, rng.choice(_COM_START), _COM_END)
    r = rng.random()
    if r < 0.12:
        root = "Saint-" + root
    elif r < 0.16:
        root = "Sainte-" + root
    elif r < 0.20:
        root = "La " + root
    elif r < 0.24:
        root = "Le " + root
    elif r < 0.26:
        root = "Les " + root
    if rng.random() < 0.12:
        root += rng.choice(_COM_SUFFIX)
    return root


STREET_TYPES = (("R", "Rue", 50), ("AV", "Avenue", 16), ("BD", "Boulevard", 7), ("CHE", "Chemin", 8),
                ("PL", "Place", 7), ("ALL", "Allée", 5), ("IMP", "Impasse", 4), ("RTE", "Route", 6))
_STREETS = (
    "DE LA GARE", "DES LILAS", "DU MOULIN", "DE LA FONTAINE", "DES ECOLES", "DE LA REPUBLIQUE", "DU STADE",
    "DES PEUPLIERS", "DES TILLEULS", "DU CHATEAU", "DE L'EGLISE", "DU MARCHE", "DES VIGNES", "DU PORT",
    "DES CHENES", "DE LA LIBERATION", "DU PARC", "DES ACACIAS", "DE LA MAIRIE", "DES JARDINS", "DU CANAL",
    "DES ROSIERS", "DE LA POSTE", "DU LAVOIR", "DES CERISIERS", "DE LA COLLINE", "DES SOURCES", "DU PRIEURE",
    "DES MARRONNIERS", "DU 8 MAI 1945", "DU 11 NOVEMBRE", "DE LA PAIX", "DES ARTISANS", "DU BOIS", "DES PRES",
    "DE LA CROIX", "DU CALVAIRE", "DES HALLES", "DU PONT", "DE LA RIVIERE", "DES MOISSONS", "DU VERGER",
)
_ADJ = ("DU CENTRE", "DE LA GARE", "DU MARCHE", "DES HALLES", "DU PARC", "DE LA MAIRIE", "DU PONT", "DES TILLEULS",
        "DU CHATEAU", "DES ECOLES", "DE LA FONTAINE", "DU PORT", "DES LILAS", "DE L'EGLISE", "DU MOULIN")
_BRAND_A = ("Lumi", "Opti", "Vizi", "Ocu", "Audi", "Sono", "Kera", "Orto", "Pedi", "Bio", "Medi", "Vita", "Nexa")
_BRAND_B = ("vue", "val", "lis", "tis", "phone", "ria", "nova", "lia", "mance", "zen", "sphère", "line", "dis")


def street_name(rng: Random, surnames: list[str]) -> str:
    if rng.random() < 0.12:
        return "DU DOCTEUR " + ascii_upper(rng.choice(surnames))
    return rng.choice(_STREETS)


def of_place(place: str) -> str:
    """French "of" before an uppercase place: DE X, D'ARLES, DU MANS (LE), DES ULIS (LES), DE LA X."""
    if place.startswith("LE "):
        return "DU " + place[3:]
    if place.startswith("LES "):
        return "DES " + place[4:]
    if place[:1] in "AEIOUYH":
        return "D'" + place
    return "DE " + place


def place_adjective(rng: Random) -> str:
    return rng.choice(_ADJ)


_LAB_B = ("val", "lis", "tis", "ria", "nova", "lia", "line", "dis", "med", "logic", "pole", "gen", "santis", "cor")


def brand(rng: Random) -> str:
    return (rng.choice(_BRAND_A) + rng.choice(_BRAND_B)).upper()


def lab_brand(rng: Random) -> str:
    return ("BIO" + rng.choice(_LAB_B)).upper() if rng.random() < 0.7 else (rng.choice(_LAB_B) + "bio").upper()


_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE"})


def strip_accents(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=1 << 18)
def ascii_upper(text: str) -> str:
    """`Saint-Étienne` -> `SAINT-ETIENNE` (AFNOR lines, company names)."""
    return strip_accents(text).upper()


_NOT_LOCAL = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


@lru_cache(maxsize=1 << 18)
def local_part(text: str) -> str:
    """`Marie-Hélène` -> `marie-helene`, `LE GALL` -> `le-gall`, `D'AUBRAC` -> `daubrac`."""
    text = strip_accents(text).lower().replace("'", "").replace(" ", "-")
    text = _DASHES.sub("-", _NOT_LOCAL.sub("", text))
    return text.strip("-") or "x"


def slug(text: str) -> str:
    """A DNS label: ASCII lowercase words joined by `-`."""
    text = strip_accents(text).lower()
    return _DASHES.sub("-", re.sub(r"[^a-z0-9]+", "-", text)).strip("-")
