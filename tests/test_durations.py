"""Tests of cputime.durations."""

from __future__ import annotations

import pytest

from cputime.durations import format_slurm_time, parse_clock, parse_duration, parse_slurm_time
from cputime.errors import InputError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("48h", 172800), ("90m", 5400), ("30s", 30), ("2d", 172800), ("1h30m", 5400),
        ("1.5h", 5400), ("2-00:00:00", 172800), ("01:00:00", 3600), ("1:30", 90),
        ("3600", 3600), ("90.5", 90.5), ("2-12", 216000), ("1-02:03:04.5", 93784.5),
        (" 48H ", 172800), (600, 600),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "-5", "1:2:3:4", "", "5x", "1.5:00"])
def test_parse_duration_rejects(text):
    with pytest.raises(InputError, match=r"^--queue-max: "):
        parse_duration(text, field="--queue-max")


def test_parse_clock_sacct_and_time_forms():
    assert parse_clock("00:01.234") == pytest.approx(1.234)  # sacct TotalCPU, MM:SS.mmm
    assert parse_clock("2:35.40") == pytest.approx(155.4)  # GNU time m:ss.ss
    assert parse_clock("1-23:59:01") == 86400 + 23 * 3600 + 59 * 60 + 1
    with pytest.raises(InputError):
        parse_clock("3600")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(172800, "2-00:00:00"), (5400, "0-01:30:00"), (5400.2, "0-01:30:01"), (0, "0-00:00:00"),
     (3600.0000000001, "0-01:00:00"), (59.5, "0-00:01:00")],
)
def test_format_slurm_time(seconds, text):
    assert format_slurm_time(seconds) == text
    assert parse_duration(text) >= seconds - 1e-6


def test_format_slurm_time_rejects_negative():
    with pytest.raises(InputError):
        format_slurm_time(-1)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("2880", 2 * 86400.0),  # sbatch --time: a bare number is minutes
        (90, 5400.0),
        ("10:30", 630.0),  # MM:SS
        ("48:00:00", 48 * 3600.0),
        ("2-00:00:00", 2 * 86400.0),
        ("1-12", 36 * 3600.0),  # D-HH
        ("1-12:30", 36 * 3600.0 + 1800.0),  # D-HH:MM
        ("48h", 48 * 3600.0),
    ],
)
def test_parse_slurm_time_reads_what_sbatch_reads(text, seconds):
    assert parse_slurm_time(text) == seconds


def test_parse_slurm_time_names_the_field():
    with pytest.raises(InputError, match="^--queue-max: 'soon'"):
        parse_slurm_time("soon", field="--queue-max")
