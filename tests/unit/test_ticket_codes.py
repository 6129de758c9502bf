"""Ticket codes: what a customer reads out, types, or mistypes.

The rules: ``XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`` from Crockford's base-32 alphabet, at least
100 random bits, and a check symbol that refuses every single-symbol typo and every
swap of two neighbouring symbols before the server looks anything up.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licentia.formats.tickets import (
    ALPHABET,
    DATA_SYMBOLS,
    TicketCodeError,
    check_symbol,
    generate_ticket_code,
    normalize_ticket_code,
)

CODE_SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$")

data_symbols = st.text(alphabet=ALPHABET, min_size=DATA_SYMBOLS, max_size=DATA_SYMBOLS)


def formatted(raw: str) -> str:
    return "-".join(raw[i : i + 5] for i in range(0, len(raw), 5))


@st.composite
def ticket_codes(draw: st.DrawFn) -> str:
    """A valid code, unformatted (25 symbols), built from data hypothesis chooses."""
    data = draw(data_symbols)
    return data + check_symbol(data)


def assert_refused_as_typo(text: str) -> None:
    with pytest.raises(TicketCodeError) as caught:
        normalize_ticket_code(text)
    assert caught.value.code == "TICKET_CODE_INVALID"


# --- shape and entropy ------------------------------------------------------------------


def test_the_alphabet_is_crockfords_32_symbols_without_i_l_o_u():
    assert len(set(ALPHABET)) == 32
    assert not set("ILOU") & set(ALPHABET)


def test_a_new_code_has_five_groups_of_five_symbols_and_reads_back_unchanged():
    for _ in range(200):
        code = generate_ticket_code()
        assert CODE_SHAPE.match(code), code
        assert normalize_ticket_code(code) == code


def test_a_code_carries_at_least_100_random_bits():
    assert DATA_SYMBOLS * math.log2(len(ALPHABET)) >= 100


def test_every_data_position_draws_from_the_whole_alphabet():
    # 3000 codes: a fair symbol is missing from one position with odds below 1e-40.
    codes = [generate_ticket_code().replace("-", "") for _ in range(3000)]
    for position in range(DATA_SYMBOLS):
        assert {code[position] for code in codes} == set(ALPHABET), position


# --- typos --------------------------------------------------------------------------


@given(ticket_codes())
def test_every_single_mistyped_symbol_is_refused(code):
    for position, right in enumerate(code):
        for wrong in ALPHABET.replace(right, ""):
            assert_refused_as_typo(formatted(code[:position] + wrong + code[position + 1 :]))


@given(ticket_codes())
def test_every_swap_of_two_different_neighbours_is_refused(code):
    for position in range(len(code) - 1):
        left, right = code[position], code[position + 1]
        if left != right:
            swapped = code[:position] + right + left + code[position + 2 :]
            assert_refused_as_typo(formatted(swapped))


@pytest.mark.parametrize("pair", ["0Z", "Z0"])
def test_swapping_the_alphabets_extreme_symbols_is_refused_too(pair):
    # The classic Luhn scheme misses exactly these swaps (0 and the last symbol).
    for position in range(DATA_SYMBOLS - 1):
        data = ["7"] * DATA_SYMBOLS
        data[position : position + 2] = pair
        code = "".join(data) + check_symbol("".join(data))
        swapped = code[:position] + pair[::-1] + code[position + 2 :]
        assert_refused_as_typo(formatted(swapped))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ABCDE-ABCDE-ABCDE-ABCDE-ABCD",  # one symbol short
        "ABCDE-ABCDE-ABCDE-ABCDE-ABCDEF",  # one too many
        "UUUUU-UUUUU-UUUUU-UUUUU-UUUUU",  # U is not in the alphabet
        "ABCDE-ABCDE-ABCDE-ABCDE-ABCD*",
    ],
)
def test_a_code_of_the_wrong_length_or_with_foreign_symbols_is_refused(text):
    assert_refused_as_typo(text)


# --- forgiving reading ------------------------------------------------------------------

_READ_ALIKE = {"0": "0Oo", "1": "1IiLl"}


@given(ticket_codes(), st.data())
def test_case_look_alikes_and_spacing_do_not_matter(code, data):
    typed = "".join(
        data.draw(st.sampled_from(_READ_ALIKE.get(symbol, symbol + symbol.lower())))
        for symbol in code
    )
    separator = data.draw(st.sampled_from(["-", " ", "", " - "]))
    text = separator.join(typed[i : i + 5] for i in range(0, 25, 5))
    assert normalize_ticket_code(f"  {text} ") == formatted(code)


def test_o_reads_as_zero_and_i_and_l_as_one():
    data = "0" * 12 + "1" * 12
    code = formatted(data + check_symbol(data))
    look_alikes = code.replace("0", "O").replace("1", "l", 6).replace("1", "I")
    assert normalize_ticket_code(look_alikes) == code
    assert normalize_ticket_code(code.lower().replace("0", "o")) == code


def test_a_symbol_outside_the_alphabet_is_named_by_its_position() -> None:
    code = generate_ticket_code()
    with pytest.raises(TicketCodeError) as caught:
        normalize_ticket_code(code[:6] + "U" + code[7:])  # the dash is not counted
    assert caught.value.position == 6 and "symbol 6 ('U')" in str(caught.value)
    with pytest.raises(TicketCodeError) as caught:
        normalize_ticket_code(code[:-1])
    assert caught.value.position is None and "not 24" in str(caught.value)
