"""Writing the world as the national files, byte for byte in the real layouts.

Lines are built by concatenating pre-joined blocks (person prefix, mode,
structure block, codes), which is the cheapest thing CPython can do, and
streamed into zip members. Compression runs in a helper thread (zlib and the
CRC release the GIL), so generation and compression use both cores.
Zip entries get a fixed date from the file timestamp: same world, same bytes.
"""

from __future__ import annotations

import os
import queue
import threading
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

from annuaire import formats
from annuaire.synthetic import names, pace
from annuaire.synthetic.mailboxes import BOX_TYPES, PER
from annuaire.synthetic.structures import (
    B_ADDRESS,
    B_BRAND,
    B_CP,
    B_DEPT,
    B_NAME,
    B_OLD_ID,
    EMPTY_BLOCK,
)
from annuaire.synthetic.tables import (
    AUTHORISATION,
    CATEGORIES,
    CIVEX,
    DES_TYPE,
    DIPLOMA_DEFAULT,
    DIPLOMAS,
    FOREIGN_DIPLOMA,
    GENRES,
    KIND_SECTOR,
    MODES,
    P_DENTIST,
    P_DOCTOR,
    P_NURSE,
    P_PHARMACIST,
    PROF_INDEX,
    PROF_LABELS,
    PROFESSIONS,
    ROLES,
    SECTIONS,
    SF_LIST,
    SF_TYPES,
    labels,
)
from annuaire.synthetic.world import World

BASE_TIME = datetime(2026, 1, 1, 3, 0)
COMPRESS_LEVEL = 1
_CHUNK_LINES = 20_000


def timestamp(day: int) -> str:
    """YYYYMMDDhhmm of day D: 2026-01-01 03:00 plus D days."""
    return (BASE_TIME + timedelta(days=day)).strftime(formats.TIMESTAMP_FORMAT)


