"""Who may use what in the admin: the role table, as data.

`TABLE` below is the one statement, for each of the seven roles, of which admin pages (list,
view, add, change, delete), actions, custom views and downloads it may use. The permissions
that make it so are granted in `uniware/core/roles.py` and checked by the admin classes;
`tests/test_role_matrix.py` logs in as each role, tries every entry the admin site has, and
fails on any difference, including an entry the table does not list yet. So a new page or
action cannot leak: it must be added here, reviewed, before the test passes.

`python manage.py check_permissions` prints the table for a seller's admin.

Reading a row: the entry, then one column per role, its initial when the role may use the
entry and `.` when not. Entries are `<app>.<model> <what>`; `what` is `list`, `view`, `add`,
`change`, `delete`, `action <name>`, or a custom view of the model's admin (job downloads:
`download ORDERS` means downloading one's own ORDERS export; `packing`, `manifest`: the scan
stations, open to whoever may invoice and label, or open and close manifests, in the admin).
"""

from __future__ import annotations

ROLES: dict[str, str] = {
    "A": "Admin",
    "C": "Catalog Manager",
    "I": "Inbound Manager",
    "P": "Pick and Pack",
    "R": "Returns Manager",
    "S": "Sales Manager",
    "W": "Warehouse Manager",
}

