"""Tests of number normalisation, DID pools, number masks and outbound condition lists."""

from __future__ import annotations

from collections.abc import Callable

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trunks.numbers import (
    CallerMask,
    CallerMaskError,
    DidPoolError,
    DidRange,
    InvalidNumber,
    MaskEntry,
    NumberListError,
    format_did_pool,
    is_nanp_e164,
    length_list_matches,
    merge_did_ranges,
    normalize_number,
    number_to_int,
    parse_caller_mask,
    parse_did_pool,
    parse_length_list,
    parse_nanp,
    parse_prefix_list,
    pool_contains,
    pool_intersection,
    prefix_list_matches,
    to_e164_format,
    to_nanpa,
)
from trunks.voipms.formats import format_for_voipms

# Area codes of the United States and Canada, to build numbers that phonenumbers holds valid.
US_CA_AREA_CODES = ("212", "332", "416", "514", "604", "646", "845", "917", "303", "613")


def _is_valid_nanp(national: str) -> bool:
    """Return whether phonenumbers holds the 10 digits a valid +1 number."""
    return phonenumbers.is_valid_number(phonenumbers.parse("+1" + national))


nanp_nationals = st.builds(
    lambda npa, nxx, line: f"{npa}{nxx}{line:04d}",
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(0, 9999),
).filter(_is_valid_nanp)

us_ca_numbers = st.builds(
    lambda npa, nxx, line: int(f"1{npa}{nxx}{line:04d}"),
    st.sampled_from(US_CA_AREA_CODES),
    st.integers(200, 999),
    st.integers(0, 9999),
)


# normalize_number ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "3322496213",
        "13322496213",
        "+13322496213",
        " 3322496213 ",
        "332-249-6213",
        "332.249.6213",
        "(332) 249-6213",
        "1 (332) 249-6213",
        "+1 332 249 6213",
        "+1-332-249-6213",
    ],
)
def test_normalize_number_writes_nanp_spellings_in_e164(raw: str) -> None:
    assert normalize_number(raw) == "+13322496213"


def test_normalize_number_accepts_canadian_numbers() -> None:
    assert normalize_number("4165551234") == "+14165551234"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("72975", "72975"),
        (" 262966 ", "262966"),
        ("ACME Bank", "ACME Bank"),
        ("  VoIPms\n", "VoIPms"),
        ("5555550100", "5555550100"),
        ("1234567890", "1234567890"),
        ("+3322496213", "+3322496213"),
        ("+442079460958", "+442079460958"),
        ("23322496213", "23322496213"),
        ("", ""),
        ("+", "+"),
        ("332\u00a0249\u00a06213", "332\u00a0249\u00a06213"),
    ],
)
def test_normalize_number_keeps_other_senders_as_they_came(raw: str, expected: str) -> None:
    assert normalize_number(raw) == expected


@given(nanp_nationals)
def test_normalize_number_gives_one_e164_for_every_spelling_of_a_nanp_number(
    national: str,
) -> None:
    spellings = {
        national,
        "1" + national,
        "+1" + national,
        f"({national[:3]}) {national[3:6]}-{national[6:]}",
    }
    assert {normalize_number(spelling) for spelling in spellings} == {"+1" + national}


# parse_nanp ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["3322496213", "13322496213", "+13322496213", " (332) 249-6213 ", "+1 604 555 0199"]
)
def test_parse_nanp_returns_e164_for_us_and_canadian_numbers(raw: str) -> None:
    assert parse_nanp(raw) in {"+13322496213", "+16045550199"}


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "72975",
        "ACME",
        "5555550100",
        "1234567890",
        "8765551234",
        "4412345678",
        "+442079460958",
        "+3322496213",
        "332249621",
        "23322496213",
        "332-249-62l3",
    ],
)
def test_parse_nanp_refuses_numbers_that_are_not_us_or_canadian(raw: str) -> None:
    with pytest.raises(InvalidNumber, match="must be a valid US or Canadian 10-digit number"):
        parse_nanp(raw)


def test_parse_nanp_names_the_refused_number() -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_nanp(" 8765551234 ")
    assert str(caught.value) == '"8765551234" must be a valid US or Canadian 10-digit number'


