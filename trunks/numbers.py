"""Parse, normalise and match phone numbers, DID pools and PortSIP number masks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from django.utils.translation import gettext_lazy as _

NANP_REGIONS = frozenset({"US", "CA"})
NUMBER_FORMAT_NANPA = "nanpa"
NUMBER_FORMAT_E164 = "e164"
DEFAULT_MAX_RANGE_SIZE = 10000
# E.164 allows 15 digits; an international prefix such as 011 adds up to 3 more.
MAX_NUMBER_LENGTH = 20
# The widest DID and sender an inbound message may carry, in characters once normalised. The
# webhook parser refuses anything wider and the sms columns are exactly this wide, so whatever
# is acknowledged fits. A DID is "+" and up to 19 digits; a sender may also be an international
# number written with spaces, or an alphanumeric sender ID (11 characters in GSM, more from
# e-mail gateways).
MAX_DID_LENGTH = 20
MAX_SENDER_LENGTH = 40

# Explicit ASCII classes: `\d` and `\s` would also accept Arabic-Indic digits or NBSP.
_NANP_LIKE = re.compile(r"\+?[0-9 ().-]+")
_FORMATTING = re.compile(r"[ ().-]")
_NANP_E164 = re.compile(r"\+1[2-9][0-9]{2}[2-9][0-9]{6}")
_DIGITS = re.compile(r"[0-9]+")
_MASK_PATTERN = re.compile(r"[0-9*]+")
_UNFORMATTED_NUMBER = re.compile(r"\+?[0-9]+")


class InvalidNumber(ValueError):
    """Raised when a number is not a valid US or Canadian number."""


class DidPoolError(ValueError):
    """Raised when a DID pool is not valid PortSIP syntax."""


class CallerMaskError(ValueError):
    """Raised when a number mask is not valid PortSIP syntax."""


class NumberListError(ValueError):
    """Raised when a prefix or length list is not valid PortSIP syntax."""


def _nanp_digits(raw: str) -> str | None:
    """Return the 10 national digits of a NANP-looking number, or None if it is not one."""
    if not _NANP_LIKE.fullmatch(raw):
        return None
    plus = raw.startswith("+")
    digits = _FORMATTING.sub("", raw.removeprefix("+"))
    if len(digits) == 11 and digits.startswith("1"):
        return digits[1:]
    if len(digits) == 10 and not plus:
        return digits
    return None


def _parse_phonenumber(national: str) -> phonenumbers.PhoneNumber:
    """Parse 10 national digits as a +1 number."""
    return phonenumbers.parse("+1" + national, None)


@lru_cache(maxsize=16384)
def _valid_nanp(national: str) -> bool:
    # Senders and DIDs repeat: the same few numbers arrive again and again.
    return phonenumbers.is_valid_number(_parse_phonenumber(national))


def normalize_number(raw: str) -> str:
    """Return a NANP number in E.164, or any other sender unchanged but stripped."""
    stripped = raw.strip()
    national = _nanp_digits(stripped)
    if national is None:
        # Short codes, alphanumeric senders and foreign numbers are kept as they came: inbound
        # must never fail on an odd sender (DOMAIN.md §3, §4).
        return stripped
    if _valid_nanp(national):
        return "+1" + national
    return stripped


def parse_nanp(raw: str) -> str:
    """Return a US or Canadian number in E.164, or raise InvalidNumber."""
    stripped = raw.strip()
    national = _nanp_digits(stripped)
    if national is not None:
        parsed = _parse_phonenumber(national)
        # VoIP.ms sends only to US and Canadian numbers; other NANP countries fail with
        # invalid_dst (DOMAIN.md §2), so refuse them before a send is queued.
        if phonenumbers.region_code_for_number(parsed) in NANP_REGIONS:
            return "+1" + national
    raise InvalidNumber(
        _('"%(stripped)s" must be a valid US or Canadian 10-digit number') % {"stripped": stripped}
    )


def is_nanp_e164(number: str) -> bool:
    """Return whether the number is written as +1 and 10 NANP digits."""
    return _NANP_E164.fullmatch(number) is not None


def to_nanpa(e164: str) -> str:
    """Return the 10 digits of a NANP number written in E.164."""
    if not is_nanp_e164(e164):
        raise InvalidNumber(
            _('"%(e164)s" is not a NANP number in E.164 form (+1 and 10 digits)') % {"e164": e164}
        )
    return e164[2:]


def to_e164_format(e164: str) -> str:
    """Return a NANP number written in E.164 as it is."""
    if not is_nanp_e164(e164):
        raise InvalidNumber(
            _('"%(e164)s" is not a NANP number in E.164 form (+1 and 10 digits)') % {"e164": e164}
        )
    return e164


def number_to_int(e164_or_digits: str) -> int:
    """Return the 11-digit integer 1NXXNXXXXXX of a +1, 1-prefixed or 10-digit number."""
    if e164_or_digits.startswith("+1"):
        national = e164_or_digits[2:]
    elif len(e164_or_digits) == 11 and e164_or_digits.startswith("1"):
        national = e164_or_digits[1:]
    else:
        national = e164_or_digits
    # isascii() and isdigit(): [0-9] exactly, without a regular expression (every webhook).
    if len(national) != 10 or not (national.isascii() and national.isdigit()):
        raise InvalidNumber(
            _('"%(e164_or_digits)s" is not a 10-digit or 11-digit NANP number')
            % {"e164_or_digits": e164_or_digits}
        )
    return int("1" + national)


# DID pools ---------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class DidRange:
    """An inclusive range of NANP numbers held as 11-digit integers (1NXXNXXXXXX)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        """Refuse a reversed range."""
        if self.start > self.end:
            raise ValueError(f"range start {self.start} is after its end {self.end}")

    @property
    def size(self) -> int:
        """Return how many numbers the range holds."""
        return self.end - self.start + 1

    def __len__(self) -> int:
        """Return how many numbers the range holds."""
        return self.size

    def __contains__(self, number: object) -> bool:
        """Return whether the 11-digit integer lies in the range."""
        return isinstance(number, int) and self.start <= number <= self.end

    def overlaps(self, other: DidRange) -> bool:
        """Return whether the two ranges share at least one number."""
        return self.start <= other.end and other.start <= self.end

    def intersection(self, other: DidRange) -> DidRange | None:
        """Return the numbers both ranges hold, or None when they share none."""
        if not self.overlaps(other):
            return None
        return DidRange(max(self.start, other.start), min(self.end, other.end))

    def label(self) -> str:
        """Return the range in PortSIP syntax with 11-digit numbers."""
        if self.start == self.end:
            return str(self.start)
        return f"{self.start}-{self.end}"


