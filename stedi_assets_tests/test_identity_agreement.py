"""One identity key: Spark's `identity_key` and Python's `identity_of` give the same key for every string.

The strings come from hypothesis (any Unicode text, e-mail-shaped text with every kind of space around it, and
the characters whose case Java and Python map differently) and are evaluated by Spark in one job.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from stedi_assets.contracts import SURROUNDING_SPACE
from stedi_assets.transforms.identity import identity_key, identity_of

# What the identity rule removes at either end, and characters that look like it but are kept (other format
# characters, what Python's str.isspace calls space, the old Mongolian vowel separator).
SPACES = [c for c in map(chr, range(0x10000)) if re.fullmatch(SURROUNDING_SPACE, c)]
NEAR_SPACES = ["\u180e", "\u200e", "\u200f", "\u2061", "\u00ad", "\x1c", "\x1d", "\x1e", "\x1f", "\x00"]
# Characters whose case Java and Python map differently or unexpectedly: special and one-to-many mappings
# (dotted capital I, sharp s, long s, ligatures), letters that lower-case to ASCII (the Kelvin sign), context
# rules (the Greek final sigma), title case, and letters newer than one side's tables: Java 17 has Unicode 13,
# Python 3.11 Unicode 14, Spark's `lower` (ICU 78) Unicode 17.
UNEVEN_CASE = "".join(
    [
        "IiKkSs\u00df\u00c5\u00e5\u0149\u0390\u0345",
        "\u0130",  # LATIN CAPITAL LETTER I WITH DOT ABOVE: lower-cases to i + combining dot
        "\u0131",  # LATIN SMALL LETTER DOTLESS I: upper-cases to I
        "\u017f",  # LATIN SMALL LETTER LONG S: upper-cases to S
        "\u1e9e",  # LATIN CAPITAL LETTER SHARP S
        "\u212a",  # KELVIN SIGN: lower-cases to k
        "\u212b",  # ANGSTROM SIGN
        "\u2126",  # OHM SIGN
        "\u03a3\u03c3\u03c2",  # GREEK SIGMA, small sigma, final sigma
        "\u01c4\u01c5\u01c6",  # DZ with caron: upper, title and lower case
        "\ufb00",  # LATIN SMALL LIGATURE FF: upper-cases to FF
        "\u13f8\u1c90\u216b\u24b6",  # Cherokee small ye, Georgian Mtavruli an, Roman numeral twelve, circled A
        "\u2c2f",  # GLAGOLITIC CAPITAL LETTER CAUDATE CHRIVI, Unicode 14
        "\ua7c0",  # LATIN CAPITAL LETTER OLD POLISH O, Unicode 14
        "\U00010570",  # VITHKUQI CAPITAL LETTER A, Unicode 14
        "\ua7cb\ua7cc\ua7da\ua7dc\u1c89",  # Latin and Cyrillic capitals of Unicode 16, unknown to Python 3.11
        "\U00010d50",  # GARAY CAPITAL LETTER A, Unicode 16
        "\U00016ea0",  # a capital letter of Unicode 17 (Spark's ICU 78 has it)
        "\U0001e900",  # ADLAM CAPITAL LETTER ALIF
        "\U000118a0",  # WARANG CITI CAPITAL LETTER NGAA
        "\U0001f600",  # an emoji: a character outside the BMP without case
    ]
)
EDGE = st.text(st.sampled_from(SPACES + NEAR_SPACES), max_size=4)
PART = st.text(st.sampled_from(list(UNEVEN_CASE + string.ascii_letters + ".+-_'")) | st.characters(), min_size=1)
STRATEGIES: dict[str, st.SearchStrategy[str]] = {
    "any text": st.text(),
    "uneven case and spaces": st.text(st.sampled_from([*UNEVEN_CASE, *SPACES, *NEAR_SPACES, *"aZ@"])),
    "e-mail shaped": st.builds(lambda a, local, domain, b: f"{a}{local}@{domain}{b}", EDGE, PART, PART, EDGE),
    "e-mail": st.builds(lambda a, email, b: f"{a}{email}{b}", EDGE, st.emails(), EDGE),
}
EXAMPLES = 700  # per strategy


def drawn(strategy: st.SearchStrategy[str], count: int) -> list[str]:
    """`count` strings hypothesis draws from `strategy`, the same on every run (derandomized)."""
    found: list[str] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(value: str) -> None:
        found.append(value)

    collect()
    return found


def known() -> list[str]:
    """Each uneven-case and space character alone, inside an address and around one."""
    strings = []
    for c in UNEVEN_CASE:
        strings += [c, c.upper(), c.lower(), f"{c}{c.upper()}@Ex{c}ample.COM", f"A{c}\u03a3@x.org"]
    for c in SPACES + NEAR_SPACES:
        strings += [c, f"{c}Alice@Example.COM{c}", f"{c}{c}a{c}b@c{c}{c}", f"\u2126{c}", f"{c}\u03c2"]
    return strings


def test_spark_and_python_give_the_same_identity_key_for_every_string(spark: SparkSession) -> None:
    strings = known()
    for strategy in STRATEGIES.values():
        strings += drawn(strategy, EXAMPLES)
    strings = sorted(set(strings))
    assert len(strings) > 2_000
    # One job for every string: the input comes back as well, so that a string Spark received altered shows.
    rows = spark.createDataFrame([(s,) for s in strings], "email string").select("email", identity_key("email"))
    by_spark: dict[str, str] = dict(rows.collect())
    assert sorted(by_spark) == strings
    differ = sorted((s for s in strings if by_spark[s] != identity_of(s)), key=len)
    assert not [(s, by_spark[s], identity_of(s)) for s in differ[:10]], f"{len(differ)} strings differ"


@pytest.mark.parametrize(
    ("delivered", "key"),
    [
        (" \u200bAlice@EXAMPLE.com\ufeff\n", "alice@example.com"),
        ("\u3000\u0085BOB@x.ORG\u2060\u00a0", "bob@x.org"),
        ("ÉMILE@Exämple.COM", "Émile@exämple.com"),
        ("STRASSE@X.de", "strasse@x.de"),
        ("Straße@X.DE", "straße@x.de"),
        ("İ\u212aς@X", "İ\u212aς@x"),
        ("a\u200bb@c", "a\u200bb@c"),
        ("\u180eA@B\u200e", "\u180ea@b\u200e"),
    ],
    ids=[
        "ascii",
        "unicode-spaces",
        "non-ascii-letters",
        "strasse",
        "sharp-s",
        "uneven-case",
        "inner-space",
        "near-spaces",
    ],
)
def test_the_identity_key_trims_spaces_and_lower_cases_ascii_only(delivered: str, key: str) -> None:
    assert identity_of(delivered) == key


@settings(max_examples=500, deadline=None)
@given(st.one_of(*STRATEGIES.values()))
def test_the_identity_key_is_its_own_key_and_ignores_ascii_case(email: str) -> None:
    key = identity_of(email)
    assert identity_of(key) == key
    assert identity_of(email.translate(str.maketrans(string.ascii_lowercase, string.ascii_uppercase))) == key
    assert not re.match(SURROUNDING_SPACE, key[:1]) and not re.match(SURROUNDING_SPACE, key[-1:])
    assert len(key) <= len(email)
