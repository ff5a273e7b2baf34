"""The admin's "add order" form: an order and its lines, created by `order_create`."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from channels.models import Channel
from inventory.models import PaymentMethod, Sku
from uniware.core.money import MoneyError, parse_money

from ..models import Order
from ..services import LineInput, OrderInput
from ..services.limits import max_quantity

LINES_HELP = (
    "One line per channel line: <code>SKU code, quantity, unit price[, shipping charges]</code>, "
    "e.g. <code>TSHIRT, 2, 499.00</code>. A line of quantity 2 becomes two units."
)


def parse_lines(text: str, channel_order_id: str) -> tuple[list[tuple[int, LineInput]], list[str]]:
    """Parse the lines textarea into (line number, line); errors name the line and the field."""
    lines: list[tuple[int, LineInput]] = []
    errors: list[str] = []
    rows = [(n, raw.strip()) for n, raw in enumerate(text.splitlines(), start=1) if raw.strip()]
    if not rows:
        return [], ["Add at least one line: SKU code, quantity, unit price."]
    for n, raw in rows:
        where = f"Line {n} ({raw!r})"
        parts = [p.strip() for p in raw.split(",")]
        if len(parts) not in (3, 4):
            errors.append(
                f"{where}: expected 'SKU code, quantity, unit price[, shipping charges]', "
                f"got {len(parts)} field{'s' if len(parts) != 1 else ''}"
            )
            continue
        sku, quantity, price = parts[:3]
        shipping = parts[3] if len(parts) == 4 else "0"
        if not sku:
            errors.append(f"{where}: the SKU code is empty")
            continue
        try:
            qty = int(quantity)
            if qty < 1:
                raise ValueError
        except ValueError:
            errors.append(f"{where}: quantity {quantity!r} is not a positive whole number")
            continue
        if qty > max_quantity():  # one row per unit: a typo of 100000 makes 100,000 rows
            errors.append(f"{where}: quantity {qty} is more than {max_quantity()} units")
            continue
        amounts = {}
        for name, value in (("unit price", price), ("shipping charges", shipping)):
            try:
                amounts[name] = parse_money(value)
            except MoneyError as exc:
                errors.append(f"{where}: {name} {value!r} {exc}")
        if len(amounts) < 2:
            continue
        line = LineInput(
            channel_order_item_id=f"{channel_order_id}-{n}",
            sku=sku,
            quantity=qty,
            selling_price=amounts["unit price"],
            shipping_charges=amounts["shipping charges"],
        )
        lines.append((n, line))
    return lines, errors


def _line_number(message: str) -> int:
    word = message.split(" ", 2)[1] if message.startswith("Line ") else "0"
    return int(word) if word.isdigit() else 0


class OrderAddForm(forms.Form):
    channel = forms.ModelChoiceField(queryset=Channel.objects.filter(is_enabled=True))
    channel_order_id = forms.CharField(label="Channel order id", max_length=60)
    order_date = forms.DateTimeField(
        required=False, help_text="Empty for now. Format: 2026-05-01 14:30."
    )
    payment_method = forms.ChoiceField(choices=PaymentMethod.choices, initial="PREPAID")
    third_party_shipping = forms.BooleanField(
        required=False, help_text="The channel ships: it supplies provider and tracking number."
    )
    pending_verification = forms.BooleanField(
        required=False, help_text="Wait for an 'accept' before allocating (e.g. COD to verify)."
    )
    priority = forms.IntegerField(initial=0, help_text="Higher is processed first.")
    customer_name = forms.CharField(max_length=200, required=False)
    customer_email = forms.EmailField(required=False)
    customer_phone = forms.CharField(max_length=20, required=False)
    ship_address_line1 = forms.CharField(label="Address line 1", max_length=255, required=False)
    ship_address_line2 = forms.CharField(label="Address line 2", max_length=255, required=False)
    ship_city = forms.CharField(label="City", max_length=100, required=False)
    ship_state = forms.CharField(label="State", max_length=100, required=False)
    ship_pincode = forms.CharField(label="Pincode", max_length=10)
    lines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60}), help_text=LINES_HELP
    )
    allocate = forms.BooleanField(
        required=False,
        initial=True,
        label="Allocate now",
        help_text="Block stock and create shipments right away.",
    )

    fieldsets = [
        (
            "Order",
            [
                "channel",
                "channel_order_id",
                "order_date",
                "payment_method",
                "third_party_shipping",
                "pending_verification",
                "priority",
            ],
        ),
        (
            "Customer and shipping address",
            [
                "customer_name",
                "customer_email",
                "customer_phone",
                "ship_address_line1",
                "ship_address_line2",
                "ship_city",
                "ship_state",
                "ship_pincode",
            ],
        ),
        ("Lines", ["lines", "allocate"]),
    ]

    def clean_ship_pincode(self) -> str:
        pincode = self.cleaned_data["ship_pincode"].strip()
        if not pincode.isdigit() or len(pincode) != 6:
            raise ValidationError(f"Pincode {pincode!r} must be 6 digits.")
        return pincode

    def clean(self):
        cleaned = super().clean()
        channel = cleaned.get("channel")
        coid = (cleaned.get("channel_order_id") or "").strip()
        if channel and coid:
            cleaned["channel_order_id"] = coid
            existing = Order.objects.filter(channel=channel, channel_order_id=coid).first()
            if existing is not None:
                self.add_error(
                    "channel_order_id",
                    f"Channel {channel.code} already has order {coid} ({existing.code}).",
                )
        if "lines" in cleaned and coid:
            lines, errors = parse_lines(cleaned["lines"], coid)
            codes = {line.sku for _, line in lines}
            known = set(Sku.objects.filter(code__in=codes).values_list("code", flat=True))
            errors += [
                f"Line {n}: unknown SKU code {line.sku!r}"
                for n, line in lines
                if line.sku not in known
            ]
            if errors:
                self.add_error("lines", sorted(errors, key=_line_number))
            cleaned["parsed_lines"] = [line for _, line in lines]
        return cleaned

    def to_input(self) -> OrderInput:
        data = self.cleaned_data
        return OrderInput(
            channel=data["channel"],
            channel_order_id=data["channel_order_id"],
            lines=data["parsed_lines"],
            ship_pincode=data["ship_pincode"],
            payment_method=data["payment_method"],
            order_date=data.get("order_date"),
            third_party_shipping=data["third_party_shipping"],
            pending_verification=data["pending_verification"],
            priority=data["priority"],
            customer_name=data["customer_name"],
            customer_email=data["customer_email"],
            customer_phone=data["customer_phone"],
            ship_address_line1=data["ship_address_line1"],
            ship_address_line2=data["ship_address_line2"],
            ship_city=data["ship_city"],
            ship_state=data["ship_state"],
        )

    def add_service_error(self, exc: ValidationError) -> None:
        """Show the service's refusal next to the field it names."""
        if hasattr(exc, "error_dict"):
            for name, errors in exc.error_dict.items():
                target = name if name in self.fields else None
                if name in ("sku", "quantity", "selling_price", "shipping_charges", "code"):
                    target = "lines" if name != "code" else "channel_order_id"
                self.add_error(target, errors)
        else:
            self.add_error(None, exc)