@given(st.text(alphabet="0123456789+-(). ", max_size=20) | st.text(max_size=20))
def test_parse_nanp_returns_e164_or_raises_invalid_number(raw: str) -> None:
    try:
        result = parse_nanp(raw)
    except InvalidNumber:
        return
    assert len(result) == 12
    assert result.startswith("+1")
    assert is_nanp_e164(result)


# E.164 helpers and VoIP.ms formats -------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+13322496213", True),
        ("+1332249621", False),
        ("13322496213", False),
        ("3322496213", False),
        ("+11322496213", False),
        ("+13321496213", False),
        ("+442079460958", False),
        ("+13322496213\n", False),
    ],
)
def test_is_nanp_e164_accepts_only_plus_one_and_ten_nanp_digits(
    number: str, expected: bool
) -> None:
    assert is_nanp_e164(number) is expected


def test_to_nanpa_drops_the_country_code() -> None:
    assert to_nanpa("+13322496213") == "3322496213"


def test_to_e164_format_returns_the_number_unchanged() -> None:
    assert to_e164_format("+13322496213") == "+13322496213"


@pytest.mark.parametrize("convert", [to_nanpa, to_e164_format])
def test_e164_converters_refuse_numbers_not_in_e164(convert: Callable[[str], str]) -> None:
    with pytest.raises(InvalidNumber, match=r"not a NANP number in E\.164 form"):
        convert("3322496213")


@pytest.mark.parametrize(
    ("number_format", "expected"), [("nanpa", "3322496213"), ("e164", "+13322496213")]
)
def test_format_for_voipms_follows_the_dids_number_format(
    number_format: str, expected: str
) -> None:
    assert format_for_voipms("+13322496213", number_format) == expected


def test_format_for_voipms_refuses_an_unknown_number_format() -> None:
    with pytest.raises(ValueError, match=r'must be "nanpa" or "e164", not "E\.164"'):
        format_for_voipms("+13322496213", "E.164")


@pytest.mark.parametrize("number", ["+13322496213", "13322496213", "3322496213"])
def test_number_to_int_gives_the_eleven_digit_integer(number: str) -> None:
    assert number_to_int(number) == 13322496213


@pytest.mark.parametrize(
    "number",
    [
        "",
        "+442079460958",
        "+3322496213",
        "23322496213",
        "332249621",
        "332249621x",
        "332249621\u0663",  # ARABIC-INDIC DIGIT THREE: a digit, not an ASCII one
        "\u00b3322496213",  # SUPERSCRIPT THREE
        "+1 332249621",
    ],
)
def test_number_to_int_refuses_what_is_not_a_nanp_number(number: str) -> None:
    with pytest.raises(InvalidNumber, match="is not a 10-digit or 11-digit NANP number"):
        number_to_int(number)


# DidRange --------------------------------------------------------------------------------


def test_did_range_counts_its_numbers_inclusively() -> None:
    did_range = DidRange(13322496213, 13322496215)
    assert len(did_range) == 3
    assert did_range.size == 3
    assert len(DidRange(13322496213, 13322496213)) == 1


def test_did_range_refuses_to_be_reversed() -> None:
    with pytest.raises(ValueError, match="is after its end"):
        DidRange(13322496215, 13322496213)


def test_did_range_contains_the_integers_between_its_ends() -> None:
    did_range = DidRange(13322496213, 13322496215)
    assert 13322496213 in did_range
    assert 13322496215 in did_range
    assert 13322496212 not in did_range
    assert 13322496216 not in did_range
    assert "13322496214" not in did_range


def test_did_ranges_overlap_when_they_share_a_number() -> None:
    first = DidRange(13322496213, 13322496215)
    assert first.overlaps(DidRange(13322496215, 13322496220))
    assert first.overlaps(DidRange(13322496200, 13322496300))
    assert not first.overlaps(DidRange(13322496216, 13322496220))
    assert not DidRange(13322496216, 13322496220).overlaps(first)