def merge_did_ranges(ranges: Iterable[DidRange]) -> list[DidRange]:
    """Return the ranges sorted, with overlapping and adjacent ranges merged."""
    merged: list[DidRange] = []
    for current in sorted(ranges):
        if merged and current.start <= merged[-1].end + 1:
            last = merged[-1]
            merged[-1] = DidRange(last.start, max(last.end, current.end))
        else:
            merged.append(current)
    return merged


def _pool_number(part: str, entry: str, position: int) -> int:
    """Return one end of a pool entry as an 11-digit integer, or raise DidPoolError."""
    prefix = _('Entry %(position)s "%(entry)s"') % {"position": position, "entry": entry}
    # In a range, say which end is wrong; for a single number the entry already says it.
    which = "" if part == entry else f' ("{part}")'
    if not part:
        raise DidPoolError(
            _('%(prefix)s: a range needs a number on each side of "-"') % {"prefix": prefix}
        )
    for leading in ("+", "00", "0"):
        if part.startswith(leading):
            raise DidPoolError(
                _(
                    '%(prefix)s: remove the leading "%(leading)s"%(which)s; write 10 '
                    "digits, or 11 digits starting with 1"
                )
                % {"prefix": prefix, "leading": leading, "which": which}
            )
    if not _DIGITS.fullmatch(part):
        bad = next(char for char in part if char not in "0123456789")
        raise DidPoolError(
            _('%(prefix)s: "%(bad)s" is not a digit; use digits only')
            % {"prefix": prefix, "bad": bad}
        )
    if len(part) == 11 and part.startswith("1"):
        national = part[1:]
    elif len(part) == 10:
        national = part
    else:
        raise DidPoolError(
            _(
                "%(prefix)s: not a US/Canada number%(which)s: write 10 digits, or 11 digits "
                "starting with 1"
            )
            % {"prefix": prefix, "which": which}
        )
    if national[0] in "01":
        raise DidPoolError(
            _("%(prefix)s: not a US/Canada number%(which)s: the area code cannot start with 0 or 1")
            % {"prefix": prefix, "which": which}
        )
    if national[3] in "01":
        raise DidPoolError(
            _("%(prefix)s: not a US/Canada number%(which)s: the exchange cannot start with 0 or 1")
            % {"prefix": prefix, "which": which}
        )
    if phonenumbers.region_code_for_number(_parse_phonenumber(national)) not in NANP_REGIONS:
        raise DidPoolError(
            _("%(prefix)s: not a US/Canada number%(which)s") % {"prefix": prefix, "which": which}
        )
    return int("1" + national)


