"""Scan stations: packing, manifest handover and putaway, driven by a barcode scanner alone.

A keyboard-wedge scanner types the code and presses Enter into the page's one input
(`name="scan"`, which keeps the focus). Each scan is one POST to the station's admin URL
(`StationAdmin`, so the admin's login and the role table cover it), handled by a plain
function that returns a typed `ScanResult` (`ok`, `error` with a `ScanError` type, `done`),
shown in the element carrying `data-outcome`.

Design:
- The state lives on the server, in `Station` (one row per user and kind): picklist, the
  shipment being packed, the units scanned (ids), the open manifest, the putaway with its
  shelf, type and placements, the last code, time and outcome. A refresh, a lost connection
  or another device reads it back.
- Every scan locks its station row first (so two tabs of one user take turns), then whatever
  `orders.locks` says, in that order. A refused scan changes nothing but the message.
- A repeat of the same code within `settings.STATION_DOUBLE_SCAN_SECONDS` (1.5 s) is a
  scanner double fire: ignored, not counted, and not stored.
- A packing station claims a shipment under the shipment's row lock (after its order's), and
  the partial unique constraint `one_packing_station_per_shipment` is the last word: two
  stations never hold one shipment.
- Every change goes through `orders.services` (`picklist_receive`, `shipments_invoice`,
  `shipments_generate_label`, `shipments_manifest`, `manifest_add_shipments`,
  `manifest_close`, `inventory.putaway.putaways_complete`) with the user as the actor, so
  it is audited as the user.
- Units missing at VALIDATE are refused: never a silent short-ship. SPLIT, scanned by a user
  holding the admin's split permission (`orders.split_shipment`), splits the units not
  scanned off through `orders.services.shipment_split` (as that user) and keeps the scanned
  ones at the station; anyone else gets SUPERVISOR_NEEDED. A PICKED shipment splits into
  PICKED shipments on the same picklist (the missing units wait there).

Totes: a picker's tote carries its picklist's code (printed on the picklist), so scanning the
tote is scanning the picklist; no tote records are kept (decision: a tote model would only
repeat the picklist, since one tote holds one picklist here).

Modules: `models` (the state), `scans` (results, command words, locking, double fire),
`services` (packing), `handover` (manifest station), `putaway` (putaway station),
`commands` (the sheet of command barcodes), `admin` (the pages and print links).
"""