def test_did_range_intersection_is_the_shared_numbers_or_none() -> None:
    first = DidRange(13322496213, 13322496220)
    assert first.intersection(DidRange(13322496218, 13322496230)) == DidRange(
        13322496218, 13322496220
    )
    assert first.intersection(DidRange(13322496215, 13322496216)) == DidRange(
        13322496215, 13322496216
    )
    assert first.intersection(DidRange(13322496221, 13322496230)) is None


def test_did_range_label_uses_portsip_syntax_with_eleven_digits() -> None:
    assert DidRange(13322496213, 13322496215).label() == "13322496213-13322496215"
    assert DidRange(16468097069, 16468097069).label() == "16468097069"


# parse_did_pool --------------------------------------------------------------------------


def test_parse_did_pool_reads_the_portsip_example() -> None:
    assert parse_did_pool("13322496213-13322496215;16468097069") == [
        DidRange(13322496213, 13322496215),
        DidRange(16468097069, 16468097069),
    ]


def test_parse_did_pool_reads_ten_digit_numbers_as_eleven() -> None:
    assert parse_did_pool("3322496213-3322496215;6468097069") == parse_did_pool(
        "13322496213-13322496215;16468097069"
    )


def test_parse_did_pool_tolerates_whitespace_around_entries_and_range_ends() -> None:
    assert parse_did_pool(" 13322496213 - 13322496215 ;\n16468097069\n") == [
        DidRange(13322496213, 13322496215),
        DidRange(16468097069, 16468097069),
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_parse_did_pool_of_empty_text_is_an_empty_pool(text: str) -> None:
    assert parse_did_pool(text) == []


def test_parse_did_pool_sorts_and_merges_overlapping_and_adjacent_entries() -> None:
    text = "16468097069;13322496216-13322496220;13322496213-13322496215;13322496218;3322496219"
    assert parse_did_pool(text) == [
        DidRange(13322496213, 13322496220),
        DidRange(16468097069, 16468097069),
    ]


def test_parse_did_pool_keeps_ranges_apart_when_a_number_lies_between() -> None:
    assert parse_did_pool("13322496213;13322496215") == [
        DidRange(13322496213, 13322496213),
        DidRange(13322496215, 13322496215),
    ]


def test_parse_did_pool_accepts_a_canadian_number() -> None:
    assert parse_did_pool("16045550199") == [DidRange(16045550199, 16045550199)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "13322496213;+13322496214",
            'Entry 2 "+13322496214": remove the leading "+"; '
            "write 10 digits, or 11 digits starting with 1",
        ),
        (
            "0013322496213",
            'Entry 1 "0013322496213": remove the leading "00"; '
            "write 10 digits, or 11 digits starting with 1",
        ),
        (
            "03322496213",
            'Entry 1 "03322496213": remove the leading "0"; '
            "write 10 digits, or 11 digits starting with 1",
        ),
        (
            "13322496213-+13322496215",
            'Entry 1 "13322496213-+13322496215": remove the leading "+" ("+13322496215"); '
            "write 10 digits, or 11 digits starting with 1",
        ),
        ("13322496215-13322496213", 'Entry 1 "13322496215-13322496213": the range is reversed'),
        (
            "13322496213;16468097069;4412345678",
            'Entry 3 "4412345678": not a US/Canada number',
        ),
        ("18765551234", 'Entry 1 "18765551234": not a US/Canada number'),
        ("5555550100", 'Entry 1 "5555550100": not a US/Canada number'),
        (
            "1234567890",
            'Entry 1 "1234567890": not a US/Canada number: the area code cannot start with 0 or 1',
        ),
        (
            "3321496213",
            'Entry 1 "3321496213": not a US/Canada number: the exchange cannot start with 0 or 1',
        ),
        (
            "13322496213-13322516213",
            'Entry 1 "13322496213-13322516213": the range holds 20001 numbers, '
            "more than the 10000 allowed",
        ),
        ("13322496213;;16468097069", 'Entry 2 is empty: remove the extra ";"'),
        ("13322496213;", 'Entry 2 is empty: remove the extra ";"'),
        (";13322496213", 'Entry 1 is empty: remove the extra ";"'),
        ("332-249-6213", 'Entry 1 "332-249-6213": write a range as two numbers joined by one "-"'),
        (
            "13322496213-",
            'Entry 1 "13322496213-": a range needs a number on each side of "-"',
        ),
        ("33224962l3", 'Entry 1 "33224962l3": "l" is not a digit; use digits only'),
        ("13322496213,16468097069", 'Entry 1 "13322496213,16468097069": "," is not a digit'),
        (
            "332249621",
            'Entry 1 "332249621": not a US/Canada number: '
            "write 10 digits, or 11 digits starting with 1",
        ),
        (
            "23322496213",
            'Entry 1 "23322496213": not a US/Canada number: '
            "write 10 digits, or 11 digits starting with 1",
        ),
        (
            "13322496213-332249621",
            'Entry 1 "13322496213-332249621": not a US/Canada number ("332249621"): '
            "write 10 digits, or 11 digits starting with 1",
        ),
    ],
)
def test_parse_did_pool_names_the_bad_entry_and_its_position(text: str, message: str) -> None:
    with pytest.raises(DidPoolError) as caught:
        parse_did_pool(text)
    assert str(caught.value).startswith(message)