def _pool_entry(entry: str, position: int, max_range_size: int) -> DidRange:
    """Return one pool entry as a range, or raise DidPoolError naming it."""
    parts = [part.strip() for part in entry.split("-")]
    if len(parts) > 2:
        raise DidPoolError(
            _('Entry %(position)s "%(entry)s": write a range as two numbers joined by one "-"')
            % {"position": position, "entry": entry}
        )
    start = _pool_number(parts[0], entry, position)
    end = _pool_number(parts[-1], entry, position)
    if start > end:
        raise DidPoolError(
            _('Entry %(position)s "%(entry)s": the range is reversed')
            % {"position": position, "entry": entry}
        )
    did_range = DidRange(start, end)
    if did_range.size > max_range_size:
        raise DidPoolError(
            _(
                'Entry %(position)s "%(entry)s": the range holds %(size)s numbers, more '
                "than the %(max_range_size)s allowed"
            )
            % {
                "position": position,
                "entry": entry,
                "size": did_range.size,
                "max_range_size": max_range_size,
            }
        )
    return did_range


def parse_did_pool(text: str, *, max_range_size: int = DEFAULT_MAX_RANGE_SIZE) -> list[DidRange]:
    """Return the sorted, merged ranges of a PortSIP DID pool, or raise DidPoolError."""
    if not text.strip():
        return []
    ranges = []
    for position, raw_entry in enumerate(text.split(";"), start=1):
        entry = raw_entry.strip()
        if not entry:
            raise DidPoolError(
                _('Entry %(position)s is empty: remove the extra ";"') % {"position": position}
            )
        ranges.append(_pool_entry(entry, position, max_range_size))
    return merge_did_ranges(ranges)


def format_did_pool(ranges: Iterable[DidRange]) -> str:
    """Return the ranges in PortSIP DID pool syntax."""
    return ";".join(did_range.label() for did_range in ranges)


def pool_contains(ranges: Iterable[DidRange], number: str | int) -> bool:
    """Return whether a number (E.164, 10 or 11 digits, or 11-digit integer) is in the pool."""
    if isinstance(number, str):
        try:
            number = number_to_int(number)
        except InvalidNumber:
            return False
    return any(number in did_range for did_range in ranges)


def pool_intersection(first: Iterable[DidRange], second: Iterable[DidRange]) -> list[DidRange]:
    """Return the merged numbers that two pools share (empty when they do not overlap)."""
    second = list(second)
    shared = [
        common
        for one in first
        for other in second
        if (common := one.intersection(other)) is not None
    ]
    return merge_did_ranges(shared)


# Number masks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskEntry:
    """One entry of a number mask: a number, a wildcard pattern or a range of numbers."""

    low: str
    high: str

    def matches(self, digits: str) -> bool:
        """Return whether the digits match this entry."""
        if self.low == self.high:
            return len(digits) == len(self.low) and all(
                want in ("*", got) for want, got in zip(self.low, digits, strict=True)
            )
        if not len(self.low) <= len(digits) <= len(self.high):
            return False
        return int(self.low) <= int(digits) <= int(self.high)

    def label(self) -> str:
        """Return the entry in PortSIP syntax."""
        return self.low if self.low == self.high else f"{self.low}-{self.high}"


def _mask_entry(entry: str, position: int) -> MaskEntry:
    """Return one mask entry, or raise CallerMaskError naming it."""
    prefix = _('Entry %(position)s "%(entry)s"') % {"position": position, "entry": entry}
    parts = [part.strip() for part in entry.split("-")]
    if len(parts) > 2:
        raise CallerMaskError(
            _('%(prefix)s: write a range as two numbers joined by one "-"') % {"prefix": prefix}
        )
    for part in parts:
        if not part:
            raise CallerMaskError(
                _('%(prefix)s: a range needs a number on each side of "-"') % {"prefix": prefix}
            )
        if part.startswith("+"):
            raise CallerMaskError(
                _('%(prefix)s: remove the leading "+"; masks compare digits only')
                % {"prefix": prefix}
            )
        if not _MASK_PATTERN.fullmatch(part):
            bad = next(char for char in part if char not in "0123456789*")
            raise CallerMaskError(
                _('%(prefix)s: "%(bad)s" is not allowed; use digits and "*" only')
                % {"prefix": prefix, "bad": bad}
            )
        if len(part) > MAX_NUMBER_LENGTH:
            raise CallerMaskError(
                _("%(prefix)s: a number has at most %(MAX_NUMBER_LENGTH)s digits, not %(count)s")
                % {"prefix": prefix, "MAX_NUMBER_LENGTH": MAX_NUMBER_LENGTH, "count": len(part)}
            )
    if len(parts) == 1:
        return MaskEntry(parts[0], parts[0])
    low, high = parts
    if "*" in low or "*" in high:
        raise CallerMaskError(
            _('%(prefix)s: a range cannot hold "*" wildcards') % {"prefix": prefix}
        )
    if len(low) > len(high) or int(low) > int(high):
        raise CallerMaskError(_("%(prefix)s: the range is reversed") % {"prefix": prefix})
    return MaskEntry(low, high)


