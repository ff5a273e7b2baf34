"""What the role-day browser tests share (`tests/test_role_day*_browser.py`): a user of one
role, logged in on the live server's home page, and the clicks counted from there."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.cache import cache

from .factories import UserFactory
from .test_browser import PASSWORD


class Clicks:
    """Clicks staff make, counted: a click or a choice in a select is one."""

    def __init__(self, page) -> None:
        self.page, self.count = page, 0

    def to_next_page(self, locator) -> None:
        self.count += 1
        with self.page.expect_navigation(wait_until="load"):
            locator.click()

    def choose(self, selector: str, value: str) -> None:
        self.count += 1
        self.page.select_option(selector, value)

    def tick(self, locator) -> None:
        self.count += 1
        locator.check()


def role_user(role: str, username: str):
    """A user holding one role group, with the browser tests' password. The home page's
    cached counts are dropped: they are another test's otherwise."""
    cache.clear()
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name=role))
    user.set_password(PASSWORD)
    user.save()
    return user


def logged_in(ui, user) -> Clicks:
    """Log in on the home page; the clicks are counted from the home page on."""
    page = ui.page
    page.goto(f"{ui.base_url}/admin/", wait_until="load")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation(wait_until="load"):
        page.locator("#login-form [type=submit]").click()
    return Clicks(page)
