"""Splitting long texts into SMS parts of at most 160 UTF-8 bytes, and choosing SMS or MMS."""

from __future__ import annotations

import pytest
import regex
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.errors import ApplicationError
from sms.models import Kind, LongMessagePolicy, SmsConfiguration
from sms.outbound.send import message_build_parts
from sms.outbound.splitting import MMS_MAX_CHARS, SMS_MAX_BYTES, split_sms, utf8_len

GRAPHEME = regex.compile(r"\X")
# Derandomized: the same examples on every run, so a failure here is never a fluke of the seed.
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Multi-code-point graphemes a phone shows as one character: a family, a flag, a skin tone,
# a combining accent, CR LF, Thai with a tone mark, a Hangul syllable made of jamo.
CLUSTERS = [
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f1e8\U0001f1e6",
    "\U0001f44d\U0001f3fd",
    "e\u0301",
    "\r\n",
    "\u0e01\u0e49",
    "\u1100\u1161\u11a8",
]


def _stands_alone(char: str) -> bool:
    # Some letters (Thai SARA AM, Prepend marks…) glue onto a neighbouring space and would hide
    # the word break; the word-break property is about ordinary words.
    return len(GRAPHEME.findall(f" {char} ")) == 3


word_char = st.characters(categories=("L", "N", "P", "S")).filter(_stands_alone)
utf8_char = st.characters(codec="utf-8")
any_piece = st.one_of(utf8_char, st.sampled_from(CLUSTERS))
word_piece = st.one_of(
    st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
    st.sampled_from(["\u00e9", "\u20ac", "\U0001f600", "\u00df", *CLUSTERS[:4]]),
)
# Words of very different lengths (a few letters, or nearly a whole part), so that long runs
# without a space meet multi-byte characters right where a part is full.
sized_word = st.one_of(st.integers(1, 3), st.integers(4, 30), st.integers(100, 200)).flatmap(
    lambda size: st.lists(word_piece, min_size=size, max_size=size).map("".join)
)
texts = st.one_of(
    st.text(alphabet=utf8_char, max_size=1200),
    st.lists(any_piece, max_size=600).map("".join),
    st.lists(sized_word, min_size=1, max_size=8).map(" ".join),
)
short_word_texts = st.lists(
    st.text(alphabet=word_char, min_size=1, max_size=20), min_size=1, max_size=80
).map(" ".join)


def grapheme_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in GRAPHEME.finditer(text)]


def part_boundaries(parts: list[str]) -> list[int]:
    """Return the offsets in the joined text where one part ends and the next begins."""
    offsets, position = [], 0
    for part in parts[:-1]:
        position += len(part)
        offsets.append(position)
    return offsets


def configuration(policy: str = LongMessagePolicy.SPLIT) -> SmsConfiguration:
    return SmsConfiguration(long_message_policy=policy)


@PROPERTY
@given(texts)
def test_every_part_fits_in_one_sms(text: str) -> None:
    parts = split_sms(text)

    assert all(utf8_len(part) <= SMS_MAX_BYTES for part in parts), [utf8_len(p) for p in parts]


@PROPERTY
@given(texts)
def test_the_parts_join_to_the_original_text(text: str) -> None:
    parts = split_sms(text)

    assert "".join(parts) == text
    assert all(parts) or parts == [""]


@PROPERTY
@given(texts)
def test_no_grapheme_is_cut_between_two_parts(text: str) -> None:
    assume(all(utf8_len(grapheme) <= SMS_MAX_BYTES for grapheme in GRAPHEME.findall(text)))

    boundaries = part_boundaries(split_sms(text))

    for start, end in grapheme_spans(text):
        cut = [offset for offset in boundaries if start < offset < end]
        assert not cut, f"grapheme {text[start:end]!r} is cut at {cut}"


@PROPERTY
@given(texts)
def test_a_text_of_at_most_160_bytes_stays_one_part(text: str) -> None:
    assume(utf8_len(text) <= SMS_MAX_BYTES)

    assert split_sms(text) == [text]


@PROPERTY
@given(short_word_texts)
def test_a_text_of_short_words_is_split_only_after_a_space(text: str) -> None:
    parts = split_sms(text)

    assert "".join(parts) == text
    for part in parts[:-1]:
        assert part.endswith(" "), f"part {part!r} ends inside a word"


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("a" * 160, [160]),
        ("a" * 161, [160, 1]),
        ("\u00e9" * 80, [160]),  # é is 2 bytes
        ("\u00e9" * 81, [160, 2]),
        ("\U0001f600" * 40, [160]),  # an emoji is 4 bytes
        ("\U0001f600" * 41, [160, 4]),
    ],
)
def test_the_limit_counts_utf8_bytes_not_characters(text: str, sizes: list[int]) -> None:
    assert [utf8_len(part) for part in split_sms(text)] == sizes


