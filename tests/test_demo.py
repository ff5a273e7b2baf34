import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from gst.numbering import financial_year, number_problem
from orders.models import Invoice, InvoiceLine, Manifest, Order, OrderItem, Shipment


def test_demo_loader_builds_a_tenant_with_work_at_every_stage(db):
    # the tests run with DEBUG off, as production: the published passwords need the flag
    call_command("load_demo", orders=60, seed=7, allow_known_passwords=True)
    assert Order.objects.count() == 60
    shipment_states = set(Shipment.objects.values_list("status", flat=True))
    assert {"CREATED", "PACKED", "READY_TO_SHIP", "DISPATCHED"} <= shipment_states
    assert OrderItem.objects.filter(status="UNFULFILLABLE").exists()
    assert Manifest.objects.filter(status="CLOSED").exists()
    assert Order.objects.filter(status="COMPLETE").exists()
    assert get_user_model().objects.get(username="packer").groups.filter(name="Pick and Pack")
    # GST invoices with Rule 46 numbers of this financial year, CGST+SGST and IGST alike
    year = financial_year(timezone.localdate())
    invoices = Invoice.objects.all()
    assert invoices and all(number_problem(i.code) is None for i in invoices)
    assert all(f"/{year}/" in i.code for i in invoices)
    assert InvoiceLine.objects.filter(invoice__in=invoices).count() >= invoices.count()
    assert invoices.filter(igst__gt=0).exists() and invoices.filter(cgst__gt=0).exists()

    call_command("load_demo", orders=60, seed=7)  # idempotent; the users exist: no flag needed
    assert Order.objects.count() == 60


def test_demo_loader_refuses_published_passwords_when_debug_is_off(db, settings):
    assert settings.DEBUG is False
    with pytest.raises(CommandError) as refused:
        call_command("load_demo", orders=5)
    message = str(refused.value)
    assert "admin, packer, sales" in message and "'admin'" in message
    assert "demo-pass-123" in message
    assert "DEBUG=1" in message and "--allow-known-passwords" in message
    assert not get_user_model().objects.exists()
    assert not Order.objects.exists()


def test_demo_loader_creates_the_demo_logins_in_development(db, settings):
    settings.DEBUG = True
    call_command("load_demo", orders=5)
    User = get_user_model()
    assert User.objects.get(username="admin").check_password("admin")
    assert User.objects.get(username="packer").check_password("demo-pass-123")


def test_setup_periodic_tasks_is_reproducible_and_keeps_edited_intervals(db):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    call_command("setup_periodic_tasks")
    task = PeriodicTask.objects.get(task="orders.tasks.reallocate_unfulfillable")
    assert (task.interval.every, task.interval.period, task.queue) == (900, "seconds", "default")
    task.interval = IntervalSchedule.objects.create(every=60, period="seconds")
    task.save()
    call_command("setup_periodic_tasks")
    assert PeriodicTask.objects.get(pk=task.pk).interval.every == 60
    call_command("setup_periodic_tasks", reset=True)
    assert PeriodicTask.objects.get(pk=task.pk).interval.every == 900
    assert PeriodicTask.objects.filter(task="orders.tasks.reallocate_unfulfillable").count() == 1
