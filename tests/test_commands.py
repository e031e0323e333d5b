"""Tests of cputime.inputs.commands on the real commands files of tests/data/phosim_runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cputime.errors import InputError
from cputime.inputs.commands import COST_KEYS, KNOWN_PHOSIM_KEYS, parse_commands, read_commands

RUNS = Path(__file__).parent / "data" / "phosim_runs"


def test_base_commands_turn_sky_and_dome_light_off():
    commands = read_commands(RUNS / "base" / "commands.txt")
    assert commands.zenith_v == 1000.0 and commands.domelight == 1000.0
    assert commands.overrides() == {"zenith_v": 1000.0, "domelight": 1000.0}
    assert commands.unrecognised() == {} and commands.unknown_to_phosim() == {}
    assert commands.lines == {"zenith_v": 1, "domelight": 2}


def test_empty_commands_file_and_no_file():
    for commands in (read_commands(RUNS / "Fx_moonup_v0.5" / "commands.txt"), read_commands(None)):
        assert commands.overrides() == {} and commands.values == {}
        assert commands.vistime is None and commands.nsnap is None


def test_all_cost_keys_comments_and_other_keys():
    commands = parse_commands(
        "# sky on, short exposure\n"
        "\n"
        "zenith_v 21.5   # dark sky\n"
        "domelight 1000\n"
        "vistime 33\n"
        "nsnap 2\n"
        "checkpointtotal 4\n"
        "checkpointcount 1\n"
        "cleareverything\n"
        "body 2 5 0.001\n"
        "zenith_vv 22\n"
        "vistime 30\n",
        source="cmd.txt",
        allow_unknown=True,
    )
    assert commands.overrides() == {
        "zenith_v": 21.5, "domelight": 1000.0, "vistime": 30.0, "nsnap": 2,
        "checkpointtotal": 4, "checkpointcount": 1,
    }
    assert isinstance(commands.nsnap, int) and isinstance(commands.checkpointtotal, int)
    assert commands.unrecognised() == {"cleareverything": "", "body": "2 5 0.001",
                                       "zenith_vv": "22"}
    assert commands.unknown_to_phosim() == {"zenith_vv": "22"}
    assert commands.lines["vistime"] == 12  # the last value wins, as in PhoSim


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("zenith_v abc\n", "cmd.txt:1: zenith_v: 'abc' is not a number"),
        ("\ndomelight\n", "cmd.txt:2: domelight: missing value"),
        ("vistime -15\n", "cmd.txt:1: vistime: '-15' is not a number > 0 and <= 86400 s"),
        ("vistime 0\n", "cmd.txt:1: vistime: '0' is not a number > 0 and <= 86400 s"),
        ("vistime 1e300\n", "cmd.txt:1: vistime: '1e300' is not a number > 0 and <= 86400 s"),
        ("nsnap -3\n", "cmd.txt:1: nsnap: '-3' is not a whole number >= 1 and <= 100"),
        ("vistime 6\nnsnap 3\n",
         "cmd.txt:1: vistime: 6 s leaves no exposure for 3 snaps (3 s readout between snaps)"),
        ("zenith_v -5\n", "cmd.txt:1: zenith_v: '-5' is not a number >= 10 and <= 1000 "
         "mag/arcsec^2"),
        ("altitude 200\n", "cmd.txt:1: altitude: '200' is not a number > 0 and <= 90 deg"),
        ("vistime 15 30\n", "cmd.txt:1: vistime: one value expected, got 'vistime 15 30'"),
        ("nsnap 0\n", "cmd.txt:1: nsnap: '0' is not a whole number >= 1 and <= 100"),
        ("nsnap 1.5\n", "cmd.txt:1: nsnap: '1.5' is not a whole number >= 1 and <= 100"),
        ("checkpointtotal 2\ncheckpointcount 3\n",
         "cmd.txt:2: checkpointcount: 3 is beyond checkpointtotal 2"),
        ("zenith_v nan\n", "cmd.txt:1: zenith_v: 'nan' is not a number"),
    ],
)
def test_bad_values_name_file_line_and_key(text, message):
    with pytest.raises(InputError) as caught:
        parse_commands(text, source="cmd.txt")
    assert str(caught.value) == message


def test_unreadable_file(tmp_path):
    with pytest.raises(InputError, match=r"^nope\.txt: cannot read"):
        read_commands(tmp_path / "nope.txt")


def test_known_keys_cover_cost_keys_and_clear_commands():
    assert set(COST_KEYS) <= KNOWN_PHOSIM_KEYS
    assert {"cleareverything", "clearperturbations", "clearclouds", "cleartracking",
            "cleardefects", "clearopacity", "clearturbulence"} <= KNOWN_PHOSIM_KEYS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("zenithv 1000\n", "cmd.txt:1: zenithv: not a key PhoSim reads (did you mean zenith_v?)"),
        ("vistime 30\nZENITH_V 1000\n",
         "cmd.txt:2: ZENITH_V: not a key PhoSim reads (did you mean zenith_v?)"),
        ("qwertyuiop 1\n", "cmd.txt:1: qwertyuiop: not a key PhoSim reads;"),
    ],
)
def test_key_phosim_does_not_read_is_an_error_naming_the_closest(text, message):
    with pytest.raises(InputError) as caught:
        parse_commands(text, source="cmd.txt")
    assert str(caught.value).startswith(message)
    assert "--allow-unknown-commands" in str(caught.value)
    commands = parse_commands(text, source="cmd.txt", allow_unknown=True)
    assert commands.zenith_v is None  # PhoSim ignores the typo, and so does the cost model
    assert list(commands.unknown_to_phosim()) == [text.split()[-2]]


def test_cli_refuses_a_typo_unless_allowed(tmp_path, capsys):
    from cputime.frontends.cli import main

    commands = tmp_path / "commands.txt"
    commands.write_text("zenithv 1000\n")
    visits = tmp_path / "visits.csv"
    visits.write_text("obshistid,filter,altitude,moonalt,moonphase,dist2moon,sunalt\n"
                      "1,2,70,-30,10,90,-40\n")
    args = ["features", str(visits), "--commands", str(commands), "-o", str(tmp_path / "f.csv")]
    assert main(args) == 2
    assert "commands.txt:1: zenithv: not a key PhoSim reads (did you mean zenith_v?)" in (
        capsys.readouterr().err)
    assert main([*args, "--allow-unknown-commands"]) == 0