def _match_candidates(number: str) -> tuple[str, ...]:
    """Return the digit strings a number may be written as in a mask."""
    compact = _FORMATTING.sub("", number.strip())
    if not _UNFORMATTED_NUMBER.fullmatch(compact):
        return ()
    digits = compact.removeprefix("+")
    # A NANP sender arrives as +1 and 10 digits, while tenants write masks with 11 or 10 digits.
    if len(digits) == 11 and digits.startswith("1"):
        return (digits, digits[1:])
    if len(digits) == 10 and not compact.startswith("+"):
        return (digits, "1" + digits)
    return (digits,)


@dataclass(frozen=True)
class CallerMask:
    """A PortSIP number mask (caller number mask, or outbound "from extensions" mask)."""

    entries: tuple[MaskEntry, ...] = ()

    def matches(self, number: str) -> bool:
        """Return whether the number (E.164, digits or an extension) matches; empty matches all."""
        if not self.entries:
            return True
        return any(
            entry.matches(candidate)
            for candidate in _match_candidates(number)
            for entry in self.entries
        )

    def label(self) -> str:
        """Return the mask in PortSIP syntax."""
        return ";".join(entry.label() for entry in self.entries)


def parse_caller_mask(text: str) -> CallerMask:
    """Return the parsed number mask, or raise CallerMaskError; empty text matches every number."""
    if not text.strip():
        return CallerMask()
    entries = []
    for position, raw_entry in enumerate(text.split(";"), start=1):
        entry = raw_entry.strip()
        if not entry:
            raise CallerMaskError(
                _('Entry %(position)s is empty: remove the extra ";"') % {"position": position}
            )
        entries.append(_mask_entry(entry, position))
    return CallerMask(tuple(entries))


# Outbound rule conditions ------------------------------------------------------------------


def _list_entries(text: str, what: str) -> list[str]:
    """Return the digit entries of a ";"-separated list, or raise NumberListError."""
    if not text.strip():
        return []
    entries = []
    for position, raw_entry in enumerate(text.split(";"), start=1):
        entry = raw_entry.strip()
        if not entry:
            raise NumberListError(
                _('%(what)s %(position)s is empty: remove the extra ";"')
                % {"what": what, "position": position}
            )
        if not _DIGITS.fullmatch(entry):
            raise NumberListError(
                _('%(what)s %(position)s "%(entry)s": use digits only')
                % {"what": what, "position": position, "entry": entry}
            )
        entries.append(entry)
    return entries


def parse_prefix_list(text: str) -> tuple[str, ...]:
    """Return the prefixes of a list such as "00;123", or raise NumberListError."""
    return tuple(_list_entries(text, _("Prefix")))


def parse_length_list(text: str) -> tuple[int, ...]:
    """Return the lengths of a list such as "10;11", or raise NumberListError."""
    lengths = []
    for position, entry in enumerate(_list_entries(text, _("Length")), start=1):
        if len(entry) > 2 or not 1 <= int(entry) <= MAX_NUMBER_LENGTH:
            raise NumberListError(
                _('Length %(position)s "%(entry)s": must be from 1 to %(MAX_NUMBER_LENGTH)s')
                % {"position": position, "entry": entry, "MAX_NUMBER_LENGTH": MAX_NUMBER_LENGTH}
            )
        lengths.append(int(entry))
    return tuple(lengths)


def _dialled_digits(number: str) -> str:
    """Return the digits of a number as typed, dropping "+" and separators but nothing else."""
    return "".join(char for char in number if "0" <= char <= "9")


def prefix_list_matches(prefixes: str, number: str) -> bool:
    """Return whether the digits of the number as typed start with a listed prefix."""
    # Conditions look at the number as the user dialled it, before normalisation and before the
    # chosen route's strip/prepend, as in PortSIP: so "00" matches "0044..." and not "+44...".
    entries = parse_prefix_list(prefixes)
    if not entries:
        return True
    return _dialled_digits(number).startswith(entries)


def length_list_matches(lengths: str, number: str) -> bool:
    """Return whether the count of digits of the number as typed is a listed length."""
    entries = parse_length_list(lengths)
    if not entries:
        return True
    return len(_dialled_digits(number)) in entries
