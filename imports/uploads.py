"""The import upload's size limit (IMPORTS_MAX_UPLOAD_MB), enforced while the body streams.

Django's own handlers store the whole upload (in memory, then in a temporary file) before any
view sees its size. `LimitedUploadHandler` goes first: it refuses a request whose
Content-Length is over the limit before a byte of the body is read, and counts the file's
bytes as they arrive, stopping the upload at the chunk that passes the limit (the temporary
file of the handlers after it is closed and deleted). Only the import upload view installs it;
a proxy in front (nginx `client_max_body_size`) should refuse bigger bodies earlier still.

Changing the upload handlers must happen before the body is read, and CSRF protection reads
the body (the token is a form field): so the view is `csrf_exempt`, installs the handler, and
then runs the admin's view under `csrf_protect` (Django's documented way). A refused upload
does nothing but show the form again with the message, so it needs no CSRF check.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.datastructures import MultiValueDict
from django.views.decorators.csrf import csrf_exempt, csrf_protect

MB = 1024 * 1024
# Room for the form's other fields and the multipart boundaries and headers.
FORM_OVERHEAD = 64 * 1024


def _mb(size: int) -> str:
    return f"{size / MB:,.1f} MB"


class LimitedUploadHandler(FileUploadHandler):
    """Refuses uploads over `limit_mb` (default IMPORTS_MAX_UPLOAD_MB) while they stream;
    `message` says why, naming the file when its name has arrived."""

    def __init__(self, request: HttpRequest | None = None, limit_mb: int | None = None) -> None:
        super().__init__(request)
        self.limit_mb = settings.IMPORTS_MAX_UPLOAD_MB if limit_mb is None else limit_mb
        self.limit = self.limit_mb * MB
        self.received = 0
        self.message = ""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > self.limit + FORM_OVERHEAD:
            self.message = (
                f"The upload is {_mb(content_length)}; at most {self.limit_mb:,} MB can be "
                "imported at once. Split the file into smaller files."
            )
            # Nothing of the body is read: an empty form, and the view shows the message.
            return QueryDict(encoding=encoding), MultiValueDict()
        return None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.message = (
                f"{self.file_name} is larger than {self.limit_mb:,} MB, the most that can be "
                "imported at once. Split it into smaller files."
            )
            # The rest of the body (at most FORM_OVERHEAD, see handle_raw_input) is read and
            # dropped, so the browser gets the answer instead of a reset connection.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) makes the file


def upload_view(model_admin) -> Callable[..., HttpResponse]:
    """The import upload view of `model_admin` (its add_view) with the limit installed."""

    @csrf_exempt
    def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        handler = LimitedUploadHandler(request)
        request.upload_handlers.insert(0, handler)
        if request.method == "POST":
            request.POST  # noqa: B018  (read the body now, through the handler)
            if handler.message:
                if not model_admin.has_add_permission(request):
                    raise PermissionDenied
                return model_admin.add_view(request, upload_error=handler.message)
        return csrf_protect(model_admin.add_view)(request, *args, **kwargs)

    return view
