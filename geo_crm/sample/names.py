"""Word lists for deterministic, plausible Finnish sample records, and shared code lists."""
from __future__ import annotations

import unicodedata

import numpy as np

FIRST_F = ["Aino", "Anna", "Emma", "Helmi", "Ilona", "Kaisa", "Laura", "Maria", "Noora", "Sanna", "Sofia", "Tiina",
           "Venla", "Elina", "Hanna", "Johanna", "Katja", "Minna", "Pia", "Riikka"]
FIRST_M = ["Aleksi", "Antti", "Eero", "Juha", "Jukka", "Kalle", "Lauri", "Matti", "Mikko", "Onni", "Pekka", "Risto",
           "Sami", "Timo", "Ville", "Heikki", "Janne", "Markku", "Tuomas", "Olli"]
LAST = ["Korhonen", "Virtanen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine", "Heikkinen", "Koskinen",
        "Järvinen", "Lehtonen", "Lehtinen", "Saarinen", "Salminen", "Heinonen", "Niemi", "Heikkilä", "Kinnunen",
        "Salonen", "Turunen", "Salo", "Laitinen", "Tuominen", "Rantanen", "Karjalainen", "Jokinen", "Mattila",
        "Savolainen", "Lahtinen", "Ahonen"]
COMPANY_A = ["Pohjolan", "Suomen", "Itä", "Länsi", "Etelä", "Keski", "Järvi", "Metsä", "Kivi", "Tuuli", "Aalto",
             "Revontuli", "Kaamos", "Saimaan", "Lapin", "Rannikon", "Kaupungin", "Harju", "Koivu", "Mänty"]
COMPANY_B = ["Rakennus", "Kone", "Ruoka", "Tekniikka", "Sähkö", "Kuljetus", "Puu", "Metalli", "Talo", "Kauppa",
             "Hoiva", "Kiinteistö", "Ravintola", "Auto", "Paino", "Energia", "Vesi", "Maatalous", "Terveys", "Logistiikka"]
COMPANY_SUFFIX = ["Oy", "Oy", "Oy", "Ab", "Oyj", "Ky", "Tmi"]
STREETS = ["Mannerheimintie", "Hämeenkatu", "Kauppakatu", "Rantatie", "Kirkkokatu", "Koulukatu", "Asemakatu",
           "Teollisuustie", "Puistokatu", "Satamakatu", "Myllytie", "Kalevankatu", "Torikatu", "Kuninkaankatu",
           "Keskuskatu", "Rautatienkatu", "Pohjoisesplanadi", "Aleksanterinkatu", "Tehtaankatu", "Linnankatu",
           "Urheilukatu", "Sairaalatie", "Vanha maantie", "Koivukuja", "Pajatie", "Nuottatie", "Haapaniemenkatu"]
TITLES = ["CEO", "Purchasing Manager", "Logistics Coordinator", "Office Manager", "CFO", "Store Manager",
          "Facility Manager", "Buyer"]
PRODUCTS = [
    ("Copy paper A4 (box)", "Office", 24.90), ("Printer toner black", "Office", 89.00),
    ("Coffee beans 1 kg", "Catering", 18.50), ("Paper cups 1000 pcs", "Catering", 32.00),
    ("Hand soap 5 l", "Hygiene", 21.00), ("Paper towels (case)", "Hygiene", 39.90),
    ("Floor cleaner 10 l", "Cleaning", 45.00), ("Microfibre cloths 50 pcs", "Cleaning", 29.50),
    ("Work gloves (12 pairs)", "Safety", 36.00), ("Safety vest", "Safety", 9.90),
    ("LED tube 120 cm", "Electrical", 14.20), ("Extension cord 10 m", "Electrical", 19.90),
    ("Pallet wrap film", "Packaging", 27.00), ("Cardboard boxes (50)", "Packaging", 48.00),
    ("Packing tape (36 rolls)", "Packaging", 41.00), ("Bottled water 24x0.5 l", "Catering", 12.90),
    ("Dishwasher tablets 100", "Cleaning", 34.00), ("First aid kit", "Safety", 59.00),
    ("Ergonomic office chair", "Furniture", 289.00), ("Standing desk", "Furniture", 549.00),
    ("Shelving unit", "Furniture", 179.00), ("Barcode scanner", "Electronics", 219.00),
    ("Label printer", "Electronics", 259.00), ("Thermal labels (12 rolls)", "Office", 44.00),
    ("Winter de-icing salt 25 kg", "Facility", 16.50), ("Snow shovel", "Facility", 29.00),
    ("Waste bags 125 l (100)", "Hygiene", 26.00), ("Disinfectant spray", "Hygiene", 8.90),
    ("Tea assortment", "Catering", 11.50), ("Oat milk 12x1 l", "Catering", 22.80),
    ("Batteries AA (48)", "Electrical", 24.00), ("Ink pens (50)", "Office", 15.90),
    ("Whiteboard markers (12)", "Office", 13.40), ("Forklift battery service", "Service", 390.00),
    ("Pallet truck", "Equipment", 420.00), ("Step ladder", "Equipment", 89.00),
    ("Cleaning trolley", "Equipment", 199.00), ("Vacuum cleaner (commercial)", "Equipment", 329.00),
    ("Stretch hood film", "Packaging", 64.00), ("Sanitary napkins (case)", "Hygiene", 31.00),
]
PLAN_ACTIONS = ["Introductory call", "Site visit and needs analysis", "Send product samples", "Prepare quotation",
                "Negotiate prices and delivery terms", "Follow-up meeting with purchasing", "Contract review"]