def test_a_long_text_breaks_after_the_last_space_that_fits() -> None:
    text = "word " * 40  # 200 bytes

    parts = split_sms(text)

    assert parts == ["word " * 32, "word " * 8]


def test_a_family_emoji_at_the_limit_moves_whole_to_the_next_part() -> None:
    family = CLUSTERS[0]  # 25 bytes
    text = "x" * 150 + family + "y"

    parts = split_sms(text)

    assert parts == ["x" * 150, family + "y"]


def test_a_grapheme_longer_than_a_part_is_cut_between_code_points_and_nothing_is_lost() -> None:
    monster = "e" + "\u0301" * 100  # one grapheme of 201 bytes: no part could carry it whole

    parts = split_sms("ok " + monster)

    assert "".join(parts) == "ok " + monster
    assert all(utf8_len(part) <= SMS_MAX_BYTES for part in parts)


def test_a_long_word_after_a_short_one_still_fits_when_a_wide_character_ends_the_part() -> None:
    # Cutting after "a " leaves 157 bytes; the 4-byte emoji that did not fit must not join them.
    text = "a " + "b" * 157 + "\U0001f600" + "c"

    parts = split_sms(text)

    assert "".join(parts) == text
    assert all(utf8_len(part) <= SMS_MAX_BYTES for part in parts), [utf8_len(p) for p in parts]


# message_build_parts: one MMS, or SMS parts ---------------------------------------------------


def test_a_short_text_is_one_sms_whatever_the_policy() -> None:
    for policy in LongMessagePolicy.values:
        assert message_build_parts(configuration=configuration(policy), body="Hello") == [
            (Kind.SMS, "Hello")
        ]


def test_a_long_text_is_split_into_sms_parts_under_the_split_policy() -> None:
    body = "word " * 70  # 350 bytes

    parts = message_build_parts(configuration=configuration(LongMessagePolicy.SPLIT), body=body)

    assert [kind for kind, _ in parts] == [Kind.SMS] * 3
    assert "".join(text for _, text in parts) == body
    assert all(utf8_len(text) <= SMS_MAX_BYTES for _, text in parts)


def test_a_long_text_is_one_mms_under_the_mms_policy() -> None:
    body = "word " * 70

    parts = message_build_parts(configuration=configuration(LongMessagePolicy.MMS), body=body)

    assert parts == [(Kind.MMS, body)]


def test_a_text_of_160_bytes_with_accents_is_still_an_sms_under_the_mms_policy() -> None:
    body = "\u00e9" * 80

    parts = message_build_parts(configuration=configuration(LongMessagePolicy.MMS), body=body)

    assert parts == [(Kind.SMS, body)]


def test_media_make_an_mms_even_with_a_short_or_empty_text() -> None:
    media = ("https://example.com/photo.jpg",)

    for body in ("Look", ""):
        parts = message_build_parts(configuration=configuration(), body=body, media_urls=media)
        assert parts == [(Kind.MMS, body)]


def test_an_mms_holds_at_most_2048_characters() -> None:
    mms = configuration(LongMessagePolicy.MMS)
    fitting = "\u00e9" * MMS_MAX_CHARS  # characters are counted, not bytes

    assert message_build_parts(configuration=mms, body=fitting) == [(Kind.MMS, fitting)]
    with pytest.raises(ApplicationError) as refused:
        message_build_parts(configuration=mms, body=fitting + "x")
    assert refused.value.code == "too_long"
    assert refused.value.field == "body"


def test_a_text_with_media_over_2048_characters_is_refused_under_the_split_policy_too() -> None:
    with pytest.raises(ApplicationError) as refused:
        message_build_parts(
            configuration=configuration(LongMessagePolicy.SPLIT),
            body="x" * (MMS_MAX_CHARS + 1),
            media_urls=("https://example.com/photo.jpg",),
        )
    assert refused.value.code == "too_long"


def test_an_empty_text_without_media_is_refused() -> None:
    with pytest.raises(ApplicationError) as refused:
        message_build_parts(configuration=configuration(), body="")
    assert refused.value.code == "message_empty"


def test_a_text_of_only_spaces_and_newlines_is_refused_as_empty() -> None:
    # VoIP.ms answers message_empty to a blank text (DOMAIN.md §2): refuse it before queueing.
    with pytest.raises(ApplicationError) as refused:
        message_build_parts(configuration=configuration(), body="  \n ")
    assert refused.value.code == "message_empty"


def test_no_sms_part_of_a_split_text_is_blank() -> None:
    # 160 characters and a trailing newline: a blank second SMS would fail with message_empty
    # and leave the text half failed.
    body = "x" * 160 + "\n"

    parts = message_build_parts(configuration=configuration(), body=body)

    assert all(text.strip() for _, text in parts), parts
