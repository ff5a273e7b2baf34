"""Renderers: plain data (documents.data) in, PDF bytes out; one PDF for a whole batch."""

from .invoices import render_invoices
from .labels import render_labels
from .sheets import render_manifests, render_picklists

__all__ = ["render_invoices", "render_labels", "render_manifests", "render_picklists"]
