"""Reading uploaded CSV and XLSX files row by row, whatever state they arrive in.

Nothing here raises on bad content: undecodable bytes, broken quoting, huge fields, odd line
endings or a file that is not a spreadsheet at all become `RowError`s on the row they affect
(row 1 is the header), so the caller can always answer with a row-level report. The file is
streamed (a line, or an XLSX row, at a time): memory does not grow with the file.

Row numbers are the ones a spreadsheet shows: the header is row 1, blank lines count.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from itertools import chain
from operator import itemgetter

MAX_LINE_CHARS = 1_000_000  # a longer physical line is cut (its row is reported as broken)
SNIFF_BYTES = 64 * 1024
SHOWN_VALUE_CHARS = 120
FILE_COLUMN = "(file)"
ROW_COLUMN = "(row)"


@dataclass(frozen=True)
class RowError:
    """One problem, for staff: row number, column, the value found and what is wrong."""

    row: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        return f"Row {self.row}, column {self.column}, value {self.value!r}: {self.message}"

    def as_list(self) -> list:
        return [self.row, self.column, self.value, self.message]


def shown(value: object) -> str:
    """A value as it may appear in a report: huge fields are cut, with their length."""
    text = "" if value is None else str(value)
    if len(text) <= SHOWN_VALUE_CHARS:
        return text
    return f"{text[:SHOWN_VALUE_CHARS]}… ({len(text):,} characters)"


@dataclass
class RawRow:
    number: int
    values: dict[str, str]
    errors: list[RowError] = field(default_factory=list)

    @property
    def is_blank(self) -> bool:
        # one join instead of a generator: the same as "no value has a non-space character"
        return not self.errors and not "".join(self.values.values()).strip()


def normalise_header(name: str) -> str:
    """'Channel Order ID ' -> 'channel_order_id'; a BOM or a UTF-8 BOM read as cp1252 goes."""
    name = name.replace("\ufeff", "").replace("ï»¿", "").strip().lower()
    return re.sub(r"[^0-9a-z]+", "_", name).strip("_")


@dataclass
class Header:
    """The columns of a file, mapped onto the ones a kind of import knows."""

    names: list[str]  # the header cells as written
    positions: dict[str, int]  # known column -> index
    ignored: list[str]  # header cells of columns nobody reads
    errors: list[RowError]


def map_header(
    cells: list[str], known: Iterable[str], aliases: dict[str, str], required: Iterable[str]
) -> Header:
    known = set(known)
    positions: dict[str, int] = {}
    ignored: list[str] = []
    errors: list[RowError] = []
    for index, cell in enumerate(cells):
        key = normalise_header(cell)
        key = aliases.get(key, key)
        if not key:
            if cell.strip():
                ignored.append(cell)
            continue
        if key not in known:
            ignored.append(cell)
            continue
        if key in positions:
            errors.append(RowError(1, key, shown(cell), "this column appears twice in the header"))
            continue
        positions[key] = index
    for name in required:
        if name not in positions:
            errors.append(RowError(1, name, "", "required column is missing from the header"))
    return Header(list(cells), positions, ignored, errors)


# --- CSV ------------------------------------------------------------------------------------


def _detect_encoding(sample: bytes) -> tuple[str, int]:
    """(encoding, bytes of BOM to skip). UTF-8 unless the sample is not UTF-8, in which case
    Windows-1252 (what Excel's plain "CSV" writes on Windows)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0  # the codec reads the BOM itself
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1252", 0
    return "utf-8", 0


def _text_lines(stream: io.TextIOBase, broken: set[int]) -> Iterator[str]:
    """Physical lines (with their endings), each at most MAX_LINE_CHARS long; the numbers of
    cut lines go into `broken`."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_CHARS)
        if not line:
            return
        number += 1
        if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            broken.add(number)
            while True:  # skip the rest of the line without keeping it
                rest = stream.readline(MAX_LINE_CHARS)
                if not rest or rest.endswith(("\n", "\r")):
                    break
            line = line[:1000] + "\n"
        yield line.replace("\x00", "\ufffd")  # NUL: reported as unreadable text, not a crash


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(binary: io.BufferedIOBase) -> Iterator[list[str] | RowError]:
    """Yield each record's cells, or a RowError for a record that could not be read."""
    sample = binary.read(SNIFF_BYTES)
    encoding, skip = _detect_encoding(sample)
    if not sample.strip():
        return
    rest = io.BufferedReader(_Prefixed(sample[skip:], binary))
    text = io.TextIOWrapper(rest, encoding=encoding, errors="replace", newline="")
    broken: set[int] = set()
    lines = _text_lines(text, broken)
    first = next(lines, "")
    delimiter = _sniff_delimiter(first)

    reader = csv.reader(chain((first,), lines), delimiter=delimiter)
    number = 0
    last_line = 0
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            last_line = reader.line_num
            yield RowError(number, ROW_COLUMN, "", f"the row could not be read as CSV: {exc}")
            continue
        cut = broken and any(last_line < n <= reader.line_num for n in broken)
        last_line = reader.line_num
        if cut:
            yield RowError(
                number,
                ROW_COLUMN,
                shown(delimiter.join(cells)),
                f"the line is longer than {MAX_LINE_CHARS:,} characters",
            )
            continue
        yield cells


class _Prefixed(io.RawIOBase):
    """A raw stream that returns `prefix` and then the rest of `stream`."""

    def __init__(self, prefix: bytes, stream) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(buffer))
        if not data:
            return 0
        buffer[: len(data)] = data
        return len(data)