def test_parse_did_pool_allows_a_range_of_exactly_the_maximum_size() -> None:
    assert parse_did_pool("13322490000-13322499999") == [DidRange(13322490000, 13322499999)]


def test_parse_did_pool_takes_the_maximum_range_size_as_an_argument() -> None:
    with pytest.raises(DidPoolError, match="the range holds 3 numbers, more than the 2 allowed"):
        parse_did_pool("13322496213-13322496215", max_range_size=2)


def test_did_pool_error_is_a_value_error() -> None:
    assert issubclass(DidPoolError, ValueError)


# Pool helpers ----------------------------------------------------------------------------


def test_merge_did_ranges_merges_overlaps_and_neighbours_only() -> None:
    ranges = [DidRange(20, 30), DidRange(1, 5), DidRange(6, 8), DidRange(10, 12), DidRange(3, 4)]
    assert merge_did_ranges(ranges) == [DidRange(1, 8), DidRange(10, 12), DidRange(20, 30)]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+13322496214", True),
        ("13322496214", True),
        ("3322496214", True),
        (13322496214, True),
        ("+16468097069", True),
        ("+13322496216", False),
        ("+16468097068", False),
        ("72975", False),
        ("ACME", False),
        ("", False),
    ],
)
def test_pool_contains_finds_a_number_in_any_spelling(number: str | int, expected: bool) -> None:
    pool = parse_did_pool("13322496213-13322496215;16468097069")
    assert pool_contains(pool, number) is expected


def test_empty_pool_contains_nothing() -> None:
    assert not pool_contains([], "+13322496213")


def test_pool_intersection_lists_the_numbers_two_pools_share() -> None:
    first = parse_did_pool("13322496213-13322496220;16468097069")
    second = parse_did_pool("13322496218-13322496230;16468097060-16468097070")
    assert pool_intersection(first, second) == [
        DidRange(13322496218, 13322496220),
        DidRange(16468097069, 16468097069),
    ]


def test_pool_intersection_of_disjoint_pools_is_empty() -> None:
    first = parse_did_pool("13322496213-13322496215")
    second = parse_did_pool("13322496216-13322496220;16468097069")
    assert pool_intersection(first, second) == []


def test_format_did_pool_writes_portsip_syntax() -> None:
    ranges = [DidRange(13322496213, 13322496215), DidRange(16468097069, 16468097069)]
    assert format_did_pool(ranges) == "13322496213-13322496215;16468097069"
    assert format_did_pool([]) == ""


def test_format_did_pool_round_trips_a_ten_digit_pool_to_eleven_digits() -> None:
    assert format_did_pool(parse_did_pool("6468097069; 3322496213-3322496215")) == (
        "13322496213-13322496215;16468097069"
    )


@given(st.lists(st.tuples(us_ca_numbers, us_ca_numbers), max_size=8))
def test_parse_did_pool_reads_back_what_format_did_pool_wrote(
    ends: list[tuple[int, int]],
) -> None:
    assume(all(_is_valid_nanp(str(number)[1:]) for pair in ends for number in pair))
    ranges = [DidRange(min(pair), max(pair)) for pair in ends]
    merged = merge_did_ranges(ranges)
    no_limit = 10**10
    assert parse_did_pool(format_did_pool(ranges), max_range_size=no_limit) == merged
    assert parse_did_pool(format_did_pool(merged), max_range_size=no_limit) == merged