TABLE = """
# entry                                                     A C I P R S W
auth.group action delete_selected                           A . . . . . .
auth.group add                                              A . . . . . .
auth.group change                                           A . . . . . .
auth.group delete                                           A . . . . . .
auth.group list                                             A . . . . . .
auth.group view                                             A . . . . . .

auth.user action delete_selected                            A . . . . . .
auth.user add                                               A . . . . . .
auth.user change                                            A . . . . . .
auth.user delete                                            A . . . . . .
auth.user list                                              A . . . . . .
auth.user set password                                      A . . . . . .
auth.user view                                              A . . . . . .

axes.accessattempt action cleanup_expired_attempts          A . . . . . .
axes.accessattempt action delete_selected                   A . . . . . .
axes.accessattempt change                                   A . . . . . .
axes.accessattempt delete                                   A . . . . . .
axes.accessattempt list                                     A . . . . . .
axes.accessattempt view                                     A . . . . . .

axes.accessfailurelog action delete_selected                A . . . . . .
axes.accessfailurelog change                                A . . . . . .
axes.accessfailurelog delete                                A . . . . . .
axes.accessfailurelog list                                  A . . . . . .
axes.accessfailurelog view                                  A . . . . . .

axes.accesslog action delete_selected                       A . . . . . .
axes.accesslog change                                       A . . . . . .
axes.accesslog delete                                       A . . . . . .
axes.accesslog list                                         A . . . . . .
axes.accesslog view                                         A . . . . . .

channels.channel action delete_selected                     A . . . . . .
channels.channel action pull_now                            A . . . . S .
channels.channel action push_channel_inventory_now          A C . . . S .
channels.channel action resync                              A . . . . S .
channels.channel action sync_deliveries_now                 A . . . . S .
channels.channel action sync_returns_now                    A . . . . S .
channels.channel action sync_status_now                     A . . . . S .
channels.channel add                                        A . . . . . .
channels.channel change                                     A . . . . . .
channels.channel delete                                     A . . . . . .
channels.channel list                                       A C . . . S W
channels.channel view                                       A C . . . S W

channels.synccursor list                                    A . . . . S W
channels.synccursor view                                    A . . . . S W

channels.syncerror list                                     A . . . . S W
channels.syncerror view                                     A . . . . S W
channels.syncerror action dismiss_errors                    A . . . . S .

channels.synclease list                                     A . . . . S W
channels.synclease view                                     A . . . . S W

channels.syncrun list                                       A . . . . S W
channels.syncrun view                                       A . . . . S W

core.adminauditevent list                                   A . . . . . .
core.adminauditevent view                                   A . . . . . .

core.sequence action delete_selected                        A . . . . . .
core.sequence add                                           A . . . . . .
core.sequence change                                        A . . . . . .
core.sequence delete                                        A . . . . . .
core.sequence list                                          A . . . . . W
core.sequence view                                          A . . . . . W

core.statechange list                                       A . . . . . W
core.statechange view                                       A . . . . . W

core.tenant change                                          A . . . . . .
core.tenant list                                            A . . . . . W
core.tenant view                                            A . . . . . W

django_celery_beat.clockedschedule action delete_selected   A . . . . . .
django_celery_beat.clockedschedule add                      A . . . . . .
django_celery_beat.clockedschedule change                   A . . . . . .
django_celery_beat.clockedschedule delete                   A . . . . . .
django_celery_beat.clockedschedule list                     A . . . . . .
django_celery_beat.clockedschedule view                     A . . . . . .

django_celery_beat.crontabschedule action delete_selected   A . . . . . .
django_celery_beat.crontabschedule add                      A . . . . . .
django_celery_beat.crontabschedule change                   A . . . . . .
django_celery_beat.crontabschedule delete                   A . . . . . .
django_celery_beat.crontabschedule list                     A . . . . . .
django_celery_beat.crontabschedule view                     A . . . . . .

django_celery_beat.intervalschedule action delete_selected  A . . . . . .
django_celery_beat.intervalschedule add                     A . . . . . .
django_celery_beat.intervalschedule change                  A . . . . . .
django_celery_beat.intervalschedule delete                  A . . . . . .
django_celery_beat.intervalschedule list                    A . . . . . .
django_celery_beat.intervalschedule view                    A . . . . . .

django_celery_beat.periodictask action delete_selected      A . . . . . .
django_celery_beat.periodictask action disable_tasks        A . . . . . .
django_celery_beat.periodictask action enable_tasks         A . . . . . .
django_celery_beat.periodictask action run_tasks            A . . . . . .
django_celery_beat.periodictask action toggle_tasks         A . . . . . .
django_celery_beat.periodictask add                         A . . . . . .
django_celery_beat.periodictask change                      A . . . . . .
django_celery_beat.periodictask delete                      A . . . . . .
django_celery_beat.periodictask list                        A . . . . . .
django_celery_beat.periodictask view                        A . . . . . .

django_celery_beat.solarschedule action delete_selected     A . . . . . .
django_celery_beat.solarschedule add                        A . . . . . .
django_celery_beat.solarschedule change                     A . . . . . .
django_celery_beat.solarschedule delete                     A . . . . . .
django_celery_beat.solarschedule list                       A . . . . . .
django_celery_beat.solarschedule view                       A . . . . . .

imports.exportjob action delete_selected                    A . . . . . .
imports.exportjob delete                                    A . . . . . .
imports.exportjob download CREDIT_NOTES                     A . . P R . W
imports.exportjob download INVENTORY                        A C I . . . W
imports.exportjob download INVOICES                         A . . P . . W
imports.exportjob download LABELS                           A . . P . . W
imports.exportjob download LISTINGS                         A C . . . S W
imports.exportjob download MANIFESTS                        A . . P R . W
imports.exportjob download ORDERS                           A . . . . S W
imports.exportjob download PICKLISTS                        A . . P R . W
imports.exportjob download SERVICEABILITY                   A C I . . . W
imports.exportjob download SHIPMENTS                        A . . . . S W
imports.exportjob download UNITS                            A . . . . S W
imports.exportjob list                                      A C I P R S W
imports.exportjob progress CREDIT_NOTES                     A . . P R . W
imports.exportjob progress INVENTORY                        A C I . . . W
imports.exportjob progress INVOICES                         A . . P . . W
imports.exportjob progress LABELS                           A . . P . . W
imports.exportjob progress LISTINGS                         A C . . . S W
imports.exportjob progress MANIFESTS                        A . . P R . W
imports.exportjob progress ORDERS                           A . . . . S W
imports.exportjob progress PICKLISTS                        A . . P R . W
imports.exportjob progress SERVICEABILITY                   A C I . . . W
imports.exportjob progress SHIPMENTS                        A . . . . S W
imports.exportjob progress UNITS                            A . . . . S W
imports.exportjob start INVENTORY                           A . I . . . W
imports.exportjob start LISTINGS                            A C . . . S W
imports.exportjob start ORDERS                              A . . . . S W
imports.exportjob start SERVICEABILITY                      A . I . . . W
imports.exportjob start SHIPMENTS                           A . . . . S W
imports.exportjob start UNITS                               A . . . . S W
imports.exportjob view                                      A C I P R S W

imports.importjob action delete_selected                    A . . . . . .
imports.importjob add                                       A C I . . S W
imports.importjob confirm INVENTORY                         A . I . . . W
imports.importjob confirm LISTINGS                          A C . . . . W
imports.importjob confirm ORDERS                            A . . . . S W
imports.importjob confirm SERVICEABILITY                    A . . . . . W
imports.importjob delete                                    A . . . . . .
imports.importjob discard INVENTORY                         A . I . . . W
imports.importjob discard LISTINGS                          A C . . . . W
imports.importjob discard ORDERS                            A . . . . S W
imports.importjob discard SERVICEABILITY                    A . . . . . W
imports.importjob error report INVENTORY                    A C I . . . W
imports.importjob error report LISTINGS                     A C . . . S W
imports.importjob error report ORDERS                       A . . . . S W
imports.importjob error report SERVICEABILITY               A C I . . . W
imports.importjob list                                      A C I . . S W
imports.importjob progress INVENTORY                        A C I . . . W
imports.importjob progress LISTINGS                         A C . . . S W
imports.importjob progress ORDERS                           A . . . . S W
imports.importjob progress SERVICEABILITY                   A C I . . . W
imports.importjob template INVENTORY                        A . I . . . W
imports.importjob template LISTINGS                         A C . . . . W
imports.importjob template ORDERS                           A . . . . S W
imports.importjob template SERVICEABILITY                   A . . . . . W
imports.importjob view                                      A C I . . S W

inventory.facility action delete_selected                   A . . . . . .
inventory.facility add                                      A . . . . . W
inventory.facility change                                   A . . . . . W
inventory.facility delete                                   A . . . . . .
inventory.facility list                                     A C I P R S W
inventory.facility view                                     A C I P R S W

inventory.inventory action delete_selected                  A . . . . . .
inventory.inventory add                                     A . I . . . W
inventory.inventory change                                  A . I . . . W
inventory.inventory delete                                  A . . . . . .
inventory.inventory list                                    A C I P R . W
inventory.inventory view                                    A C I P R . W

inventory.putaway action complete                           A . I . R . W
inventory.putaway action discard                            A . I . R . W
inventory.putaway list                                      A C I P R . W
inventory.putaway view                                      A C I P R . W

inventory.serviceability action delete_selected             A . . . . . .
inventory.serviceability add                                A . . . . . W
inventory.serviceability change                             A . . . . . W
inventory.serviceability delete                             A . . . . . .
inventory.serviceability list                               A C I P R . W
inventory.serviceability view                               A C I P R . W

inventory.shelf action delete_selected                      A . . . . . .
inventory.shelf add                                         A . I . . . W
inventory.shelf change                                      A . I . . . W
inventory.shelf delete                                      A . . . . . .
inventory.shelf list                                        A C I P R . W
inventory.shelf view                                        A C I P R . W

inventory.shippingprovider action delete_selected           A . . . . . .
inventory.shippingprovider add                              A . . . . . W
inventory.shippingprovider change                           A . . . . . W
inventory.shippingprovider delete                           A . . . . . .
inventory.shippingprovider list                             A C I P R . W
inventory.shippingprovider view                             A C I P R . W

inventory.sku action delete_selected                        A . . . . . .
inventory.sku add                                           A C . . . . W
inventory.sku change                                        A C . . . . W
inventory.sku delete                                        A . . . . . .
inventory.sku list                                          A C I P R S W
inventory.sku view                                          A C I P R S W

inventory.stockmovement list                                A C I P R . W
inventory.stockmovement view                                A C I P R . W

listings.channellisting action map_to_sku                   A C . . . . .
listings.channellisting action push_inventory_now           A C . . . S .
listings.channellisting change                              A C . . . . .
listings.channellisting list                                A C . . . S W
listings.channellisting view                                A C . . . S W

listings.inventoryfeed list                                 A C . . . S W
listings.inventoryfeed view                                 A C . . . S W

notifications.notification action discard                   A . . . . S .
notifications.notification action retry_now                 A . . . . S .
notifications.notification list                             A . . . . S W
notifications.notification view                             A . . . . S W

orders.invoice action print_invoices                        A . . P R . W
orders.invoice list                                         A . . P R S W
orders.invoice view                                         A . . P R S W

orders.manifest action close                                A . . P . . W
orders.manifest action discard                              A . . P . . W
orders.manifest action print_handover_sheets                A . . P R . W
orders.manifest add                                         A . . P . . W
orders.manifest change                                      A . . P . . W
orders.manifest list                                        A . . P R . W
orders.manifest view                                        A . . P R . W

orders.order action accept                                  A . . . . S W
orders.order action allocate                                A . . . . S W
orders.order action cancel_orders                           A . . . . S W
orders.order action create_order_reverse_pickup             A . . . R . W
orders.order action hold                                    A . . . . S W
orders.order action mark_orders_returned                    A . . . R . W
orders.order action sync_status_from_channel                A . . . . S W
orders.order action unhold                                  A . . . . S W
orders.order add                                            A . . . . S W
orders.order change                                         A . . . . S W
orders.order list                                           A . . P R S W
orders.order view                                           A . . P R S W

orders.orderitem action cancel_units                        A . . . . S W
orders.orderitem action create_unit_reverse_pickup          A . . . R . W
orders.orderitem action replace_units                       A . . . R . W
orders.orderitem action reship_units                        A . . . R . W
orders.orderitem list                                       A . . P R S W
orders.orderitem view                                       A . . P R S W

orders.picklist action invoice_all                          A . . P . . W
orders.picklist action label_all                            A . . P . . W
orders.picklist action manifest_all                         A . . P . . W
orders.picklist action print_labels                         A . . P . . W
orders.picklist action print_picklists                      A . . P R . W
orders.picklist action receive                              A . . P . . W
orders.picklist action receive_partial                      A . . P . . W
orders.picklist list                                        A . . P R . W
orders.picklist view                                        A . . P R . W

orders.returnmanifest action close                          A . . . R . W
orders.returnmanifest action receive_shipments              A . . . R . W
orders.returnmanifest add                                   A . . . R . W
orders.returnmanifest list                                  A . . . R . W
orders.returnmanifest view                                  A . . . R . W

orders.reversepickup action allocate_courier                A . . . R . W
orders.reversepickup action cancel                          A . . . R . W
orders.reversepickup action complete                        A . . . R . W
orders.reversepickup action mark_not_received               A . . . R . W
orders.reversepickup list                                   A . . . R . W
orders.reversepickup view                                   A . . . R . W

orders.shipment action add_to_manifest                      A . . P . . W
orders.shipment action confirm_repacked                     A . . P . . W
orders.shipment action expect_return                        A . . . R . W
orders.shipment action force_dispatch                       A . . . . . W
orders.shipment action generate_label                       A . . P . . W
orders.shipment action invoice                              A . . P . . W
orders.shipment action mark_delivered                       A . . . . . W
orders.shipment action mark_returned                        A . . . R . W
orders.shipment action mark_shipped                         A . . . . . W
orders.shipment action merge                                A . . . . . W
orders.shipment action pick_for_invoicing                   A . . P . . W
orders.shipment action pick_for_staging                     A . . P . . W
orders.shipment action receive_return                       A . . . R . W
orders.shipment action print_invoices                       A . . P . . W
orders.shipment action print_labels                         A . . P . . W
orders.shipment action print_labels_4up                     A . . P . . W
orders.shipment action recheck_serviceability               A . . P . . W
orders.shipment action remove_from_manifest                 A . . P . . W
orders.shipment action split                                A . . . . . W
orders.shipment change                                      A . . P . . W
orders.shipment list                                        A . . P R S W
orders.shipment view                                        A . . P R S W

stations.station action delete_selected                     A . . . . . .
stations.station command sheet                              A . I P R . W
stations.station delete                                     A . . . . . .
stations.station list                                       A . I P R . W
stations.station manifest                                   A . . P . . W
stations.station packing                                    A . . P . . W
stations.station print handover sheet                       A . . P R . W
stations.station print invoice                              A . . P . . W
stations.station print label                                A . . P . . W
stations.station putaway                                    A . I . R . W
stations.station view                                       A . I P R . W
"""