class _Member:
    """One zip member written from a helper thread (compression off the main thread)."""

    def __init__(self, archive: zipfile.ZipFile, name: str, ts: str) -> None:
        info = zipfile.ZipInfo(name, date_time=datetime.strptime(ts, formats.TIMESTAMP_FORMAT).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]  # 3.11+; an alias of compress_level from 3.13
        info.create_system = 3
        info.external_attr = 0o644 << 16
        self._fh = archive.open(info, "w", force_zip64=True)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.lines = 0

    def _run(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                self._fh.write(chunk)
        except BaseException as exc:  # noqa: BLE001 - re-raised in close()
            self._error = exc
            while self._queue.get() is not None:
                pass

    def write_lines(self, lines: list[str]) -> None:
        self.lines += len(lines)
        self._queue.put("".join(lines).encode("utf-8"))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._fh.close()
        if self._error:
            raise self._error


class _Archive:
    """A zip written to `<name>.tmp` then renamed, so readers never see half a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.zip = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_DEFLATED, allowZip64=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.zip.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _blocks(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{c}|{label}|" for c, label in pairs]


class _Tables:
    """Pre-joined column blocks, each ending with `|`."""

    def __init__(self) -> None:
        self.civ = [f"{CIVEX[cx][0]}|{CIVEX[cx][1]}|{'MME|Madame' if f else 'M|Monsieur'}|"
                    for cx in range(len(CIVEX)) for f in (0, 1)]
        self.profcat = [[f"{p.code}|{PROF_LABELS[p.code]}|{c}|{label}|" for c, label in CATEGORIES]
                        for p in PROFESSIONS]
        sf_type = SF_TYPES["S"]
        self.sf = [f"S|{sf_type}|{code}|{label}|" for code, label in SF_LIST] + ["||||"]  # index -1 = none
        self.sf_extra = [f"C|{SF_TYPES['C']}|{code}|{label}|" for code, label in SF_LIST]
        self.mode = _blocks([(m, labels("TRE_R23-ModeExercice")[m]) if m else ("", "") for m in MODES])
        self.sector_labels = labels("TRE_R02-SecteurActivite")
        self.sector = [f"{code}|{self.sector_labels[code]}|" for code in KIND_SECTOR] + ["||"]
        self.section = _blocks(SECTIONS)
        self.role = _blocks(ROLES)
        self.genre = _blocks(GENRES)
        self.auth = [f"{p.order}|" for p in PROFESSIONS]


def write_ps_libre_acces(world: World, path: Path, ts: str, layout: str = "56", progress=None) -> dict[str, int]:
    """`PS_LibreAcces_<ts>.zip`: Personne_activite, SavoirFaire, Dipl_AutExerc."""
    if layout not in ("56", "52"):
        raise ValueError("layout must be '56' (current) or '52' (2021-2022)")
    counts: dict[str, int] = {}
    with _Archive(path) as archive:
        counts["personne_activite"] = _write_activities(world, archive.zip, ts, layout, progress)
        counts["savoir_faire"] = _write_savoir_faire(world, archive.zip, ts)
        counts["diplomes"] = _write_diplomas(world, archive.zip, ts)
    return counts


def _person_heads(world: World):
    """Yield (p, 'type|id|national|', 'nom|prenom|') for live persons, in order."""
    p_type, p_ident, p_alive = world.p_type, world.p_ident, world.p_alive
    p_last, p_first, p_female = world.p_last, world.p_first, world.p_female
    surnames, first_names = world.surnames, (names.MALE, names.FEMALE)
    for p in range(len(p_ident)):
        if p_alive[p]:
            t = p_type[p]
            ident = p_ident[p]
            yield p, f"{t}|{ident}|{t}{ident}|", f"{surnames[p_last[p]]}|{first_names[p_female[p]][p_first[p]]}|"


def _write_activities(world: World, archive: zipfile.ZipFile, ts: str, layout: str, progress) -> int:
    tables = _Tables()
    columns = formats.PERSONNE_ACTIVITE_COLUMNS if layout == "56" else formats.PERSONNE_ACTIVITE_COLUMNS_OLD
    member = _Member(archive, formats.file_name(formats.PERSONNE_ACTIVITE, ts), ts)
    st = world.structures
    sblocks = [block + "|" for block in st.block]
    sblocks.append(EMPTY_BLOCK + "|")  # index -1: no structure
    sector = [tables.sector[k] for k in st.kind]
    sector.append(tables.sector[-1])
    civ, profcat, sfb, mode_b = tables.civ, tables.profcat, tables.sf, tables.mode
    section_b, auth_b = tables.section, tables.auth
    # role + genre, pre-joined (empty for the 52-column layout)
    if layout == "56":
        tail_b = [[r + g + "\n" for g in tables.genre] for r in tables.role]
    else:
        tail_b = [["\n"] * len(tables.genre) for _ in tables.role]
    p_civex, p_female, p_prof, p_cat, p_sf = world.p_civex, world.p_female, world.p_prof, world.p_cat, world.p_sf
    p_act, p_nact = world.p_act, world.p_nact
    a_struct, a_mode, a_role, a_genre, a_section = (world.a_struct, world.a_mode, world.a_role, world.a_genre,
                                                     world.a_section)
    member.write_lines([formats.header_line(columns, True)])
    lines: list[str] = []
    append = lines.append
    if progress:
        progress.start("PS_LibreAcces_Personne_activite", len(world.p_ident),
                       pace.weight("PS_LibreAcces_Personne_activite", len(world.p_ident)), unit="professionals")
    done = 0
    for p, head, nom_prenom in _person_heads(world):
        pi = p_prof[p]
        prefix = f"{head}{civ[p_civex[p] * 2 + p_female[p]]}{nom_prenom}{profcat[pi][p_cat[p]]}{sfb[p_sf[p]]}"
        auth = auth_b[pi]
        start = p_act[p]
        for a in range(start, start + p_nact[p]):
            s = a_struct[a]
            append(f"{prefix}{mode_b[a_mode[a]]}{sblocks[s]}{auth}{sector[s]}{section_b[a_section[a]]}"
                   f"{tail_b[a_role[a]][a_genre[a]]}")
        if len(lines) >= _CHUNK_LINES:
            member.write_lines(lines)
            lines = []
            append = lines.append
            if progress:
                progress.advance(p - done)
                done = p
    member.write_lines(lines)
    member.close()
    if progress:
        progress.advance(len(world.p_ident) - done)
    return member.lines - 1


def _write_savoir_faire(world: World, archive: zipfile.ZipFile, ts: str) -> int:
    tables = _Tables()
    member = _Member(archive, formats.file_name(formats.SAVOIR_FAIRE, ts), ts)
    member.write_lines([formats.header_line(formats.SAVOIR_FAIRE_COLUMNS, True)])
    p_prof, p_cat, p_sf, sf2 = world.p_prof, world.p_cat, world.p_sf, world.p_sf2
    lines: list[str] = []
    for p, head, nom_prenom in _person_heads(world):
        sf = p_sf[p]
        extra = sf2.get(p, -1)
        if sf < 0 and extra < 0:
            continue
        prefix = head + nom_prenom + tables.profcat[p_prof[p]][p_cat[p]]
        if sf >= 0:
            lines.append(prefix + tables.sf[sf] + "\n")
        if extra >= 0:
            lines.append(prefix + tables.sf_extra[extra] + "\n")
        if len(lines) >= _CHUNK_LINES:
            member.write_lines(lines)
            lines = []
    member.write_lines(lines)
    member.close()
    return member.lines - 1


def _write_diplomas(world: World, archive: zipfile.ZipFile, ts: str) -> int:
    member = _Member(archive, formats.file_name(formats.DIPLOMES, ts), ts)
    member.write_lines([formats.header_line(formats.DIPLOMES_COLUMNS, True)])
    main = [("|".join(DIPLOMAS.get(p.code, DIPLOMA_DEFAULT)) + "|||||") for p in PROFESSIONS]
    des = [f"{DES_TYPE[0]}|{DES_TYPE[1]}|DES{code[2:]}|DES {label}|||||" for code, label in SF_LIST]
    foreign_ok = {P_DOCTOR, P_PHARMACIST, P_DENTIST, P_NURSE, PROF_INDEX["70"]}
    sf_list = SF_LIST
    p_prof, p_sf, p_bits = world.p_prof, world.p_sf, world.p_bits
    lines: list[str] = []
    for p, head, nom_prenom in _person_heads(world):
        prefix = head + nom_prenom
        pi = p_prof[p]
        bits = p_bits[p]
        if pi in foreign_ok and bits % 100 < 4:  # trained abroad: EU diploma + authorisation to practise
            code = PROFESSIONS[pi].code
            lines.append(f"{prefix}{FOREIGN_DIPLOMA[0]}|{FOREIGN_DIPLOMA[1]}|DUE{code}|"
                         f"Diplôme européen de {PROF_LABELS[code].lower()}|||||\n")
            sf = p_sf[p]
            disc_code, disc_label = sf_list[sf] if sf >= 0 else (code, PROF_LABELS[code])
            lines.append(f"{prefix}||||{AUTHORISATION[0]}|{AUTHORISATION[1]}|{disc_code}|{disc_label}|\n")
        else:
            lines.append(prefix + main[pi] + "\n")
        sf = p_sf[p]
        if pi == P_DOCTOR and sf >= 0 and (bits >> 8) % 10 < 9:
            lines.append(prefix + des[sf] + "\n")
        if len(lines) >= _CHUNK_LINES:
            member.write_lines(lines)
            lines = []
    member.write_lines(lines)
    member.close()
    return member.lines - 1


def write_mssante(world: World, path: Path, ts: str, progress=None) -> int:
    """`Extraction_Correspondance_MSSante_<ts>.zip`: one line per published box, 31 columns, no trailing `|`."""
    boxes = world.boxes
    st = world.structures
    cx_codes = [c for c, _ in CIVEX]
    struct_cols: dict[int, str] = {}

    def structure_part(s: int) -> str:
        """Columns 6-7 and 19-31 of a box attached to structure s, joined (two parts, split on a tab)."""
        cached = struct_cols.get(s)
        if cached is None:
            if s < 0:
                cached = "|\t" + "|" * 12
            else:
                f = st.fields(s)
                old = f[B_OLD_ID]
                a = f[B_ADDRESS:B_ADDRESS + 12]
                l6 = a[8] or f"{a[9]} {names.ascii_upper(a[11])}"
                cached = (f"{old[0]}|{old[1:]}\t{f[B_NAME]}|{f[B_BRAND]}|{a[0]}|{a[1]}|{a[2]}|{a[3]}|{a[4]}|{a[6]}|"
                          f"{a[7]}|{l6}|{f[B_CP]}|{f[B_DEPT]}|FRANCE")
            struct_cols[s] = cached
        return cached

    w = world
    member_path = formats.file_name(formats.MSSANTE, ts)
    lines: list[str] = []
    with _Archive(path) as archive:
        member = _Member(archive.zip, member_path, ts)
        member.write_lines([formats.header_line(formats.MSSANTE_COLUMNS, False)])
        if progress:
            progress.start("Extraction_Correspondance_MSSante", len(boxes.kind),
                           pace.weight("Extraction_Correspondance_MSSante", len(w.p_ident)), unit="mailboxes")
        done = 0
        for b in range(len(boxes.kind)):
            if not boxes.alive[b]:
                continue
            ids, place = structure_part(boxes.struct[b]).split("\t")
            demat = "True" if boxes.demat[b] else "False"
            if boxes.kind[b] == PER:
                p = boxes.person[b]
                t, ident = w.p_type[p], w.p_ident[p]
                pi = w.p_prof[p]
                prof = PROFESSIONS[pi]
                cat_code, cat_label = CATEGORIES[w.p_cat[p]]
                sf = w.p_sf[p]
                sf_code, sf_label = SF_LIST[sf] if sf >= 0 else ("", "")
                lines.append(f"PER|{boxes.addr[b]}|{t}|{ident}|{t}{ident}|{ids}||{cx_codes[w.p_civex[p]]}|"
                             f"{w.last_name(p)}|{w.first_name(p)}|{cat_code}|{cat_label}|{prof.code}|"
                             f"{prof.short_label or PROF_LABELS[prof.code]}|{sf_code}|{sf_label}|{demat}|{place}\n")
            else:
                lines.append(f"{BOX_TYPES[boxes.kind[b]]}|{boxes.addr[b]}||||{ids}|{boxes.service[b]}|||||||||"
                             f"|{demat}|{place}\n")
            if len(lines) >= _CHUNK_LINES:
                member.write_lines(lines)
                lines = []
                if progress:
                    progress.advance(b - done)
                    done = b
        member.write_lines(lines)
        member.close()
        if progress:
            progress.advance(len(boxes.kind) - done)
    return member.lines - 1


__all__ = ["timestamp", "write_mssante", "write_ps_libre_acces"]