# Number masks ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "  ", "\n"])
def test_empty_caller_mask_matches_every_sender(text: str) -> None:
    mask = parse_caller_mask(text)
    assert mask == CallerMask()
    for sender in ("+13322496213", "72975", "ACME", ""):
        assert mask.matches(sender)


@pytest.mark.parametrize("text", ["13322496213", "3322496213"])
def test_caller_mask_number_matches_an_e164_sender_written_with_11_or_10_digits(
    text: str,
) -> None:
    mask = parse_caller_mask(text)
    assert mask.matches("+13322496213")
    assert not mask.matches("+13322496214")


@pytest.mark.parametrize("text", ["13322496213", "3322496213"])
def test_caller_mask_number_matches_a_sender_written_with_11_or_10_digits(text: str) -> None:
    mask = parse_caller_mask(text)
    assert mask.matches("13322496213")
    assert mask.matches("3322496213")
    assert mask.matches("(332) 249-6213")


def test_caller_mask_matches_a_short_code_sender_exactly() -> None:
    mask = parse_caller_mask("72975")
    assert mask.matches("72975")
    assert not mask.matches("729750")
    assert not mask.matches("+172975")


def test_caller_mask_range_matches_the_numbers_between_its_ends() -> None:
    mask = parse_caller_mask("100-200")
    assert mask.matches("100")
    assert mask.matches("150")
    assert mask.matches("200")
    assert not mask.matches("99")
    assert not mask.matches("201")
    assert not mask.matches("1500")


def test_caller_mask_range_of_e164_numbers_matches_senders_inside_it() -> None:
    mask = parse_caller_mask("13322496213-13322496215")
    assert mask.matches("+13322496214")
    assert not mask.matches("+13322496216")
    assert parse_caller_mask("3322496213-3322496215").matches("+13322496215")


def test_caller_mask_range_with_ends_of_different_lengths_spans_both_lengths() -> None:
    mask = parse_caller_mask("90-110")
    assert mask.matches("95")
    assert mask.matches("105")
    assert not mask.matches("89")
    assert not mask.matches("0095")


def test_caller_mask_wildcard_stands_for_exactly_one_digit() -> None:
    mask = parse_caller_mask("0038******")
    assert mask.matches("0038123456")
    assert not mask.matches("003812345")
    assert not mask.matches("00381234567")
    assert not mask.matches("0039123456")


@pytest.mark.parametrize("text", ["1332*******", "332*******"])
def test_caller_mask_wildcards_match_an_area_code_written_with_11_or_10_digits(
    text: str,
) -> None:
    mask = parse_caller_mask(text)
    assert mask.matches("+13322496213")
    assert not mask.matches("+16468097069")


def test_caller_mask_wildcard_may_stand_in_the_middle() -> None:
    mask = parse_caller_mask("1*0")
    assert mask.matches("100")
    assert mask.matches("190")
    assert not mask.matches("191")


def test_caller_mask_list_matches_when_any_entry_matches() -> None:
    mask = parse_caller_mask("100-200; 300 ;1646*******")
    assert mask.matches("150")
    assert mask.matches("300")
    assert mask.matches("+16468097069")
    assert not mask.matches("250")


def test_caller_mask_never_matches_an_alphanumeric_sender_unless_empty() -> None:
    mask = parse_caller_mask("*****")
    assert mask.matches("12345")
    assert not mask.matches("ACME1")
    assert not mask.matches("")


def test_caller_mask_does_not_add_a_country_code_to_foreign_senders() -> None:
    mask = parse_caller_mask("442079460958")
    assert mask.matches("+442079460958")
    assert not parse_caller_mask("2079460958").matches("+442079460958")


def test_caller_mask_serves_as_an_outbound_from_extensions_mask() -> None:
    mask = parse_caller_mask("100-200;300")
    assert [mask.matches(extension) for extension in ("101", "300", "301", "99")] == [
        True,
        True,
        False,
        False,
    ]


