"""Indian GST rules for invoices, free of Django and the database.

- `gst.states`: GST state codes, free-text state names and PINs to codes, place of supply.
- `gst.gstin`: GSTIN format and check character.
- `gst.tax`: tax-inclusive prices split into taxable value, CGST + SGST or IGST, and cess.
- `gst.numbering`: invoice numbers under CGST Rule 46(b) and financial years.
"""
