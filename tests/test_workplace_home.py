"""Each role's home page (issue 15): the work waiting for that role, per facility, each tile
linking to the filtered list; tiles of lists a role may not open are left out. The browser
test keeps a screenshot of every role's home in test-artifacts/role-homes/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.urls import reverse

from channels.models import RunTrigger, SyncError, SyncKind, SyncRun
from inventory.models import Facility, Inventory, Shelf
from listings.models import ChannelListing
from orders.models import Shipment, ShipmentStatus
from uniware.core.roles import ROLE_PERMISSIONS

from .factories import UserFactory, make_world
from .test_admin import shipment_of, to_status
from .test_browser import PASSWORD, browser, click_to_next_page  # noqa: F401 (the fixture)

HOME = reverse("admin:index")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "role-homes"


def tiles(client) -> dict[str, int]:
    cache.clear()
    html = client.get(HOME).content.decode()
    return {k: int(n) for k, n in re.findall(r'data-tile="(\w+)" data-count="(\d+)"', html)}


def make_work(world) -> None:
    """Two shipments to pick in WH1, one in WH2, one picked; an open sync error; an
    unmapped listing."""
    world.sku.inventory.update(quantity=20)
    wh2 = Facility.objects.create(code="WH2", name="Second", priority=2)
    shelf = Shelf.objects.create(facility=wh2, code="B1")
    Inventory.objects.create(facility=wh2, shelf=shelf, sku=world.sku, quantity=1)
    orders = [world.order(f"FK-{n}") for n in range(3)]
    to_status([shipment_of(orders[0])], ShipmentStatus.PICKED)
    Shipment.objects.filter(pk=shipment_of(orders[1]).pk).update(facility=wh2)
    world.order("FK-9")
    run = SyncRun.objects.create(
        task="t", kind=SyncKind.STATUS, channel=world.channel, trigger=RunTrigger.SCHEDULE
    )
    SyncError.objects.create(run=run, channel=world.channel, kind="CONFLICT", message="x")
    ChannelListing.objects.create(channel=world.channel, product_id="P-881", variant_id="V-1")


def test_pick_and_pack_sees_floor_work_per_facility(world, client):
    make_work(world)
    client.force_login(UserFactory(roles=["Pick and Pack"]))
    shown = tiles(client)
    assert shown == {
        "to_pick": 3,
        "picklists": 0,
        "to_invoice": 1,
        "to_label": 0,
        "to_manifest": 0,
        "manifests": 0,
    }
    html = client.get(HOME).content.decode()
    per_facility = re.search(r'uw-tile-facilities" data-tile="to_pick">(.*?)</div>', html, re.S)
    assert per_facility and re.sub(r"<[^>]+>", "", per_facility.group(1)).split() == [
        "WH1",
        "2",
        "·",
        "WH2",
        "1",
    ]
    wh2 = Facility.objects.get(code="WH2")
    link = re.search(r'href="([^"]+)">WH2 1<', html).group(1).replace("&amp;", "&")
    listed = client.get(link).context["cl"].result_list
    assert [s.facility_id for s in listed] == [wh2.pk]


def test_sales_sees_the_office_work_and_each_tile_opens_its_list(world, client):
    make_work(world)
    client.force_login(UserFactory(roles=["Sales Manager"]))
    shown = tiles(client)
    assert shown["sync_errors"] == 1 and shown["notifications"] == 0
    assert "to_pick" not in shown  # floor work is not the office's
    html = client.get(HOME).content.decode()
    tile = html[html.index('data-tile="sync_errors"') :]
    link = re.search(r'href="([^"]+)"', tile).group(1)
    assert len(client.get(link.replace("&amp;", "&")).context["cl"].result_list) == 1


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_every_role_has_a_home_with_only_tiles_it_may_open(world, client, role):
    make_work(world)
    user = UserFactory(roles=[role]) if role != "Admin" else UserFactory(is_superuser=True)
    client.force_login(user)
    html = client.get(HOME).content.decode()
    assert f'id="uw-home-{role.lower().replace(" ", "-")}"' in html
    for url in re.findall(r'class="uw-tile-main" href="([^"]+)"', html):
        assert client.get(url.replace("&amp;", "&")).status_code == 200, (role, url)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_screenshots_of_every_role_home(browser):  # noqa: F811 (the fixture)
    from playwright.sync_api import expect

    cache.clear()
    world = make_world(stock=20)
    make_work(world)
    users = {}
    for role in sorted(ROLE_PERMISSIONS):
        user = UserFactory(username=f"home-{role.lower().replace(' ', '-')}")
        user.groups.add(Group.objects.get(name=role))
        user.set_password(PASSWORD)
        user.save()
        users[role] = user.username
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser() as ui:
        page = ui.page
        for role, username in users.items():
            page.context.clear_cookies()
            page.goto(f"{ui.base_url}/admin/", wait_until="load")
            page.fill("#id_username", username)
            page.fill("#id_password", PASSWORD)
            click_to_next_page(page, page.locator("#login-form [type=submit]"))
            home = page.locator(f"#uw-home-{role.lower().replace(' ', '-')}")
            expect(home).to_be_visible()
            expect(page.locator("#searchbar, input[autofocus]")).to_have_count(0)  # no list here
            page.screenshot(path=str(ARTIFACTS / f"{username}.png"), full_page=True)
        assert not ui.problems, ui.problems
    assert {p.stem for p in ARTIFACTS.glob("home-*.png")} >= set(users.values())
