# ruff: noqa: F811  (pytest fixtures imported from tests.importing are parameters)
"""Upload limits: the size limit while the body streams (imports.uploads), and bounded XLSX
reading (imports.readers): real files, crafted with zipfile as an attacker would."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from xml.sax.saxutils import escape

import pytest
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.urls import reverse

from imports import services
from imports.models import ImportJob, JobStatus
from imports.readers import XlsxLimits, read_xlsx
from imports.uploads import LimitedUploadHandler

from .factories import UserFactory
from .importing import ORDER_HEADER, csv_bytes, media, order_row, upload  # noqa: F401

pytestmark = pytest.mark.usefixtures("media")
MB = 1024 * 1024


@pytest.fixture
def sales(db):
    return UserFactory(username="sales", roles=["Sales Manager"])


# --- The size limit while the body streams ----------------------------------------------------


class Recording(MemoryFileUploadHandler):
    """The handler after ours: how many bytes reached it (what would have been stored)."""

    stored = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.activated = True  # keep in memory whatever the size

    def receive_data_chunk(self, raw_data, start):
        Recording.stored += len(raw_data)
        return super().receive_data_chunk(raw_data, start)


def multipart(name: str, data: bytes) -> tuple[dict, bytes]:
    boundary = "BoUnDaRy"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nORDERS\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    meta = {
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
        "CONTENT_LENGTH": str(len(body)),
    }
    return meta, body


def parse(name: str, data: bytes, limit_mb: int):
    Recording.stored = 0
    limited = LimitedUploadHandler(limit_mb=limit_mb)
    meta, body = multipart(name, data)
    post, files = MultiPartParser(meta, io.BytesIO(body), [limited, Recording()]).parse()
    return limited, post, files


def test_a_file_over_the_limit_is_stopped_at_the_chunk_that_passes_it():
    # Content-Length is within the form overhead: the bytes are counted as they arrive
    handler, post, files = parse("big.csv", b"x" * (MB + 10_000), limit_mb=1)
    assert "file" not in files and post["kind"] == "ORDERS"
    assert Recording.stored <= MB  # nothing beyond the limit reached the storing handler
    assert handler.message.startswith("big.csv is larger than 1 MB")


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    handler, post, files = parse("huge.csv", b"x" * (3 * MB), limit_mb=1)
    assert not files and not post and Recording.stored == 0
    assert handler.message.startswith("The upload is 3.0 MB; at most 1 MB")


def test_a_file_within_the_limit_passes_whole():
    handler, post, files = parse("ok.csv", b"x" * (MB - 1000), limit_mb=1)
    assert files["file"].size == MB - 1000 and not handler.message


def test_the_upload_page_refuses_while_streaming_and_says_why(world, client, sales, settings):
    settings.IMPORTS_MAX_UPLOAD_MB = 1
    client.force_login(sales)
    url = reverse("admin:imports_importjob_add")
    big = io.BytesIO(b"x" * (MB + 10_000))
    big.name = "orders-may.csv"
    page = client.post(url, {"kind": "ORDERS", "file": big}).content.decode()
    assert "orders-may.csv is larger than 1 MB, the most that can be imported at once" in page
    huge = io.BytesIO(b"x" * (3 * MB))
    huge.name = "orders-june.csv"
    page = client.post(url, {"kind": "ORDERS", "file": huge}).content.decode()
    assert "The upload is 3.0 MB; at most 1 MB can be imported at once" in page
    assert ImportJob.objects.count() == 0


def test_the_upload_page_still_checks_csrf(world, sales):
    client = Client(enforce_csrf_checks=True)
    client.force_login(sales)
    url = reverse("admin:imports_importjob_add")
    data = {"kind": "ORDERS", "file": io.BytesIO(csv_bytes([order_row()]))}
    assert client.post(url, data).status_code == 403
    assert ImportJob.objects.count() == 0
    token = client.get(url).context["csrf_token"]
    data = {"kind": "ORDERS", "csrfmiddlewaretoken": str(token)}
    data["file"] = io.BytesIO(csv_bytes([order_row()]))
    assert client.post(url, data).status_code == 302
    assert ImportJob.objects.count() == 1


# --- XLSX: bounded reading --------------------------------------------------------------------

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006"
SHEET_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
PARTS = {
    "[Content_Types].xml": f'<Types xmlns="{PKG}/content-types">'
    f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{SHEET_CT}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SHEET_CT}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SHEET_CT}.sharedStrings+xml"/>'
    "</Types>",
    "_rels/.rels": f'<Relationships xmlns="{PKG}/relationships"><Relationship Id="rId1" '
    f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": f'<workbook xmlns="{NS}" xmlns:r="{REL}"><sheets><sheet name="Orders" '
    'sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>",
}


def column(n: int) -> str:
    return chr(65 + n) if n < 26 else chr(64 + n // 26) + chr(65 + n % 26)


def workbook(
    rows: list[list[str]],
    *,
    declared_count: int | None = None,
    more_strings=(),
    dimension: str = "",
    empty_rows: int = 0,
    extra: dict | None = None,
) -> bytes:
    """An XLSX whose strings are in a shared strings table, as Excel writes them."""
    table: dict[str, int] = {}
    xml_rows = []
    for r, row in enumerate(rows, 1):
        cells = "".join(
            f'<c r="{column(c)}{r}" t="s"><v>{table.setdefault(v, len(table))}</v></c>'
            for c, v in enumerate(row)
            if v != ""
        )
        xml_rows.append(f'<row r="{r}">{cells}</row>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in PARTS.items():
            z.writestr(name, text)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f'<worksheet xmlns="{NS}">'.encode())
            if dimension:
                sheet.write(f'<dimension ref="{dimension}"/>'.encode())
            sheet.write(f"<sheetData>{''.join(xml_rows)}".encode())
            for r in range(len(rows) + 1, len(rows) + 1 + empty_rows):
                sheet.write(f'<row r="{r}"/>'.encode())
            sheet.write(b"</sheetData></worksheet>")
        with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as sst:
            count = len(table) if declared_count is None else declared_count
            sst.write(f'<sst xmlns="{NS}" count="{count}" uniqueCount="{count}">'.encode())
            sst.write("".join(f"<si><t>{escape(v)}</t></si>" for v in table).encode())
            for chunk in more_strings:
                sst.write(chunk)
            sst.write(b"</sst>")
        for name, chunks in (extra or {}).items():
            with z.open(name, "w", force_zip64=True) as part:
                for chunk in chunks:
                    part.write(chunk)
    return out.getvalue()


def order_rows(n: int = 2) -> list[list[str]]:
    return [ORDER_HEADER] + [
        [order_row(f"FK-{i}")[name] for name in ORDER_HEADER] for i in range(1, n + 1)
    ]


def strings(n: int, text: bytes = b"a" * 40):
    block = (b"<si><t>" + text + b"</t></si>") * 1000
    for _ in range(n // 1000):
        yield block


def read(data: bytes, limits: XlsxLimits | None = None) -> tuple[list, float]:
    """The records of a workbook, and the peak memory (MB) Python allocated reading it."""
    limits = limits or XlsxLimits()
    tracemalloc.start()
    try:
        records = list(read_xlsx(io.BytesIO(data), limits))
        peak = tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()
    return records, peak


def refusal(records: list) -> str:
    assert len(records) == 1, records[:3]
    assert (records[0].row, records[0].column) == (1, "(file)")
    return records[0].message


def test_a_good_workbook_with_shared_strings_is_read(world, sales):
    records, _ = read(workbook(order_rows()))
    assert records[0] == ORDER_HEADER and records[1][1] == "FK-1"
    job = services.import_job_check(upload(workbook(order_rows()), sales, name="o.xlsx").pk)
    assert (job.status, job.new_count, job.error_count) == (JobStatus.VALIDATED, 2, 0)


def test_a_huge_declared_shared_strings_count_is_not_trusted_either_way():
    records, _ = read(workbook(order_rows(), declared_count=2_000_000_000))
    assert len(records) == 3  # the attribute is not what is counted


def test_too_many_shared_strings_are_refused_before_the_table_is_read():
    # 300,000 strings of 40 characters (15 MB unpacked, 50 KB packed): within the size limit
    data = workbook(order_rows(), more_strings=strings(300_000), declared_count=2)
    assert len(data) < 200_000
    limits = XlsxLimits(max_shared_strings=200_000)
    records, peak = read(data, limits)
    message = refusal(records)
    assert "its shared strings table holds more than 200,000 strings, at most 200,000" in message
    assert "IMPORTS_XLSX_MAX_SHARED_STRINGS" in message and "Save it as CSV" in message
    assert peak < 10, peak  # reading the table whole took ~60 MB here (see the README)


def test_a_shared_strings_table_too_big_to_unpack_is_refused_from_the_directory():
    data = workbook(order_rows(), more_strings=strings(2_000_000), declared_count=2)  # 107 MB
    records, peak = read(data)
    message = refusal(records)
    assert "its shared strings table unpacks to 107 MB, at most 32 MB" in message
    assert peak < 5, peak


def test_a_zip_bomb_member_is_refused_from_the_directory_without_inflating_it():
    zeros = (b"\0" * MB for _ in range(600))  # 600 MB of zeros pack to ~600 KB
    data = workbook(order_rows(), extra={"xl/media/image1.bin": zeros})
    records, peak = read(data)
    assert "it unpacks to 600 MB, at most 500 MB" in refusal(records)
    assert peak < 5, peak


def test_a_declared_size_is_enough_to_refuse_even_if_the_member_is_not_that_big():
    """The directory says 10 GB; the data is a few bytes. Inflating would find the lie (a CRC
    error); the refusal names the declared size, so nothing was inflated."""
    out = io.BytesIO(workbook(order_rows()))
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/media/big.bin", b"tiny")  # the last entry of the central directory
    data = bytearray(out.getvalue())
    entry = data.rindex(b"PK\x01\x02")
    assert data[entry + 46 : entry + 62] == b"xl/media/big.bin"
    data[entry + 24 : entry + 28] = (4_000_000_000).to_bytes(4, "little")  # uncompressed size
    records, _ = read(bytes(data))
    assert "it unpacks to 3,815 MB, at most 500 MB" in refusal(records)


def test_a_sheet_declaring_too_many_rows_is_refused():
    records, _ = read(workbook(order_rows(), dimension="A1:R2000000"))
    assert "its first sheet has 2,000,000 rows, at most 500,000 (IMPORTS_XLSX_MAX_ROWS)" in (
        refusal(records)
    )


def test_a_sheet_without_a_declared_size_and_too_many_rows_is_refused_before_loading():
    data = workbook(order_rows(), empty_rows=300_000)  # openpyxl would parse all when loading
    records, peak = read(data, XlsxLimits(max_rows=200_000))
    assert "its first sheet has more than 200,000 rows" in refusal(records)
    assert peak < 10, peak  # counted on the raw bytes, a chunk at a time


def test_a_sheet_lying_about_its_size_stops_at_the_row_limit():
    data = workbook(order_rows(5), dimension="A1:R3")
    records, _ = read(data, XlsxLimits(max_rows=4))
    assert len(records) == 5 and records[3][1] == "FK-3"
    assert records[4].row == 5 and "more than 4 rows" in records[4].message


def test_a_refused_workbook_is_a_job_error_not_a_server_error(world, sales, settings):
    settings.IMPORTS_XLSX_MAX_SHARED_STRINGS = 1000
    data = workbook(order_rows(), more_strings=strings(5000), declared_count=2)
    job = services.import_job_check(upload(data, sales, name="orders.xlsx").pk)
    assert job.status == JobStatus.VALIDATED and job.new_count == 0
    [error] = job.preview["errors"]
    assert error[:2] == [1, "(file)"]
    assert "shared strings table holds more than 1,000 strings" in error[3]
