"""GST rules for invoices (the `gst` package): tax split of tax-inclusive prices, GSTINs, state
codes from marketplace text and PINs, invoice numbering under CGST Rule 46. Pure Python, no
database."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gst.gstin import check_character, gstin_problem, gstin_state, make_gstin
from gst.numbering import (
    MAX_LENGTH,
    exhausted,
    financial_year,
    financial_year_start,
    number_problem,
    render_prefix,
    sequence_problem,
)
from gst.states import (
    STATE_CHOICES,
    STATES,
    place_of_supply,
    state_code,
    state_from_pincode,
)
from gst.tax import GST_RATES, Supply, merge_supplies, shipping_supplies, tax_lines

D = Decimal
PAISA = D("0.01")
CESS_RATES = [D(0), D(1), D(12), D(15), D(22)]


def supply(key="SKU1", price="100", quantity=1, rate="18", **extra) -> Supply:
    return Supply(
        key=key,
        description=f"Item {key}",
        hsn=extra.pop("hsn", "6109"),
        quantity=quantity,
        unit_price=D(price),
        gst_rate=D(rate),
        **extra,
    )


# --- Tax: properties -----------------------------------------------------------------------


def paise(low: int, high: int):
    return st.integers(low, high).map(lambda n: D(n).scaleb(-2))


@st.composite
def supplies(draw):
    price = draw(paise(1, 9_999_999))
    quantity = draw(st.integers(1, 50))
    discount = draw(paise(0, int(price * quantity * 100)))
    return Supply(
        key=draw(st.sampled_from(["A", "B", "C"])),
        description="x",
        hsn=draw(st.sampled_from(["6109", "3304", "8517"])),
        quantity=quantity,
        unit_price=price,
        discount=discount,
        gst_rate=draw(st.sampled_from(GST_RATES)),
        cess_rate=draw(st.sampled_from(CESS_RATES)),
    )


state_pairs = st.one_of(
    st.sampled_from(sorted(STATES)).map(lambda s: (s, s)),
    st.tuples(st.sampled_from(sorted(STATES)), st.sampled_from(sorted(STATES))),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(supplies(), min_size=1, max_size=6), state_pairs)
def test_every_line_and_the_invoice_sum_exactly_to_what_the_channel_collects(items, states):
    seller, pos = states
    taxed = tax_lines(items, seller_state=seller, place_of_supply=pos)
    assert taxed.intra_state == (seller == pos)
    for item, line in zip(items, taxed.lines, strict=True):
        gross = item.quantity * item.unit_price - item.discount
        assert line.gross == line.total == gross
        assert line.taxable_value + line.cgst + line.sgst + line.igst + line.cess == gross
        for amount in (line.taxable_value, line.cgst, line.sgst, line.igst, line.cess):
            assert amount >= 0 and amount == amount.quantize(PAISA)
        rates = 1 + (item.gst_rate + item.cess_rate) / 100
        assert abs(line.taxable_value - gross / rates) <= D("0.005")
        gst = line.cgst + line.sgst + line.igst
        assert abs(gst - line.taxable_value * item.gst_rate / 100) <= PAISA * 2
        assert abs(line.cess - line.taxable_value * item.cess_rate / 100) <= PAISA * 2
        if taxed.intra_state:
            assert line.igst == 0 and line.igst_rate == 0
            assert 0 <= line.cgst - line.sgst <= PAISA
            assert line.cgst_rate == line.sgst_rate == item.gst_rate / 2
        else:
            assert line.cgst == line.sgst == 0 and line.cgst_rate == line.sgst_rate == 0
            assert line.igst_rate == item.gst_rate
    assert taxed.grand_total == sum(i.quantity * i.unit_price - i.discount for i in items)
    parts = (taxed.taxable, taxed.cgst, taxed.sgst, taxed.igst, taxed.cess)
    assert sum(parts) == taxed.grand_total
    for field in ("taxable", "cgst", "sgst", "igst", "cess"):
        assert sum(getattr(row, field) for row in taxed.hsn_summary) == getattr(taxed, field)
    keys = [(row.hsn, row.rate) for row in taxed.hsn_summary]
    assert keys == sorted(set(keys)) == sorted({(i.hsn, i.gst_rate) for i in items})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(supplies(), paise(0, 20_000)), min_size=1, max_size=6))
def test_merging_and_shipping_lines_keep_what_is_collected(goods):
    items = [g for g, _ in goods]
    merged = merge_supplies(items)
    assert len({(s.key, s.unit_price, s.gst_rate, s.cess_rate) for s in items}) == len(merged)
    assert sum(s.quantity * s.unit_price - s.discount for s in merged) == sum(
        s.quantity * s.unit_price - s.discount for s in items
    )
    shipping = shipping_supplies(goods)
    assert sum(s.unit_price for s in shipping) == sum(amount for _, amount in goods)
    assert all(s.is_shipping and s.quantity == 1 and s.unit_price > 0 for s in shipping)
    charged = {(g.hsn, g.gst_rate, g.cess_rate) for g, amount in goods if amount}
    assert {(s.hsn, s.gst_rate, s.cess_rate) for s in shipping} <= charged
    assert len({s.key for s in shipping}) == len(shipping)


# --- Tax: known examples and refusals --------------------------------------------------------


def test_1180_at_18_percent_within_the_state():
    taxed = tax_lines([supply(price="1180")], seller_state="29", place_of_supply="29")
    (line,) = taxed.lines
    assert (line.taxable_value, line.cgst, line.sgst, line.igst) == (
        D("1000.00"),
        D("90.00"),
        D("90.00"),
        D("0.00"),
    )
    assert (line.cgst_rate, line.sgst_rate, line.igst_rate) == (9, 9, 0)
    assert taxed.intra_state and taxed.grand_total == D("1180.00")


def test_499_at_5_percent_to_another_state():
    taxed = tax_lines([supply(price="499", rate="5")], seller_state="29", place_of_supply="27")
    (line,) = taxed.lines
    assert (line.taxable_value, line.igst, line.cgst, line.sgst) == (
        D("475.24"),
        D("23.76"),
        D("0.00"),
        D("0.00"),
    )
    assert not taxed.intra_state and line.igst_rate == 5


def test_odd_paisa_goes_to_cgst_and_quarter_percent_halves_exactly():
    taxed = tax_lines([supply(price="105.03", rate="3")], seller_state="07", place_of_supply="07")
    (line,) = taxed.lines
    assert line.taxable_value == D("101.97") and (line.cgst, line.sgst) == (D("1.53"), D("1.53"))
    odd = tax_lines([supply(price="10.19", rate="5")], seller_state="07", place_of_supply="07")
    assert (odd.lines[0].taxable_value, odd.lines[0].cgst, odd.lines[0].sgst) == (
        D("9.70"),
        D("0.25"),
        D("0.24"),
    )
    gold = tax_lines([supply(price="100.25", rate="0.25")], seller_state="24", place_of_supply="24")
    assert gold.lines[0].cgst_rate == D("0.125") and gold.lines[0].taxable_value == D("100.00")


def test_cess_is_on_the_taxable_value_and_quantity_and_discount_count():
    taxed = tax_lines(
        [supply(price="800", quantity=2, rate="28", discount=D("100"), cess_rate=D("22"))],
        seller_state="27",
        place_of_supply="29",
    )
    (line,) = taxed.lines
    assert line.gross == D("1500.00")
    assert (line.taxable_value, line.igst, line.cess) == (D("1000.00"), D("280.00"), D("220.00"))
    assert taxed.cess == D("220.00") and taxed.grand_total == D("1500.00")


def test_zero_rated_line_has_no_tax():
    taxed = tax_lines([supply(price="45.50", rate="0")], seller_state="29", place_of_supply="29")
    line = taxed.lines[0]
    assert line.taxable_value == D("45.50") and line.cgst == line.sgst == line.cess == 0


def test_hsn_summary_groups_by_code_and_rate_sorted():
    items = [
        supply("A", "118", hsn="6109"),
        supply("B", "236", hsn="6109"),
        supply("C", "105", hsn="6109", rate="5"),
        supply("D", "112", hsn="3304", rate="12"),
    ]
    taxed = tax_lines(items, seller_state="29", place_of_supply="33")
    assert [(r.hsn, r.rate, r.taxable, r.igst) for r in taxed.hsn_summary] == [
        ("3304", 12, D("100.00"), D("12.00")),
        ("6109", 5, D("100.00"), D("5.00")),
        ("6109", 18, D("300.00"), D("54.00")),
    ]


def test_merge_makes_one_line_per_sku_and_price_in_first_seen_order():
    items = [
        supply("A", "100"),
        supply("B", "50"),
        supply("A", "100", discount=D("5")),
        supply("A", "90"),
        supply("A", "100", is_shipping=True),
    ]
    merged = merge_supplies(items)
    assert [(s.key, s.unit_price, s.quantity, s.discount, s.is_shipping) for s in merged] == [
        ("A", 100, 2, 5, False),
        ("B", 50, 1, 0, False),
        ("A", 90, 1, 0, False),
        ("A", 100, 1, 0, True),
    ]


def test_shipping_is_taxed_with_the_goods_it_ships_with():
    shirt, soap, phone = (
        supply("SHIRT", "500", rate="5", hsn="6109"),
        supply("SOAP", "100", rate="18", hsn="3401"),
        supply("PHONE", "9000", rate="18", hsn="3401"),
    )
    lines = shipping_supplies([(shirt, D("40")), (soap, D("20")), (phone, D("30")), (shirt, 0)])
    assert [(s.hsn, s.gst_rate, s.unit_price, s.description) for s in lines] == [
        ("6109", 5, D("40.00"), "Shipping charges"),
        ("3401", 18, D("50.00"), "Shipping charges"),
    ]
    assert shipping_supplies([(shirt, D("0"))]) == []
    taxed = tax_lines([shirt, *lines], seller_state="29", place_of_supply="29")
    assert taxed.grand_total == D("590.00") and taxed.lines[1].is_shipping
    assert taxed.lines[1].taxable_value == D("38.10") and taxed.lines[2].taxable_value == D("42.37")


@pytest.mark.parametrize(
    ("item", "states", "says"),
    [
        (supply(rate="7"), ("29", "29"), "'SKU1': gst_rate 7% is not a GST rate"),
        (supply(quantity=0), ("29", "29"), "'SKU1': quantity must be at least 1"),
        (supply(price="10.005"), ("29", "29"), "'SKU1': unit_price 10.005 has more than 2"),
        (supply(discount=D("0.001")), ("29", "29"), "'SKU1': discount 0.001 has more than 2"),
        (supply(discount=D("100.01")), ("29", "29"), "'SKU1': discount 100.01 is more than"),
        (supply(price="-1"), ("29", "29"), "'SKU1': unit_price must be zero or more"),
        (supply(cess_rate=1.5), ("29", "29"), "'SKU1': cess_rate must be a Decimal"),
        (supply(), ("29", "25"), "place of supply '25' is not a GST state code"),
        (supply(), ("KA", "29"), "seller state 'KA' is not a GST state code"),
    ],
)
def test_tax_lines_refuses_bad_lines_naming_them(item, states, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        tax_lines([item], seller_state=states[0], place_of_supply=states[1])


def test_float_prices_are_refused():
    item = Supply(key="X", description="x", hsn="1", quantity=1, unit_price=9.99, gst_rate=D(5))
    with pytest.raises(ValueError, match="'X': unit_price must be a Decimal"):
        tax_lines([item], seller_state="29", place_of_supply="29")


# --- GSTIN -----------------------------------------------------------------------------------

# Published GSTINs: GSTN's own example, and one company's registrations in five states.
REAL_GSTINS = [
    "27AAPFU0939F1ZV",
    "27AADCB2230M1ZT",
    "07AADCB2230M1ZV",
    "33AADCB2230M1Z0",
    "06AADCB2230M1ZX",
    "19AADCB2230M1ZQ",
]


@pytest.mark.parametrize("value", REAL_GSTINS)
def test_real_gstins_are_valid(value):
    assert gstin_problem(value) is None
    assert make_gstin(value[:2], value[2:12], value[12]) == value
    assert gstin_state(value) == value[:2]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("27AADCB2230M1ZU", "check character should be T"),
        ("27AADCB2230N1ZT", "check character should be"),
        ("72AADCB2230M1ZT", "state code 72 is not a GST state"),
        ("99AADCB2230M1ZT", "state code 99 is not a GST state"),
        ("27AADCB2230M1Z", "must be 15 characters"),
        ("27aadcb2230m1zt", "capital letters and digits"),
        ("27AADC12230M1ZT", "must be a PAN"),
        ("27AADCB2230M0ZT", "entity number"),
        ("27AADCB2230M1YT", "character 14 must be Z"),
    ],
)
def test_gstin_problems(value, says):
    assert says in gstin_problem(value)


@settings(max_examples=60)
@given(
    st.sampled_from(sorted(STATES)),
    st.from_regex(r"[A-Z]{5}[0-9]{4}[A-Z]", fullmatch=True),
    st.integers(0, 13),
    st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
)
def test_any_single_wrong_character_changes_the_check(state, pan, position, char):
    value = make_gstin(state, pan)
    assert gstin_problem(value) is None
    body = value[:14]
    changed = body[:position] + char + body[position + 1 :]
    assert (check_character(changed) == value[14]) == (changed == body)


def test_make_gstin_refuses_bad_parts():
    with pytest.raises(ValueError, match="state code 98"):
        make_gstin("98", "AADCB2230M")
    with pytest.raises(ValueError):
        make_gstin("27", "AADCB2230")


# --- States ----------------------------------------------------------------------------------


def test_every_state_code_and_choice_label_reads_back():
    assert len(STATES) == 37 and "25" not in STATES and "28" not in STATES
    assert STATES["26"] == "Dadra and Nagar Haveli and Daman and Diu" and STATES["97"]
    assert ("29", "29 Karnataka") in STATE_CHOICES
    for code, label in STATE_CHOICES:
        assert state_code(code) == state_code(label) == state_code(STATES[code]) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("KA", "29"),
        ("Karnataka", "29"),
        (" karnataka ", "29"),
        ("IN-KA", "29"),
        ("Orissa", "21"),
        ("OD", "21"),
        ("Pondicherry", "34"),
        ("New Delhi", "07"),
        ("NCT of Delhi", "07"),
        ("DL", "07"),
        ("Tamilnadu", "33"),
        ("TN", "33"),
        ("Telengana", "36"),
        ("TS", "36"),
        ("TG", "36"),
        ("J&K", "01"),
        ("Jammu & Kashmir", "01"),
        ("Andaman & Nicobar", "35"),
        ("Dadra & Nagar Haveli", "26"),
        ("Daman and Diu", "26"),
        ("Uttaranchal", "05"),
        ("Chattisgarh", "22"),
        ("MH", "27"),
        ("UP", "09"),
        ("AP", "37"),
        ("WB", "19"),
        ("29", "29"),
        ("9", "09"),
        ("29-Karnataka", "29"),
        ("Ladakh", "38"),
    ],
)
def test_state_names_as_channels_send_them(text, code):
    assert state_code(text) == code


@pytest.mark.parametrize("text", ["", "  ", "XX", "25", "28", "99", "Atlantis", "29 Kerala"])
def test_unknown_states_are_none(text):
    assert state_code(text) is None


@pytest.mark.parametrize(
    ("pin", "code"),
    [
        ("110001", "07"),  # New Delhi
        ("122002", "06"),  # Gurugram
        ("141001", "03"),  # Ludhiana
        ("160017", "04"),  # Chandigarh
        ("171001", "02"),  # Shimla
        ("190001", "01"),  # Srinagar
        ("194101", "38"),  # Leh
        ("226001", "09"),  # Lucknow
        ("247001", "09"),  # Saharanpur
        ("247667", "05"),  # Roorkee
        ("248001", "05"),  # Dehradun
        ("263001", "05"),  # Nainital
        ("302001", "08"),  # Jaipur
        ("380001", "24"),  # Ahmedabad
        ("396191", "24"),  # Vapi
        ("396210", "26"),  # Daman
        ("396230", "26"),  # Silvassa
        ("362520", "26"),  # Diu
        ("400001", "27"),  # Mumbai
        ("403001", "30"),  # Panaji
        ("452001", "23"),  # Indore
        ("492001", "22"),  # Raipur
        ("500001", "36"),  # Hyderabad
        ("530001", "37"),  # Visakhapatnam
        ("533464", "34"),  # Yanam
        ("560001", "29"),  # Bengaluru
        ("560 001", "29"),
        ("600001", "33"),  # Chennai
        ("605001", "34"),  # Puducherry
        ("609602", "34"),  # Karaikal
        ("605602", "33"),  # Villupuram
        ("673310", "34"),  # Mahe
        ("682001", "32"),  # Kochi
        ("682555", "31"),  # Kavaratti
        ("700001", "19"),  # Kolkata
        ("737101", "11"),  # Gangtok
        ("744101", "35"),  # Port Blair
        ("751001", "21"),  # Bhubaneswar
        ("781001", "18"),  # Guwahati
        ("791111", "12"),  # Itanagar
        ("793001", "17"),  # Shillong
        ("795001", "14"),  # Imphal
        ("796001", "15"),  # Aizawl
        ("797001", "13"),  # Kohima
        ("799001", "16"),  # Agartala
        ("800001", "10"),  # Patna
        ("834001", "20"),  # Ranchi
        ("826001", "20"),  # Dhanbad
        ("831001", "20"),  # Jamshedpur
        ("812001", "10"),  # Bhagalpur
    ],
)
def test_state_from_pincode(pin, code):
    assert state_from_pincode(pin) == code


@pytest.mark.parametrize("pin", ["", "56001", "5600011", "056001", "56O001", "900001", "290001"])
def test_malformed_or_army_pins_are_none(pin):
    assert state_from_pincode(pin) is None


def test_place_of_supply_prefers_the_state_text():
    assert place_of_supply("Karnataka", "110001") == "29"
    assert place_of_supply("", "110001") == "07"
    assert place_of_supply("Narnia", "560001") == "29"
    assert place_of_supply("", "") is None


# --- Numbering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "year", "start"),
    [
        (date(2026, 12, 2), "26-27", date(2026, 4, 1)),
        (date(2027, 3, 31), "26-27", date(2026, 4, 1)),
        (date(2027, 4, 1), "27-28", date(2027, 4, 1)),
        (date(2099, 5, 1), "99-00", date(2099, 4, 1)),
    ],
)
def test_financial_year(day, year, start):
    assert financial_year(day) == year and financial_year_start(day) == start


def test_render_prefix():
    assert render_prefix("INV/{FY}/", date(2027, 3, 31)) == "INV/26-27/"
    assert render_prefix("INV-", date(2027, 3, 31)) == "INV-"


def test_a_yearly_series_with_the_year_fills_sixteen_characters_at_most():
    assert sequence_problem("INV/{FY}/", 6, restarts_yearly=True) is None
    assert len(render_prefix("INV/{FY}/", date(2026, 4, 1)) + "000001") == 16
    assert sequence_problem("INV/{FY}/", 5, restarts_yearly=False) is None
    assert sequence_problem("INV-WH1-", 8, restarts_yearly=False) is None


@pytest.mark.parametrize(
    ("prefix", "padding", "yearly", "says"),
    [
        (
            "INV WH1",
            6,
            False,
            "prefix 'INV WH1' may contain only letters, digits, '-' and '/' (found ' ')",
        ),
        ("INV_{fy}", 4, False, "(found '_', '{', '}')"),
        (
            "INVOICE-WH1-",
            6,
            False,
            "numbers would be up to 18 characters (prefix 'INVOICE-WH1-' is 12, with 6 digits); "
            "an invoice number may have at most 16 (CGST Rule 46)",
        ),
        ("INV/{FY}/", 7, True, "up to 17 characters (prefix 'INV/{FY}/' is 10, with 7 digits)"),
        ("INV-", 6, True, "must carry {FY} in its prefix, or its numbers repeat across years"),
        ("INV-", 0, False, "at least 1 digit"),
        ("inv-", 6, False, "lower-case"),
        ("/INV", 6, False, "starts with '/'"),
        ("", 6, False, "starts with '0'"),
    ],
)
def test_sequence_problems(prefix, padding, yearly, says):
    assert says in sequence_problem(prefix, padding, restarts_yearly=yearly)


def test_number_problem_and_exhaustion():
    assert number_problem("INV/26-27/000001") is None
    assert "17 characters" in number_problem("INV/26-27/0000001")
    assert "(found '#')" in number_problem("INV#1")
    assert number_problem("") and number_problem("0001")
    assert MAX_LENGTH == 16
    assert not exhausted(6, 999_999) and exhausted(6, 1_000_000)
    assert sequence_problem("", 1, restarts_yearly=False) is None  # "1", "2", ...