PLAN_RESULTS = ["Interested, asked for a quotation", "Needs confirmed; samples requested", "Samples received well",
                "Quotation under review", "Price objection; second offer sent", "Positive; decision next month",
                "Signed"]

DICTIONARIES = {
    "industry": [("construction", "Construction"), ("manufacturing", "Manufacturing"), ("retail", "Retail"),
                 ("hospitality", "Hotels and restaurants"), ("healthcare", "Healthcare"), ("education", "Education"),
                 ("logistics", "Transport and logistics"), ("public", "Public sector"), ("it", "IT and telecom"),
                 ("real_estate", "Real estate"), ("agriculture", "Agriculture and forestry"), ("energy", "Energy")],
    "service_type": [("consultation", "Consultation"), ("complaint", "Complaint"), ("repair", "Repair"),
                     ("installation", "Installation"), ("delivery_issue", "Delivery issue"),
                     ("billing", "Billing question")],
    "opportunity_source": [("web", "Web enquiry"), ("referral", "Referral"), ("trade_fair", "Trade fair"),
                           ("cold_call", "Cold call"), ("partner", "Partner lead"), ("existing", "Existing customer")],
    "partner_type": [("distributor", "Distributor"), ("reseller", "Reseller"), ("supplier", "Supplier")],
}


def ascii_upper(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().upper()


def person_name(rng: np.random.Generator, gender: str | None = None) -> str:
    if gender is None:
        gender = "female" if rng.random() < 0.5 else "male"
    first = FIRST_F if gender == "female" else FIRST_M
    return f"{first[int(rng.integers(0, len(first)))]} {LAST[int(rng.integers(0, len(LAST)))]}"


def company_name(rng: np.random.Generator) -> str:
    a = COMPANY_A[int(rng.integers(0, len(COMPANY_A)))]
    b = COMPANY_B[int(rng.integers(0, len(COMPANY_B)))]
    return f"{a} {b} {COMPANY_SUFFIX[int(rng.integers(0, len(COMPANY_SUFFIX)))]}"


def service_subject(kind: str, i: int) -> str:
    return {"consultation": "Product advice", "complaint": "Complaint about a delivery",
            "repair": "Equipment needs repair", "installation": "Installation request",
            "delivery_issue": "Missing items in delivery", "billing": "Invoice question"}.get(kind, "Request") + f" #{i + 1}"


def service_text(kind: str, i: int) -> str:
    return {"complaint": "The last delivery arrived late and two boxes were damaged.",
            "repair": "The pallet truck we bought does not lift properly.",
            "installation": "Please install the shelving units at our warehouse.",
            "delivery_issue": "Order arrived without the thermal labels.",
            "billing": "The invoice shows a different unit price than agreed.",
            }.get(kind, "We would like advice on cleaning products for a new site.")


# -- vectorised: whole columns of names at once (sample loads of a million rows) ---------------
def _table(*lists: list[str]) -> np.ndarray:
    """Every combination of one word from each list, joined by spaces, in index order."""
    out = np.array([""], dtype=object)
    for k, words in enumerate(lists):
        sep = " " if k else ""
        out = np.array([f"{a}{sep}{w}" for a in out for w in words], dtype=object)
    return out.astype(str)


_PERSON_F = _table(FIRST_F, LAST)
_PERSON_M = _table(FIRST_M, LAST)
_COMPANY = _table(COMPANY_A, COMPANY_B, COMPANY_SUFFIX)


def person_names(rng: np.random.Generator, size: int, female=None) -> np.ndarray:
    """`size` person names; `female` (bool array) fixes the gender, else it is random."""
    if female is None:
        female = rng.random(size) < 0.5
    u = rng.random(size)  # picks the first name from whichever list the gender uses
    last = rng.integers(0, len(LAST), size=size)
    kf = (u * len(FIRST_F)).astype(np.int64) * len(LAST) + last
    km = (u * len(FIRST_M)).astype(np.int64) * len(LAST) + last
    return np.where(female, _PERSON_F[kf], _PERSON_M[km])


def company_names(rng: np.random.Generator, size: int) -> np.ndarray:
    """`size` company names ("Saimaan Kone Oy")."""
    a = rng.integers(0, len(COMPANY_A), size=size)
    b = rng.integers(0, len(COMPANY_B), size=size)
    s = rng.integers(0, len(COMPANY_SUFFIX), size=size)
    return _COMPANY[(a * len(COMPANY_B) + b) * len(COMPANY_SUFFIX) + s]
