"""A realistic florist webshop database, for the demo, the drills and the benchmarks.

The schema holds the data categories of a Dutch florist's privacy statement: customers with
name/address (NAW), e-mail, phone, birth date, gender, IBAN, username, Chamber of Commerce
(KvK) number for business customers and a last-active date; orders and order lines; invoices
under the 7-year fiscal retention; newsletter subscriptions keyed by e-mail (no foreign key);
complaints and contact-form messages whose free text mentions e-mail addresses and phone
numbers; web sessions with IP addresses and cookie ids.

``build_shop(url, customers=N)`` creates and fills it on any SQLAlchemy URL, deterministic for
a given seed. Nothing here talks to the ledger or the reconciler.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

FIRST = ["Jan", "Anouk", "Pieter", "Sanne", "Dirk", "Fleur", "Henk", "Lotte", "Bram", "Iris",
         "Joost", "Noor", "Kees", "Femke", "Ruud", "Maud", "Sem", "Eva", "Thijs", "José"]
LAST = ["de Vries", "Jansen", "van Dijk", "Bakker", "Visser", "Smit", "Meijer", "de Boer",
        "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker",
        "Brouwer", "de Wit", "Dijkstra", "Müller"]
STREETS = ["Dorpsstraat", "Kerkstraat", "Molenweg", "Stationsweg", "Lindelaan", "Rozengracht"]
CITIES = [("Waalwijk", "5141"), ("Oss", "5341"), ("'s-Hertogenbosch", "5211"), ("Tilburg", "5038"),
          ("Utrecht", "3511"), ("Amsterdam", "1015")]
BANKS = ["ABNA", "RABO", "INGB", "TRIO", "SNSB"]
PRODUCTS = ["Boeket Zomerpracht", "Rouwstuk wit", "Bruidsboeket", "Tulpen 20 stuks",
            "Orchidee in pot", "Plukboeket", "Zakelijk abonnement"]

metadata = sa.MetaData()
customers = sa.Table(
    "customers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("cust_no", sa.String(20), nullable=False, unique=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("street", sa.String(100)),
    sa.Column("postcode", sa.String(10)),
    sa.Column("city", sa.String(60)),
    sa.Column("email", sa.String(120), nullable=False, unique=True),
    sa.Column("phone", sa.String(30)),
    sa.Column("birth_date", sa.Date),
    sa.Column("gender", sa.String(10)),
    sa.Column("iban", sa.String(34)),
    sa.Column("username", sa.String(60)),
    sa.Column("kvk", sa.String(12)),
    sa.Column("job_title", sa.String(60)),
    sa.Column("newsletter_opt_in", sa.Boolean, nullable=False),
    sa.Column("tracking_consent", sa.Boolean, nullable=False),
    sa.Column("last_active_at", sa.DateTime),
)
orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("ordered_at", sa.DateTime, nullable=False),
    sa.Column("delivery_name", sa.String(100)),
    sa.Column("delivery_address", sa.String(200)),
    sa.Column("card_message", sa.Text),
    sa.Column("total_cents", sa.Integer, nullable=False),
)
order_lines = sa.Table(
    "order_lines", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("product", sa.String(80), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
)
invoices = sa.Table(
    "invoices", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("invoice_date", sa.Date, nullable=False),
    sa.Column("billing_name", sa.String(100)),
    sa.Column("billing_address", sa.String(200)),
    sa.Column("billing_iban", sa.String(34)),
    sa.Column("amount_cents", sa.Integer, nullable=False),
)
newsletter = sa.Table(
    "newsletter", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("address", sa.String(120), nullable=False),
    sa.Column("subscribed_at", sa.DateTime, nullable=False),
)
complaints = sa.Table(
    "complaints", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
contact_messages = sa.Table(
    "contact_messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_email", sa.String(120), nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
web_sessions = sa.Table(
    "web_sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("cookie_id", sa.String(40), nullable=False),
    sa.Column("ip", sa.String(45), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=True),
)


def iban_for(rnd: random.Random) -> str:
    """A Dutch IBAN with a valid ISO 13616 checksum."""
    bank = rnd.choice(BANKS)
    account = f"{rnd.randint(0, 9_999_999_999):010d}"
    digits = "".join(str(int(c, 36)) for c in bank + account + "NL00")
    check = 98 - int(digits) % 97
    return f"NL{check:02d}{bank}{account}"


def phone_for(rnd: random.Random, i: int) -> str:
    """Dutch numbers written the ways people write them."""
    if i % 3 == 0:
        return f"06-{rnd.randint(10_000_000, 59_999_999)}"
    if i % 3 == 1:
        return f"+31 6 {rnd.randint(1000, 5999)} {rnd.randint(1000, 9999)}"
    return f"0416-{rnd.randint(100_000, 999_999)}"


@dataclass(frozen=True)
class Person:
    id: int
    cust_no: str
    name: str
    email: str
    phone: str
    iban: str
    cookie_id: str
    ip: str


def build_shop(url: str, *, customers_count: int = 200, seed: int = 42,
               today: date = date(2026, 11, 20)) -> list[Person]:
    """Create the schema and fill it; returns the people, for the demo to pick requests from."""
    rnd = random.Random(seed)
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    people: list[Person] = []
    rows: dict[str, list[dict[str, object]]] = {t.name: [] for t in metadata.sorted_tables}
    order_id = line_id = invoice_id = 0
    for i in range(1, customers_count + 1):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        name = f"{first} {last}"
        slug = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
        # Spelled the way web forms collect them: mixed case, stray spaces.
        email = f"{slug}{i}@{rnd.choice(['gmail.com', 'hotmail.nl', 'ziggo.nl', 'kpnmail.nl'])}"
        stored_email = email.title() if i % 4 == 0 else (f" {email} " if i % 7 == 0 else email)
        city, postcode = rnd.choice(CITIES)
        business = i % 9 == 0
        last_active = datetime.combine(today, datetime.min.time()) - timedelta(days=rnd.randint(1, 900))
        person = Person(
            id=i, cust_no=f"K-{10000 + i}", name=name, email=email, phone=phone_for(rnd, i),
            iban=iban_for(rnd), cookie_id=f"ck_{rnd.getrandbits(64):016x}",
            ip=f"83.{rnd.randint(80, 99)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
        )
        people.append(person)
        rows["customers"].append({
            "id": i, "cust_no": person.cust_no, "name": name,
            "street": f"{rnd.choice(STREETS)} {rnd.randint(1, 180)}", "postcode": f"{postcode} {rnd.choice('ABCDEFGH')}{rnd.choice('KLMNPRST')}",
            "city": city, "email": stored_email, "phone": person.phone,
            "birth_date": date(rnd.randint(1950, 2004), rnd.randint(1, 12), rnd.randint(1, 28)),
            "gender": rnd.choice(["v", "m", "x"]), "iban": person.iban,
            "username": f"{first.lower()}{i}", "kvk": f"{rnd.randint(10_000_000, 99_999_999)}" if business else None,
            "job_title": "inkoper" if business else None,
            "newsletter_opt_in": rnd.random() < 0.6, "tracking_consent": rnd.random() < 0.5,
            "last_active_at": last_active,
        })
        for _ in range(rnd.randint(0, 4)):
            order_id += 1
            ordered = last_active - timedelta(days=rnd.randint(0, 900))
            rows["orders"].append({
                "id": order_id, "customer_id": i, "ordered_at": ordered, "delivery_name": name,
                "delivery_address": f"{rnd.choice(STREETS)} {rnd.randint(1, 180)}, {city}",
                "card_message": rnd.choice(["Gefeliciteerd!", "Sterkte", f"Liefs, {first}", None]),
                "total_cents": rnd.randint(1500, 12000),
            })
            for _ in range(rnd.randint(1, 3)):
                line_id += 1
                rows["order_lines"].append({"id": line_id, "order_id": order_id,
                                            "product": rnd.choice(PRODUCTS), "quantity": rnd.randint(1, 3)})
            invoice_id += 1
            rows["invoices"].append({
                "id": invoice_id, "customer_id": i, "invoice_date": ordered.date(),
                "billing_name": name, "billing_address": f"{postcode} {city}",
                "billing_iban": person.iban, "amount_cents": rnd.randint(1500, 12000),
            })
        if rows["customers"][-1]["newsletter_opt_in"]:
            rows["newsletter"].append({"id": len(rows["newsletter"]) + 1, "address": email.upper() if i % 5 == 0 else email,
                                       "subscribed_at": last_active - timedelta(days=400)})
        if i % 6 == 0:
            rows["complaints"].append({
                "id": len(rows["complaints"]) + 1, "customer_id": i, "created_at": last_active,
                "body": f"Het boeket kwam verlept aan. Bel me op {person.phone} of mail {email}.",
            })
        if i % 8 == 0:
            rows["contact_messages"].append({
                "id": len(rows["contact_messages"]) + 1, "sender_email": email, "received_at": last_active,
                "body": f"Graag een offerte voor een bruiloft. Mijn nummer is {person.phone}.",
            })
        for _ in range(rnd.randint(1, 3)):
            rows["web_sessions"].append({
                "id": len(rows["web_sessions"]) + 1, "cookie_id": person.cookie_id, "ip": person.ip,
                "started_at": last_active, "customer_id": i if rnd.random() < 0.7 else None,
            })
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if rows[table.name]:
                conn.execute(table.insert(), rows[table.name])
    engine.dispose()
    return people


DATAMAP_YAML = """\
# Where personal data lives in the florist's webshop (docs/datamap.md).
version: 1
subject:
  table: customers
  key: id
  identifiers:
    email: email
    phone: phone
    customer_number: cust_no
    iban: iban
    username: username
    kvk: kvk
  # Invoices must outlive the customer (fiscal retention), so the customer row is kept as an
  # anonymous shell rather than deleted.
  action: anonymize
  columns:
    cust_no: redact                 # UNIQUE: distinct obviously fake values
    email: redact                   # UNIQUE: erased-<id>@erased.invalid
    name: {fixed: "(verwijderd)"}
    street: "null"
    postcode: "null"
    city: "null"
    phone: "null"
    birth_date: "null"
    gender: "null"
    iban: "null"
    username: "null"
    kvk: "null"
    job_title: "null"
    newsletter_opt_in: {fixed: false}
    tracking_consent: {fixed: false}
tables:
  order_lines:
    link: {parent: orders, on: {order_id: id}}
    action: delete
  orders:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
  invoices:                         # fiscal records: kept 7 years, masked meanwhile
    link: {parent: customers, on: {customer_id: id}}
    action: retain
    retain: {years: 7, after: invoice_date}
    columns:
      billing_name: redact
      billing_address: redact
      billing_iban: "null"
  complaints:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
  contact_messages:                 # contact form: no account, matched on the sender's e-mail
    match: {email: sender_email}
    action: delete
  newsletter:
    match: {email: address}
    action: delete
  web_sessions:                     # sessions of logged-in customers
    link: {parent: customers, on: {customer_id: id}}
    action: delete
retention:
  - name: inactive-2-years
    column: last_active_at
    years: 2
opt_outs:
  - purpose: marketing
    table: customers
    set: {newsletter_opt_in: false}
  - purpose: marketing
    table: newsletter
    delete: true
  - purpose: tracking-cookies
    table: customers
    set: {tracking_consent: false}
  - purpose: tracking-cookies
    table: web_sessions
    delete: true
"""