def parse(table: str) -> dict[str, frozenset[str]]:
    """`{entry: roles}` from the text table (comments and blank lines skipped)."""
    access: dict[str, frozenset[str]] = {}
    initials = list(ROLES)
    for number, line in enumerate(table.splitlines(), 1):
        line = line.split("#", 1)[0].rstrip()
        if not line:
            continue
        words = line.split()
        entry, marks = " ".join(words[: -len(initials)]), words[-len(initials) :]
        pairs = zip(marks, initials, strict=False)
        if len(words) <= len(initials) or any(m not in (i, ".") for m, i in pairs):
            raise ValueError(f"role table line {number}: expected the entry then {initials}")
        if entry in access:
            raise ValueError(f"role table line {number}: {entry!r} is listed twice")
        access[entry] = frozenset(ROLES[m] for m in marks if m != ".")
    return access


def format_table(access: dict[str, set[str] | frozenset[str]], *, header: bool = False) -> str:
    """The table's text for `access` (the inverse of `parse`), sorted by entry."""
    width = max((len(e) for e in access), default=10) + 2
    lines = [f"# {'entry'.ljust(width - 2)}{' '.join(ROLES)}"] if header else []
    for entry in sorted(access):
        marks = [i if ROLES[i] in access[entry] else "." for i in ROLES]
        lines.append(f"{entry.ljust(width)}{' '.join(marks)}")
    return "\n".join(lines)


ACCESS: dict[str, frozenset[str]] = parse(TABLE)
