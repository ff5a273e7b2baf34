"""Warehouse documents: tax invoices, credit notes, labels, picklists and manifests as PDFs."""