def test_caller_mask_label_writes_portsip_syntax() -> None:
    assert parse_caller_mask(" 100 - 200 ;0038******").label() == "100-200;0038******"
    assert CallerMask((MaskEntry("1", "1"),)).label() == "1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("100;;200", 'Entry 2 is empty: remove the extra ";"'),
        ("100;", 'Entry 2 is empty: remove the extra ";"'),
        ("200-100", 'Entry 1 "200-100": the range is reversed'),
        ("1000-200", 'Entry 1 "1000-200": the range is reversed'),
        ("100-200-300", 'Entry 1 "100-200-300": write a range as two numbers joined by one "-"'),
        ("100-", 'Entry 1 "100-": a range needs a number on each side of "-"'),
        ("100;-5", 'Entry 2 "-5": a range needs a number on each side of "-"'),
        ("+13322496213", 'Entry 1 "+13322496213": remove the leading "+"'),
        ("100;33x", 'Entry 2 "33x": "x" is not allowed; use digits and "*" only'),
        ("1??", 'Entry 1 "1??": "?" is not allowed'),
        ("1**-200", 'Entry 1 "1**-200": a range cannot hold "*" wildcards'),
        ("1" * 21, f'Entry 1 "{"1" * 21}": a number has at most 20 digits, not 21'),
    ],
)
def test_parse_caller_mask_names_the_bad_entry(text: str, message: str) -> None:
    with pytest.raises(CallerMaskError) as caught:
        parse_caller_mask(text)
    assert str(caught.value).startswith(message)


def test_caller_mask_matching_a_very_long_sender_does_not_fail() -> None:
    assert not parse_caller_mask("100-200").matches("1" * 5000)


# Outbound conditions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefixes", "number", "expected"),
    [
        ("", "0044123", True),
        ("  ", "+13322496213", True),
        ("00;123", "0044207946", True),
        ("00;123", "1234567", True),
        ("00;123", "3322496213", False),
        ("00", "+44207946", False),
        ("1332", "+1 (332) 249-6213", True),
        ("332", "+13322496213", False),
        ("332", "332-249-6213", True),
    ],
)
def test_prefix_list_matches_the_digits_as_typed(
    prefixes: str, number: str, expected: bool
) -> None:
    assert prefix_list_matches(prefixes, number) is expected


@pytest.mark.parametrize(
    ("lengths", "number", "expected"),
    [
        ("", "72975", True),
        ("10;11", "3322496213", True),
        ("10;11", "+13322496213", True),
        ("10;11", "(332) 249-6213", True),
        ("10", "+13322496213", False),
        ("10;11", "72975", False),
    ],
)
def test_length_list_matches_the_count_of_digits_as_typed(
    lengths: str, number: str, expected: bool
) -> None:
    assert length_list_matches(lengths, number) is expected


def test_parse_prefix_list_reads_entries_with_whitespace() -> None:
    assert parse_prefix_list(" 00 ; 123 ") == ("00", "123")
    assert parse_prefix_list("") == ()


def test_parse_length_list_reads_lengths() -> None:
    assert parse_length_list("10; 11") == (10, 11)
    assert parse_length_list("") == ()


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_prefix_list, "00;;123", 'Prefix 2 is empty: remove the extra ";"'),
        (parse_prefix_list, "00;+1", 'Prefix 2 "+1": use digits only'),
        (parse_length_list, "10;ten", 'Length 2 "ten": use digits only'),
        (parse_length_list, "0", 'Length 1 "0": must be from 1 to 20'),
        (parse_length_list, "21", 'Length 1 "21": must be from 1 to 20'),
        (parse_length_list, "10;" + "9" * 5000, 'Length 2 "999'),
    ],
)
def test_number_lists_name_the_bad_entry(
    parse: Callable[[str], object], text: str, message: str
) -> None:
    with pytest.raises(NumberListError) as caught:
        parse(text)
    assert str(caught.value).startswith(message)


def test_condition_lists_refuse_bad_syntax_when_matching() -> None:
    with pytest.raises(NumberListError):
        prefix_list_matches("00;x", "0044")
    with pytest.raises(NumberListError):
        length_list_matches("ten", "3322496213")
