"""Admin for returns, one module per kind, as in `orders.services.returns`:

- `courier`: courier returns (RTO) on the shipment page (expect / receive / mark returned),
  "mark returned" for orders, and the return manifests;
- `pickups`: customer returns: "create a reverse pickup" for orders and units, and the
  reverse pickups;
- `follow_ups`: reship and replace units (a new, linked order);
- `tables`: what the order, manifest and pickup pages show of returns and putaways;
- `common`: the intermediate page of an action that needs input (`form_step`) and how
  actions report units and created records (shared with `orders.admin.cancellation` and the
  putaway admin).

Actions are functions (`admin.action`) that the order, unit and shipment admins list in
their `actions` and `object_actions`, next to their own, so each page's actions are read in
one place; each names the permission (`has_<name>_permission`) the admin must define.
"""