# --- XLSX -----------------------------------------------------------------------------------


def cell_text(value: object) -> str:
    """An XLSX cell as the text a CSV would have held."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class XlsxLimits:
    """What a workbook may hold before it is read (settings IMPORTS_XLSX_MAX_*)."""

    max_rows: int = 500_000
    max_shared_strings: int = 1_000_000
    max_shared_strings_mb: int = 32
    max_uncompressed_mb: int = 500

    @classmethod
    def from_settings(cls) -> XlsxLimits:
        from dataclasses import fields

        from django.conf import settings

        return cls(
            **{
                f.name: int(getattr(settings, f"IMPORTS_XLSX_{f.name.upper()}", f.default))
                for f in fields(cls)
            }
        )


MB = 1024 * 1024
MAX_XLSX_MEMBERS = 10_000  # files in the zip: a real workbook has a few dozen
MAX_XLSX_PART_MB = 20  # any XML part openpyxl parses whole (workbook, styles, theme ...)
SCAN_SHEET_MB = 1  # bigger parts are looked at for a sheet without a declared size


def _too_big(what: str, found: str, limit: str, setting: str = "") -> str:
    return (
        f"the workbook is too large to read safely: {what} {found}, at most {limit}"
        f"{f' ({setting})' if setting else ''}. Save it as CSV, or split it into smaller files"
    )


def xlsx_problem(binary, limits: XlsxLimits) -> str | None:
    """Why the workbook must not be opened, or None. Decided from the zip directory (declared
    sizes: Python's zipfile never inflates a member past its declared size) and a counting
    pass over the shared strings table, before openpyxl reads that table whole into memory.
    The stream is left at its start."""
    try:
        end = zipfile._EndRecData(binary)  # the directory's size, before it is read
        if end and end[zipfile._ECD_ENTRIES_TOTAL] > MAX_XLSX_MEMBERS:
            return _too_big(
                "it has", f"{end[zipfile._ECD_ENTRIES_TOTAL]:,} parts", f"{MAX_XLSX_MEMBERS:,}"
            )
        with zipfile.ZipFile(binary) as archive:
            return _members_problem(archive, limits)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, SyntaxError, zlib.error):
        return None  # not a zip, or damaged: openpyxl says so in its own words
    finally:
        binary.seek(0)


def _members_problem(archive: zipfile.ZipFile, limits: XlsxLimits) -> str | None:
    members = archive.infolist()
    total = sum(m.file_size for m in members)
    if total > limits.max_uncompressed_mb * MB:
        return _too_big(
            "it unpacks to",
            f"{total / MB:,.0f} MB",
            f"{limits.max_uncompressed_mb:,} MB",
            "IMPORTS_XLSX_MAX_UNCOMPRESSED_MB",
        )
    strings = _shared_strings_name(archive)
    for m in members:
        parsed_whole = m.filename.lower().endswith((".xml", ".rels")) and not (
            m.filename.startswith("xl/worksheets/") or m.filename == strings
        )
        if parsed_whole and m.file_size > MAX_XLSX_PART_MB * MB:
            return _too_big(
                f"its part {m.filename} unpacks to",
                f"{m.file_size / MB:,.0f} MB",
                f"{MAX_XLSX_PART_MB} MB",
            )
    for m in members:
        if m.file_size > SCAN_SHEET_MB * MB and m.filename != strings:
            problem = _sheet_problem(archive, m.filename, limits)
            if problem:
                return problem
    if strings is None:
        return None
    size = archive.getinfo(strings).file_size
    if size > limits.max_shared_strings_mb * MB:
        return _too_big(
            "its shared strings table unpacks to",
            f"{size / MB:,.0f} MB",
            f"{limits.max_shared_strings_mb:,} MB",
            "IMPORTS_XLSX_MAX_SHARED_STRINGS_MB",
        )
    count = _count_tags(archive, strings, SI_TAG, limits.max_shared_strings)
    if count > limits.max_shared_strings:
        return _too_big(
            "its shared strings table holds",
            f"more than {limits.max_shared_strings:,} strings",
            f"{limits.max_shared_strings:,}",
            "IMPORTS_XLSX_MAX_SHARED_STRINGS",
        )
    return None


def _tag(name: bytes) -> re.Pattern:
    """An element's start tag in raw XML, with any namespace prefix (in XML, "<" is markup
    only: text holds it as &lt;)."""
    return re.compile(rb"<(?:[A-Za-z_][\w.-]{0,40}:)?" + name + rb"[\s/>]")


ROW_TAG, SI_TAG = _tag(b"row"), _tag(b"si")
DIMENSION_OR_DATA = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,40}:)?(dimension|sheetData)[\s/>]")
SCAN_CHUNK = 1024 * 1024
SCAN_OVERLAP = 64  # longer than any start tag the patterns match


def _count_tags(archive: zipfile.ZipFile, name: str, pattern: re.Pattern, stop_after: int) -> int:
    """Start tags in a part, counted on the raw bytes as they unpack: C speed, memory flat.
    Stops once past `stop_after`."""
    count = 0
    tail = b""
    with archive.open(name) as source:
        while chunk := source.read(SCAN_CHUNK):
            buffer = tail + chunk
            # tags wholly inside the tail were counted with the previous chunk (tags cannot
            # overlap: each starts with "<" and holds none)
            count += len(pattern.findall(buffer)) - len(pattern.findall(tail))
            tail = buffer[-SCAN_OVERLAP:]
            if count > stop_after:
                break
    return count


def _sheet_problem(archive: zipfile.ZipFile, name: str, limits: XlsxLimits) -> str | None:
    """A big sheet without a declared size: openpyxl would parse all of it when loading,
    keeping an element per row, so its rows are counted first."""
    with archive.open(name) as source:
        found = DIMENSION_OR_DATA.search(source.read(SCAN_CHUNK))
    if found is None or found.group(1) == b"dimension":
        return None  # not a sheet, or declared: the declared size is checked when read
    rows = _count_tags(archive, name, ROW_TAG, limits.max_rows)
    if rows > limits.max_rows:
        return _rows_message(f"more than {limits.max_rows:,}", limits)
    return None


def _shared_strings_name(archive: zipfile.ZipFile) -> str | None:
    """The shared strings part, found as openpyxl finds it (the content types manifest)."""
    from openpyxl.packaging.manifest import Manifest
    from openpyxl.xml.constants import ARC_CONTENT_TYPES, SHARED_STRINGS
    from openpyxl.xml.functions import fromstring

    try:
        info = archive.getinfo(ARC_CONTENT_TYPES)
    except KeyError:
        return None
    if info.file_size > MAX_XLSX_PART_MB * MB:
        return None  # reported as an oversized part by the caller
    part = Manifest.from_tree(fromstring(archive.read(info))).find(SHARED_STRINGS)
    if part is None:
        return None
    name = part.PartName[1:]
    return name if name in archive.NameToInfo else None


def read_xlsx(binary, limits: XlsxLimits | None = None) -> Iterator[list[str] | RowError]:
    """Rows of the first sheet (openpyxl read-only mode streams them), after checking the
    workbook against `limits` (from the settings by default): a workbook over them is one
    file-level RowError, and is never opened."""
    import openpyxl

    limits = limits or XlsxLimits.from_settings()
    problem = xlsx_problem(binary, limits)
    if problem:
        yield RowError(1, FILE_COLUMN, "", problem)
        return
    try:
        workbook = openpyxl.load_workbook(binary, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        yield RowError(1, FILE_COLUMN, "", f"the file is not a readable XLSX workbook ({exc})")
        return
    except Exception as exc:  # openpyxl raises many kinds on damaged files
        yield RowError(1, FILE_COLUMN, "", f"the file is not a readable XLSX workbook ({exc})")
        return
    try:
        yield from _sheet_rows(workbook.worksheets[0], limits)
    finally:
        workbook.close()


def _sheet_rows(sheet, limits: XlsxLimits) -> Iterator[list[str] | RowError]:
    declared = sheet.max_row if sheet.max_row and sheet.max_row > 1 else 0
    if declared > limits.max_rows:
        yield RowError(1, FILE_COLUMN, "", _rows_message(f"{declared:,}", limits))
        return
    # The declared size is not trusted any further: openpyxl would pad every row to the
    # declared width and add empty rows up to the declared height.
    sheet.reset_dimensions()
    number = 0
    try:
        for values in sheet.iter_rows(values_only=True):
            number += 1
            if number > limits.max_rows:
                yield RowError(
                    number, ROW_COLUMN, "", _rows_message(f"more than {limits.max_rows:,}", limits)
                )
                return
            yield [cell_text(v) for v in values]
    except Exception as exc:  # a damaged sheet: report where it broke
        yield RowError(number + 1, ROW_COLUMN, "", f"the row could not be read ({exc})")


def _rows_message(found: str, limits: XlsxLimits) -> str:
    return _too_big(
        "its first sheet has", f"{found} rows", f"{limits.max_rows:,}", "IMPORTS_XLSX_MAX_ROWS"
    )


def is_xlsx(name: str, head: bytes) -> bool:
    return name.lower().endswith((".xlsx", ".xlsm")) or head.startswith(b"PK\x03\x04")


# --- Both -----------------------------------------------------------------------------------


@dataclass
class Table:
    header: Header
    rows: Iterator[RawRow]


def open_table(
    binary,
    name: str,
    *,
    known: Iterable[str],
    aliases: dict[str, str],
    required: Iterable[str],
) -> Table:
    """The header and a stream of rows (as dicts of known column -> stripped text)."""
    header, records = open_records(binary, name, known=known, aliases=aliases, required=required)
    return Table(header, _rows(records, header))


def open_records(
    binary,
    name: str,
    *,
    known: Iterable[str],
    aliases: dict[str, str],
    required: Iterable[str],
) -> tuple[Header, Iterator[list[str] | RowError]]:
    """The header and the records after it, as read (cells unstripped, RowErrors numbered from
    the header), for a pass that needs a few columns only; no records if the header is bad."""
    head = binary.read(4)
    binary.seek(0)
    records = read_xlsx(binary) if is_xlsx(name, head) else read_csv(binary)
    header_cells: list[str] = []
    header_errors: list[RowError] = []
    for record in records:
        if isinstance(record, RowError):
            header_errors.append(RowError(1, record.column, record.value, record.message))
            break
        header_cells = record
        break
    if not header_cells and not header_errors:
        header_errors.append(RowError(1, FILE_COLUMN, "", "the file is empty: no header row"))
    if header_errors:  # nothing readable: say why, not which columns are missing
        return Header(header_cells, {}, [], header_errors), iter(())
    header = map_header(header_cells, known, aliases, required)
    if header.errors:  # a required column missing or doubled: no row can be read right
        return header, iter(())
    return header, records


def has_extra_cells(record: list[str], width: int) -> bool:
    """Whether a record has non-blank cells beyond the header's columns."""
    return len(record) > width and any(cell.strip() for cell in record[width:])


def _rows(records: Iterator[list[str] | RowError], header: Header) -> Iterator[RawRow]:
    width = len(header.names)
    keys = list(header.positions)
    indexes = list(header.positions.values())
    # A record that has all the known columns (nearly every one) is picked by one itemgetter;
    # a shorter one takes the general way.
    pick = itemgetter(*indexes) if len(indexes) > 1 else None
    needed = max(indexes, default=-1) + 1
    strip = str.strip
    number = 1
    for record in records:
        number += 1
        if isinstance(record, RowError):
            yield RawRow(
                number, {}, [RowError(number, record.column, record.value, record.message)]
            )
            continue
        if pick is not None and len(record) >= needed:
            values = dict(zip(keys, map(strip, pick(record)), strict=True))
        else:
            values = {
                key: record[index].strip() if index < len(record) else ""
                for key, index in header.positions.items()
            }
        row = RawRow(number, values)
        if len(record) > width and has_extra_cells(record, width):
            extra = [cell for cell in record[width:] if cell.strip()]
            row.errors.append(
                RowError(
                    number,
                    ROW_COLUMN,
                    shown(", ".join(extra)),
                    f"the row has {len(record)} cells but the header has {width} columns "
                    "(an unquoted comma in a value?)",
                )
            )
        yield row
